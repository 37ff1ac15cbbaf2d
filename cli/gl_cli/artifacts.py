"""Upload agent artifacts to S3, content-addressed by sha256, verified after upload.

Any S3-compatible endpoint works; endpoint, bucket and credentials come the usual AWS way
(flags, ``AWS_*`` environment, ``~/.aws``), plus ``GL_S3_ENDPOINT``/``GL_S3_BUCKET``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

MULTIPART_THRESHOLD = 8 * 1024 * 1024  # larger files go up in parts


class ArtifactError(Exception):
    pass


@dataclass(frozen=True)
class Uploaded:
    uri: str
    digest: str
    size: int
    already_there: bool


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload(path: Path, bucket: str, endpoint: str | None, progress: Callable[[int], None] | None = None) -> Uploaded:
    if not path.is_file():
        raise ArtifactError(f"artifact {path} is not a file")
    with path.open("rb") as handle:
        return _upload(handle, sha256_of(path), path.stat().st_size, str(path), bucket, endpoint, progress)


def upload_bytes(data: bytes, what: str, bucket: str, endpoint: str | None,
                 progress: Callable[[int], None] | None = None) -> Uploaded:
    """Upload an artifact built in memory (a packed agent project); ``what`` names it in errors."""
    return _upload(io.BytesIO(data), hashlib.sha256(data).hexdigest(), len(data), what, bucket, endpoint, progress)


def _upload(source: BinaryIO, hexdigest: str, size: int, what: str, bucket: str, endpoint: str | None,
            progress: Callable[[int], None] | None) -> Uploaded:
    key = f"sha256/{hexdigest}"
    s3 = boto3.client("s3", endpoint_url=endpoint)
    try:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
            if head["ContentLength"] == size and head.get("Metadata", {}).get("sha256") == hexdigest:
                return Uploaded(f"s3://{bucket}/{key}", f"sha256:{hexdigest}", size, True)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        s3.upload_fileobj(source, bucket, key, ExtraArgs={"Metadata": {"sha256": hexdigest}},
                          Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                                multipart_chunksize=MULTIPART_THRESHOLD),
                          Callback=progress)
        head = s3.head_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as error:
        raise ArtifactError(f"uploading {what} to s3://{bucket} failed: {error}") from error
    if head["ContentLength"] != size or head.get("Metadata", {}).get("sha256") != hexdigest:
        raise ArtifactError(f"s3://{bucket}/{key} does not match {what} after upload (size or sha256 differ)")
    return Uploaded(f"s3://{bucket}/{key}", f"sha256:{hexdigest}", size, False)

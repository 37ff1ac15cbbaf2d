"""Upload agent artifacts to S3, content-addressed by sha256, verified after upload.

Any S3-compatible endpoint works; endpoint, bucket and credentials come the usual AWS way
(flags, ``AWS_*`` environment, ``~/.aws``), plus ``GL_S3_ENDPOINT``/``GL_S3_BUCKET``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    hexdigest = sha256_of(path)
    key = f"sha256/{hexdigest}"
    size = path.stat().st_size
    s3 = boto3.client("s3", endpoint_url=endpoint)
    try:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
            if head["ContentLength"] == size and head.get("Metadata", {}).get("sha256") == hexdigest:
                return Uploaded(f"s3://{bucket}/{key}", f"sha256:{hexdigest}", size, True)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": hexdigest}},
                       Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                                             multipart_chunksize=MULTIPART_THRESHOLD),
                       Callback=progress)
        head = s3.head_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as error:
        raise ArtifactError(f"uploading {path} to s3://{bucket} failed: {error}") from error
    if head["ContentLength"] != size or head.get("Metadata", {}).get("sha256") != hexdigest:
        raise ArtifactError(f"s3://{bucket}/{key} does not match {path} after upload (size or sha256 differ)")
    return Uploaded(f"s3://{bucket}/{key}", f"sha256:{hexdigest}", size, False)

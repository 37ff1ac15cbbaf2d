"""Upload agent artifacts to S3, content-addressed by sha256, and download them verified.

The digest a version records is the one the S3 server computed: each upload carries its SHA-256
as an S3 checksum (``ChecksumSHA256``), which the server checks against the bytes it received
and keeps with the object, and publishing reads it back (``HeadObject``, checksum mode on) and
requires it to equal the digest of the bytes sent. Downloads are hashed as they arrive and never
land under their name unless they match the version's ``spec.artifact.digest``.

Any S3-compatible endpoint with checksums works; endpoint, bucket and credentials come the usual
AWS way (flags, ``AWS_*`` environment, ``~/.aws``), plus ``GL_S3_ENDPOINT``/``GL_S3_BUCKET``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO


# One PUT (S3 allows up to 5 GiB): a multipart upload's SHA-256 is a checksum of part checksums,
# not the artifact's digest.
MAX_UPLOAD_BYTES = 5 * 1024 ** 3
_CHUNK = 1024 * 1024
_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")


class ArtifactError(Exception):
    pass


@dataclass(frozen=True)
class Uploaded:
    uri: str
    digest: str  # as the S3 server computed it
    size: int
    already_there: bool


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_of(hexdigest: str) -> str:
    """An S3 ``ChecksumSHA256`` (base64 of the raw digest) for a hex sha256."""
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


def digest_of_checksum(checksum: str | None) -> str | None:
    """``sha256:<hex>`` for a whole-object S3 ``ChecksumSHA256``; None when there is none (or it is per part)."""
    if not checksum or "-" in checksum:
        return None
    try:
        raw = base64.b64decode(checksum, validate=True)
    except (binascii.Error, ValueError):
        return None
    return f"sha256:{raw.hex()}" if len(raw) == 32 else None


def upload(path: Path, bucket: str, endpoint: str | None, progress: Callable[[int], None] | None = None) -> Uploaded:
    if not path.is_file():
        raise ArtifactError(f"artifact {path} is not a file")
    with path.open("rb") as handle:
        return _upload(handle, sha256_of(path), path.stat().st_size, str(path), bucket, endpoint, progress, None)


def upload_bytes(data: bytes, what: str, bucket: str, endpoint: str | None,
                 progress: Callable[[int], None] | None = None, client: Any = None) -> Uploaded:
    """Upload an artifact built in memory (a packed agent project); ``what`` names it in errors.

    ``client``: a boto3 S3 client to reuse (callers that upload many); by default one is made."""
    return _upload(io.BytesIO(data), hashlib.sha256(data).hexdigest(), len(data), what, bucket, endpoint, progress,
                   client)


def _server_digest(s3: Any, bucket: str, key: str) -> tuple[str | None, int] | None:
    """The SHA-256 the server holds for the object and its size; None when there is no object."""
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return digest_of_checksum(head.get("ChecksumSHA256")), head["ContentLength"]


def _upload(source: BinaryIO, hexdigest: str, size: int, what: str, bucket: str, endpoint: str | None,
            progress: Callable[[int], None] | None, client: Any) -> Uploaded:
    if size > MAX_UPLOAD_BYTES:
        raise ArtifactError(f"{what} is {size} bytes; an artifact is uploaded in one request of at most "
                            f"{MAX_UPLOAD_BYTES} bytes")
    import boto3  # boto3 and botocore only for the commands that move artifacts: they are slow to import
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    key, expected = f"sha256/{hexdigest}", f"sha256:{hexdigest}"
    uri = f"s3://{bucket}/{key}"
    s3 = client or boto3.client("s3", endpoint_url=endpoint)
    try:
        # Already there only if the server's own checksum says so; user metadata proves nothing.
        if _server_digest(s3, bucket, key) == (expected, size):
            return Uploaded(uri, expected, size, True)
        # The server refuses the bytes (BadDigest) unless they hash to the checksum sent along.
        s3.upload_fileobj(source, bucket, key,
                          ExtraArgs={"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": checksum_of(hexdigest)},
                          Config=TransferConfig(multipart_threshold=MAX_UPLOAD_BYTES + 1), Callback=progress)
        stored = _server_digest(s3, bucket, key)
    except (ClientError, BotoCoreError) as error:
        raise ArtifactError(f"uploading {what} to s3://{bucket} failed: {error}") from error
    if stored is None or stored[0] is None:
        raise ArtifactError(f"{uri} has no SHA-256 checksum on the server after upload; the S3 endpoint must "
                            "support S3 checksums (ChecksumSHA256) for the registry to pin the artifact")
    if stored != (expected, size):
        raise ArtifactError(f"{uri} does not match {what} after upload: the server holds {stored[0]} "
                            f"({stored[1]} bytes), {what} is {expected} ({size} bytes)")
    return Uploaded(uri, stored[0], size, False)


def download(uri: str, expected: str, destination: Path, endpoint: str | None,
             progress: Callable[[int], None] | None = None) -> int:
    """Write the object at ``uri`` to ``destination`` if its sha256 is ``expected``; returns its size.

    The bytes go to a temporary file beside ``destination`` and are renamed into place only once
    they match, so a mismatch or a broken download leaves nothing behind (and an older file intact).
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from gl_api import artifact as gl_artifact

    match = _S3_URI.match(uri)
    if not match:
        raise ArtifactError(f"artifact URI {uri!r} is not s3://bucket/key")
    bucket, key = match.groups()
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                body = boto3.client("s3", endpoint_url=endpoint).get_object(Bucket=bucket, Key=key)["Body"]
                for chunk in iter(lambda: body.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if progress:
                        progress(len(chunk))
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code in ("NoSuchKey", "404", "NotFound"):
                    raise ArtifactError(f"artifact {uri} does not exist (NoSuchKey)") from error
                raise ArtifactError(f"downloading {uri} failed: {error}") from error
            except BotoCoreError as error:
                raise ArtifactError(f"downloading {uri} failed: {error}") from error
        try:
            gl_artifact.check_digest(f"sha256:{digest.hexdigest()}", expected, uri)
        except gl_artifact.DigestMismatch as error:
            raise ArtifactError(f"{error}; nothing was written to {destination} (was the object replaced?)") from None
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return size

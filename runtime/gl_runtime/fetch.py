"""Get the artifact's bytes and verify their sha256 before anything else sees them.

The digest comes from the AgentVersion (through the Deployment's environment); bytes that do
not match it are never unpacked, let alone imported.
"""

from __future__ import annotations

from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from gl_api import artifact
from gl_runtime.config import S3_URI_RE

MAX_ARTIFACT_BYTES = 256 * 1024 * 1024
_CHUNK = 1024 * 1024


class FetchError(Exception):
    """The artifact could not be obtained or is not the one expected; the runtime must not start."""


class DigestMismatch(FetchError):
    pass


def verify(data: bytes, expected: str, where: str) -> bytes:
    try:
        return artifact.verify(data, expected, where)
    except artifact.DigestMismatch as error:
        raise DigestMismatch(f"{error}; refusing to load it (was the object replaced, or GL_ARTIFACT_DIGEST "
                             "wrong?)") from None


def from_file(path: Path, expected: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FetchError(f"cannot read artifact file {path}: {error}") from error
    return verify(data, expected, str(path))


def from_s3(uri: str, expected: str, endpoint: str | None) -> bytes:
    match = S3_URI_RE.match(uri)
    if not match:
        raise FetchError(f"artifact URI {uri!r} is not s3://bucket/key")
    bucket, key = match.groups()
    s3 = boto3.client("s3", endpoint_url=endpoint, config=BotoConfig(
        connect_timeout=5, read_timeout=30, retries={"max_attempts": 5, "mode": "standard"}))
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        chunks, size = [], 0
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            size += len(chunk)
            if size > MAX_ARTIFACT_BYTES:
                raise FetchError(f"{uri} is larger than {MAX_ARTIFACT_BYTES} bytes; refusing it")
            chunks.append(chunk)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise FetchError(f"artifact {uri} does not exist (NoSuchKey)") from error
        if code == "NoSuchBucket":
            raise FetchError(f"bucket of {uri} does not exist") from error
        raise FetchError(f"downloading {uri} failed: {error}") from error
    except BotoCoreError as error:
        raise FetchError(f"downloading {uri} failed: {error}") from error
    return verify(b"".join(chunks), expected, uri)

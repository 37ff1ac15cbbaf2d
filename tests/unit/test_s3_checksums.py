"""S3's ChecksumSHA256 (base64 of the raw digest) and the registry's sha256:<hex> are the same fact."""

import base64
import hashlib

from gl_cli.artifacts import checksum_of, digest_of_checksum


def test_a_whole_object_checksum_is_the_digest():
    raw = hashlib.sha256(b"agent").digest()
    assert checksum_of(raw.hex()) == base64.b64encode(raw).decode()
    assert digest_of_checksum(checksum_of(raw.hex())) == f"sha256:{raw.hex()}"


def test_missing_per_part_or_malformed_checksums_are_no_digest():
    raw = base64.b64encode(hashlib.sha256(b"agent").digest()).decode()
    assert digest_of_checksum(None) is None
    assert digest_of_checksum(f"{raw}-3") is None  # a multipart upload's checksum of part checksums
    assert digest_of_checksum("not base64!") is None
    assert digest_of_checksum(base64.b64encode(b"short").decode()) is None

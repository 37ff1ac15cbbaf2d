package greenlang.meta_test

import data.greenlang.meta

test_revision_is_a_sha256_digest if regex.match(`^[0-9a-f]{64}$`, meta.revision)

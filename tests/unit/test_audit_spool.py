"""The spool on a real directory: arrival order, across restarts, one mirror at a time."""

import pytest

from gl_mirror import audit_spool


def test_batches_wait_in_arrival_order_and_a_restart_queues_behind_them(tmp_path):
    spool = audit_spool.Spool(tmp_path / "spool")
    names = [spool.add(f'{{"n": {n}}}'.encode(), f"id-{n}", 1) for n in range(11)]
    assert [p.name for p in spool.pending()] == names
    assert names[0] == "000000000001-id-0-1.json" and names[10].startswith("000000000011-")
    spool.remove(spool.pending()[0])
    spool.set_aside(spool.pending()[0])
    del spool  # the process ends: its lock goes with it

    again = audit_spool.Spool(tmp_path / "spool")
    later = again.add(b"{}", "id-new", 3)
    assert [p.name for p in again.pending()] == [*names[2:], later]
    assert later.startswith("000000000012-")
    assert (tmp_path / "spool" / audit_spool.REJECTED / names[1]).read_bytes() == b'{"n": 1}'


def test_a_batch_half_written_when_the_mirror_died_is_not_appended(tmp_path):
    (tmp_path / "0123abc.tmp").write_bytes(b'{"items": [')  # never answered 200: the API server sends it again
    spool = audit_spool.Spool(tmp_path)
    assert spool.pending() == [] and not list(tmp_path.glob("*.tmp"))


def test_an_audit_id_cannot_name_a_file_outside_the_spool(tmp_path):
    spool = audit_spool.Spool(tmp_path / "spool")
    name = spool.add(b"{}", "../../etc/passwd", 1)
    assert name == "000000000001-etcpasswd-1.json" and (tmp_path / "spool" / name).exists()


def test_two_mirrors_may_not_share_a_spool(tmp_path):
    first = audit_spool.Spool(tmp_path)
    with pytest.raises(ValueError, match="--audit-spool-dir .* is in use by another gl-mirror"):
        audit_spool.Spool(tmp_path)
    assert first.pending() == []


def test_a_spool_that_cannot_be_created_names_the_flag(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="--audit-spool-dir .*file/spool cannot be used"):
        audit_spool.Spool(tmp_path / "file" / "spool")

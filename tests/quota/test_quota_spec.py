"""Unit tests: --disk-quota / --quota-id parsing and the persisted quota id allocator."""
import pytest

from pouch.quota import QUOTA_ID_MIN, InvalidQuotaSpec, QuotaIdInUse, parse_disk_quota, parse_quota_id, parse_size
from pouch.quota.ids import QuotaIdAllocator


def test_parse_size_units():
    assert parse_size("10g") == 10 * 1024 ** 3
    assert parse_size("512M") == 512 * 1024 ** 2
    assert parse_size("5GB") == 5 * 1024 ** 3
    assert parse_size("4096") == 4096
    for bad in ("", "ten", "-1g", "0", "5x"):
        with pytest.raises(InvalidQuotaSpec):
            parse_size(bad)


def test_parse_disk_quota_bare_and_paths():
    assert parse_disk_quota(["10g", "/data=5g"]) == {"/": 10 * 1024 ** 3, "/data": 5 * 1024 ** 3}
    assert parse_disk_quota("/data/:1m") == {"/data": 1024 ** 2}
    with pytest.raises(InvalidQuotaSpec, match="more than once"):
        parse_disk_quota(["10g", "/=5g"])
    with pytest.raises(InvalidQuotaSpec, match="absolute"):
        parse_disk_quota(["data=5g"])
    e = pytest.raises(InvalidQuotaSpec, parse_disk_quota, ["/x=lots"])
    assert e.value.http_status == 400


def test_parse_quota_id():
    assert parse_quota_id(None) is None and parse_quota_id("0") is None
    assert parse_quota_id("16777300") == 16777300
    for bad in ("-1", "abc", str(2 ** 32)):
        with pytest.raises(InvalidQuotaSpec):
            parse_quota_id(bad)


def test_allocator_persists_and_never_reuses_live_ids(tmp_path):
    state = str(tmp_path / "quota-ids.json")
    a = QuotaIdAllocator(state)
    first, second = a.allocate("c1"), a.allocate("c2")
    assert (first, second) == (QUOTA_ID_MIN, QUOTA_ID_MIN + 1)
    b = QuotaIdAllocator(state)                     # a restarted daemon
    assert b.allocate("c3") == QUOTA_ID_MIN + 2
    b.release(first)
    assert QuotaIdAllocator(state).allocate("c4") == first


def test_allocator_explicit_id(tmp_path):
    a = QuotaIdAllocator(str(tmp_path / "ids.json"))
    assert a.allocate("c1", 20000000) == 20000000
    assert a.allocate("c1", 20000000) == 20000000   # same owner again is fine
    with pytest.raises(QuotaIdInUse) as e:
        a.allocate("c2", 20000000)
    assert e.value.http_status == 409
    assert a.allocate("c2") == QUOTA_ID_MIN

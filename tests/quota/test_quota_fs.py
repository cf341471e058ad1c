"""Integration tests: project ids and hard limits on real xfs / ext4 loop filesystems."""
import errno
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fixtures.quota_fs import QuotaFsUnavailable, quota_filesystem  # noqa: E402

from pouch.quota import QuotaManager, QuotaNotSupported, quota_support  # noqa: E402
from pouch.quota import projid  # noqa: E402

pytestmark = pytest.mark.integration
MiB = 1024 * 1024



@pytest.fixture
def plain_xfs():
    """An xfs without the prjquota option: project ids work, limits cannot."""
    cm = quota_filesystem("xfs", prjquota=False)
    try:
        mnt = cm.__enter__()
    except QuotaFsUnavailable as e:
        pytest.skip(str(e))
    yield mnt
    cm.__exit__(None, None, None)


@pytest.fixture(params=["xfs", "ext4"])
def prjquota_fs(request):
    cm = quota_filesystem(request.param, prjquota=True)
    try:
        mnt = cm.__enter__()
    except QuotaFsUnavailable as e:
        pytest.skip(str(e))
    yield mnt
    cm.__exit__(None, None, None)


def test_project_id_ioctl_roundtrip_and_inherit(plain_xfs):
    d = os.path.join(plain_xfs, "upper")
    os.makedirs(os.path.join(d, "sub"))
    with open(os.path.join(d, "sub", "old"), "w") as f:
        f.write("x")
    t0 = time.perf_counter()
    changed = projid.set_project(d, 16777216)
    elapsed = time.perf_counter() - t0
    assert changed == 3
    assert projid.get_project(d) == (16777216, True)
    assert projid.get_project(os.path.join(d, "sub", "old")) == (16777216, False)
    # a file created after the call joins the project through the inherit flag
    with open(os.path.join(d, "sub", "new"), "w") as f:
        f.write("y")
    assert projid.get_project(os.path.join(d, "sub", "new"))[0] == 16777216
    assert elapsed < 0.020, f"set_project took {elapsed * 1000:.1f} ms"


def test_not_quota_capable_is_a_typed_error(plain_xfs, tmp_path):
    ok, reason = quota_support(plain_xfs)
    assert not ok and "prjquota" in reason
    qm = QuotaManager(str(tmp_path / "ids.json"))
    with pytest.raises(QuotaNotSupported) as e:
        qm.set_quota(plain_xfs, 10 * MiB, owner="c1")
    assert e.value.http_status == 400
    assert qm.ids.ids_of("c1") == []           # nothing half-allocated


def test_rootfs_without_quota_refused(tmp_path):
    qm = QuotaManager(str(tmp_path / "ids.json"))
    with pytest.raises(QuotaNotSupported, match="disk quota is not supported"):
        qm.set_quota(str(tmp_path), 10 * MiB, owner="c1")


def test_hard_limit_df_and_enospc(prjquota_fs, tmp_path):
    d = os.path.join(prjquota_fs, "c1")
    os.mkdir(d)
    qm = QuotaManager(str(tmp_path / "ids.json"))
    t0 = time.perf_counter()
    qid = qm.set_quota(d, 10 * MiB, owner="c1")
    elapsed = time.perf_counter() - t0
    assert qid == 16777216
    assert elapsed < 0.020, f"quota setup took {elapsed * 1000:.1f} ms"
    st = os.statvfs(d)
    assert st.f_blocks * st.f_frsize == 10 * MiB            # df of the dir shows the limit
    with open(os.path.join(d, "a"), "wb") as f:
        f.write(b"\0" * (6 * MiB))
        f.flush()
        os.fsync(f.fileno())
    with pytest.raises(OSError) as e:
        with open(os.path.join(d, "b"), "wb") as f:
            f.write(b"\0" * (6 * MiB))
            f.flush()
            os.fsync(f.fileno())
    assert e.value.errno in (errno.ENOSPC, errno.EDQUOT)
    assert os.path.getsize(os.path.join(d, "a")) == 6 * MiB   # the earlier write is intact
    with open(os.path.join(prjquota_fs, "outside"), "wb") as f:  # outside the project: no limit
        f.write(b"\0" * (12 * MiB))
    usage = qm.get_usage(d)
    assert usage["hard_bytes"] == 10 * MiB and usage["used_bytes"] >= 6 * MiB
    qm.remove(d, owner="c1")
    assert qm.ids.ids_of("c1") == []

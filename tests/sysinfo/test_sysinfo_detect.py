"""sysinfo.collect() against what this host really offers."""
import os
import shutil

import pytest

from pouch.sysinfo import collect


def test_collect_matches_the_host(tmp_path):
    info = collect(str(tmp_path))
    assert info["KernelVersion"] == os.uname().release
    assert info["CgroupVersion"] == ("2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1")
    with open("/proc/filesystems") as f:
        assert info["Overlayfs"] == ("overlay" in f.read())
    assert info["Lxcfs"] == shutil.which("lxcfs")
    assert ("runc" in info["Runtimes"]) == bool(shutil.which("runc"))


def test_no_project_quota_on_a_home_mounted_without_prjquota():
    """Unsupported, and the detail says how to fix it."""
    from tests.fixtures.quota_fs import quota_filesystem
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a loop filesystem")
    with quota_filesystem("xfs", prjquota=False) as mnt:
        pq = collect(mnt)["ProjectQuota"]
    assert pq["Supported"] is False and "without prjquota" in pq["Detail"], pq


def test_project_quota_on_a_home_mounted_with_prjquota():
    from tests.fixtures.quota_fs import QuotaFsUnavailable, quota_filesystem
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a loop filesystem")
    try:
        with quota_filesystem("xfs", prjquota=True) as mnt:
            pq = collect(mnt)["ProjectQuota"]
    except QuotaFsUnavailable as e:
        pytest.skip(str(e))
    assert pq["Supported"] is True, pq

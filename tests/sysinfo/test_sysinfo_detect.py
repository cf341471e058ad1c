"""sysinfo.collect() against what this host really offers."""
import os
import shutil

from pouch.sysinfo import collect


def test_collect_matches_the_host(tmp_path):
    info = collect(str(tmp_path))
    assert info["KernelVersion"] == os.uname().release
    assert info["CgroupVersion"] == ("2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1")
    with open("/proc/filesystems") as f:
        assert info["Overlayfs"] == ("overlay" in f.read())
    assert info["Lxcfs"] == shutil.which("lxcfs")
    assert ("runc" in info["Runtimes"]) == bool(shutil.which("runc"))
    assert isinstance(info["ProjectQuota"]["Supported"], bool) and info["ProjectQuota"]["Detail"]

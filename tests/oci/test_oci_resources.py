"""Resources: HostConfig -> OCI validation, and live writes/reads of a real cgroup v1 hierarchy."""
import os
import uuid

import pytest

from pouch.oci import build_resources, cgroups, read_cgroup_values, update_cgroup
from pouch.oci.errors import CgroupNotFound, InvalidOciConfig

MiB = 1024 * 1024


def test_memory_and_cpu_translation():
    res, _ = build_resources({"Memory": 200 * MiB, "MemoryReservation": 100 * MiB, "MemorySwappiness": 10,
                              "NanoCpus": 500_000_000, "CpuShares": 512, "PidsLimit": 64, "OomKillDisable": True})
    assert res["memory"] == {"limit": 200 * MiB, "reservation": 100 * MiB, "swappiness": 10, "disableOOMKiller": True}
    assert res["cpu"] == {"period": 100000, "quota": 50000, "shares": 512}
    assert res["pids"] == {"limit": 64}


@pytest.mark.parametrize("hc, msg", [
    ({"Memory": 1 * MiB}, "4MiB"),
    ({"Memory": 100 * MiB, "MemorySwap": 50 * MiB}, "memory-swap"),
    ({"MemorySwap": 50 * MiB}, "memory limit"),
    ({"NanoCpus": (os.cpu_count() + 1) * 10 ** 9}, "CPUs"),
    ({"NanoCpus": 10 ** 9, "CpuQuota": 50000}, "conflicting"),
    ({"CpuPeriod": 10}, "period"),
    ({"CpusetCpus": "0-999"}, "not available"),
    ({"BlkioWeight": 5}, "blkio weight"),
    ({"MemorySwappiness": 200}, "swappiness"),
])
def test_invalid_resources_are_400(hc, msg):
    with pytest.raises(InvalidOciConfig, match=msg) as e:
        build_resources(hc)
    assert e.value.http_status == 400


def test_blkio_throttle_resolves_block_device():
    dev = next((f"/dev/{d}" for d in ("vda", "sda", "loop0", "nvme0n1") if os.path.exists(f"/dev/{d}")), None)
    if not dev:
        pytest.skip("no block device node (vda/sda/loop0/nvme0n1) on this host")
    st = os.stat(dev)
    res, _ = build_resources({"BlkioDeviceReadBps": [{"Path": dev, "Rate": 1048576}]})
    assert res["blockIO"]["throttleReadBpsDevice"] == [
        {"major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev), "rate": 1048576}]
    with pytest.raises(InvalidOciConfig, match="not a block device"):
        build_resources({"BlkioDeviceReadBps": [{"Path": "/dev/null", "Rate": 1}]})


def test_cgroup_paths():
    assert cgroups.cgroups_path("abc") == "/pouch/abc"
    assert cgroups.cgroups_path("abc", "systemd") == "system.slice:pouch:abc"
    assert cgroups.relative_dir("system.slice:pouch:abc") == "system.slice/pouch-abc.scope"
    assert cgroups.relative_dir("a-b.slice:pouch:x") == "a.slice/a-b.slice/pouch-x.scope"
    assert cgroups.detect_mode() in ("v1", "v2", "hybrid")


@pytest.mark.integration
def test_update_running_cgroup_v1():
    if cgroups.detect_mode() == "v2" or not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("needs a cgroup v1 memory/cpu/pids hierarchy")
    path = f"/pouch-test-{uuid.uuid4().hex[:8]}"
    ctrls = ["memory", "cpu", "pids"]
    for c in ctrls:
        os.makedirs(f"/sys/fs/cgroup/{c}{path}")
    try:
        res, _ = build_resources({"Memory": 64 * MiB, "CpuQuota": 20000, "CpuPeriod": 50000,
                                  "CpuShares": 256, "PidsLimit": 42})
        update_cgroup(path, res)
        v = read_cgroup_values(path)
        assert (v["memory"], v["cpu_quota"], v["cpu_period"], v["cpu_shares"], v["pids_max"]) == \
            (str(64 * MiB), "20000", "50000", "256", "42")
        res, _ = build_resources({"Memory": 128 * MiB, "PidsLimit": 0})
        res["pids"] = {"limit": 0}
        update_cgroup(path, res)
        v = read_cgroup_values(path)
        assert v["memory"] == str(128 * MiB) and v["pids_max"] == "max"
    finally:
        for c in ctrls:
            os.rmdir(f"/sys/fs/cgroup/{c}{path}")
    with pytest.raises(CgroupNotFound):
        update_cgroup(path, {"memory": {"limit": 64 * MiB}})

"""Resource flags (FEATURES.md section 6) through the real pouchd: each value is read back from
the container's cgroup files on the host, `pouch update` changes them on a running container,
bad values are refused before anything is created, and the OOM killer is reported."""
from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from pouch.oci.cgroups import CGROUP_ROOT, blkio_weight_file, detect_mode, kernel_memory_supported
from tests.daemon.conftest import inspect, wait_for

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def cgroup_file(cid: str, ctrl: str, name: str) -> str:
    if detect_mode() == "v2":
        return os.path.join(CGROUP_ROOT, "default", cid, name)
    return os.path.join(CGROUP_ROOT, ctrl, "default", cid, name)


def cg(cid: str, ctrl: str, name: str) -> str:
    with open(cgroup_file(cid, ctrl, name)) as f:
        return f.read().strip()


def cid_of(d, name: str) -> str:
    return inspect(d, name)["Id"]


@pytest.fixture(autouse=True)
def _v1_only():
    if detect_mode() == "v2":
        pytest.skip("these checks read cgroup v1 file names; this host runs cgroup v2 only")


@pytest.fixture
def loopdev():
    """A real block device (loop) for the throttle flags; detached afterwards."""
    fd, img = tempfile.mkstemp(prefix="pouch-blk-")
    os.close(fd)
    os.truncate(img, 8 * MiB)
    r = subprocess.run(["losetup", "--find", "--show", img], capture_output=True, text=True)
    if r.returncode:
        os.unlink(img)
        pytest.skip(f"no free loop device: {r.stderr.strip()}")
    dev = r.stdout.strip()
    yield dev
    subprocess.run(["losetup", "-d", dev], capture_output=True)
    os.unlink(img)


def test_memory_flags_read_back_and_update(pouchd, box):
    n = box.run_d("-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m",
                  "--oom-kill-disable", "busybox", "sleep", "600")
    cid = cid_of(pouchd, n)
    assert cg(cid, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    if os.path.exists(cgroup_file(cid, "memory", "memory.memsw.limit_in_bytes")):
        assert cg(cid, "memory", "memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert cg(cid, "memory", "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert "oom_kill_disable 1" in cg(cid, "memory", "memory.oom_control")

    r = pouchd.cli("update", "-m", "96m", "--memory-swap", "192m", "--memory-reservation", "48m", n)
    assert r.returncode == 0, r.stderr
    assert cg(cid, "memory", "memory.limit_in_bytes") == str(96 * MiB)
    if os.path.exists(cgroup_file(cid, "memory", "memory.memsw.limit_in_bytes")):
        assert cg(cid, "memory", "memory.memsw.limit_in_bytes") == str(192 * MiB)
    assert cg(cid, "memory", "memory.soft_limit_in_bytes") == str(48 * MiB)
    assert inspect(pouchd, n)["HostConfig"]["Memory"] == 96 * MiB


def test_cpu_flags_read_back_and_update(pouchd, box):
    n = box.run_d("--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0",
                  "busybox", "sleep", "600")
    cid = cid_of(pouchd, n)
    assert cg(cid, "cpu", "cpu.cfs_period_us") == "100000"
    assert cg(cid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert cg(cid, "cpu", "cpu.shares") == "512"
    assert cg(cid, "cpuset", "cpuset.cpus") == "0"
    assert cg(cid, "cpuset", "cpuset.mems") == "0"

    r = pouchd.cli("update", "--cpus", "1.5", "--cpu-shares", "256", n)
    assert r.returncode == 0, r.stderr
    assert cg(cid, "cpu", "cpu.cfs_quota_us") == "150000"
    assert cg(cid, "cpu", "cpu.shares") == "256"
    if len(os.sched_getaffinity(0)) > 1:
        r = pouchd.cli("update", "--cpuset-cpus", "1", n)
        assert r.returncode == 0, r.stderr
        assert cg(cid, "cpuset", "cpuset.cpus") == "1"
        # the container's own view follows
        assert pouchd.cli("exec", n, "nproc").stdout.strip() == "1"


def test_cpu_period_and_quota(pouchd, box):
    n = box.run_d("--cpu-period", "50000", "--cpu-quota", "25000", "busybox", "sleep", "600")
    cid = cid_of(pouchd, n)
    assert cg(cid, "cpu", "cpu.cfs_period_us") == "50000"
    assert cg(cid, "cpu", "cpu.cfs_quota_us") == "25000"
    r = pouchd.cli("update", "--cpu-period", "100000", "--cpu-quota", "80000", n)
    assert r.returncode == 0, r.stderr
    assert cg(cid, "cpu", "cpu.cfs_period_us") == "100000"
    assert cg(cid, "cpu", "cpu.cfs_quota_us") == "80000"


def test_pids_limit_read_back_update_and_enforced(pouchd, box):
    n = box.run_d("--pids-limit", "20", "busybox", "sleep", "600")
    cid = cid_of(pouchd, n)
    assert cg(cid, "pids", "pids.max") == "20"
    r = pouchd.cli("update", "--pids-limit", "8", n)
    assert r.returncode == 0, r.stderr
    assert cg(cid, "pids", "pids.max") == "8"
    # the limit bites: 8 pids in all (sleep + sh + ...), so 10 background sleeps cannot start.
    # (8, not fewer: runc's exec itself briefly takes up to 3 pids of the container's cgroup)
    r = pouchd.cli("exec", n, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done; wait")
    assert r.returncode != 0 and "can't fork" in r.stderr, r
    assert int(cg(cid, "pids", "pids.current")) <= 8


def test_device_throttles_on_a_loop_device(pouchd, box, loopdev):
    st = os.stat(loopdev)
    mm = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    n = box.run_d("--device-read-bps", f"{loopdev}:1mb", "--device-write-bps", f"{loopdev}:2mb",
                  "--device-read-iops", f"{loopdev}:100", "--device-write-iops", f"{loopdev}:200",
                  "busybox", "sleep", "600")
    cid = cid_of(pouchd, n)
    assert cg(cid, "blkio", "blkio.throttle.read_bps_device") == f"{mm} {MiB}"
    assert cg(cid, "blkio", "blkio.throttle.write_bps_device") == f"{mm} {2 * MiB}"
    assert cg(cid, "blkio", "blkio.throttle.read_iops_device") == f"{mm} 100"
    assert cg(cid, "blkio", "blkio.throttle.write_iops_device") == f"{mm} 200"
    r = pouchd.cli("update", "--device-read-bps", f"{loopdev}:3mb", "--device-write-iops",
                   f"{loopdev}:300", n)
    assert r.returncode == 0, r.stderr
    assert cg(cid, "blkio", "blkio.throttle.read_bps_device") == f"{mm} {3 * MiB}"
    assert cg(cid, "blkio", "blkio.throttle.write_iops_device") == f"{mm} 300"


def test_blkio_weight(pouchd, box):
    if blkio_weight_file() is None:
        r = pouchd.cli("run", "--rm", "--blkio-weight", "300", "busybox", "true")
        assert r.returncode == 1
        assert "blkio" in r.stderr and "weight" in r.stderr, r.stderr
        return
    n = box.run_d("--blkio-weight", "300", "busybox", "sleep", "600")
    cid = cid_of(pouchd, n)
    assert cg(cid, "blkio", blkio_weight_file()) == "300"
    assert pouchd.cli("update", "--blkio-weight", "400", n).returncode == 0
    assert cg(cid, "blkio", blkio_weight_file()) == "400"


def test_kernel_memory(pouchd, box):
    if not kernel_memory_supported():
        before = pouchd.cli("ps", "-aq").stdout.split()
        r = pouchd.cli("run", "--rm", "--kernel-memory", "50m", "busybox", "true")
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "kernel memory" in lines[0], r.stderr
        assert pouchd.cli("ps", "-aq").stdout.split() == before
        return
    n = box.run_d("--kernel-memory", "50m", "busybox", "sleep", "600")
    assert cg(cid_of(pouchd, n), "memory", "memory.kmem.limit_in_bytes") == str(50 * MiB)


@pytest.mark.parametrize("args, words", [
    (["-m", "1k"], "memory"),
    (["--cpus", "99"], "CPUs"),
    (["--cpu-shares", "1"], "cpu-shares"),
    (["--cpuset-cpus", "99"], "cpus"),
    (["-m", "64m", "--memory-swap", "32m"], "memory-swap"),
    (["--cpus", "1", "--cpu-quota", "50000"], "onflicting"),
])
def test_bad_values_exit_1_one_line_nothing_created(pouchd, box, args, words):
    name = box.name()
    r = pouchd.cli("run", "--name", name, *args, "busybox", "true")
    assert r.returncode == 1, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words.lower() in lines[0].lower(), r.stderr
    assert name not in pouchd.cli("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert pouchd.cli("inspect", name).returncode != 0


def test_update_with_bad_value_keeps_old_limit(pouchd, box):
    n = box.run_d("-m", "64m", "busybox", "sleep", "600")
    cid = cid_of(pouchd, n)
    r = pouchd.cli("update", "-m", "1k", n)
    assert r.returncode == 1 and "memory" in r.stderr
    assert cg(cid, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert inspect(pouchd, n)["HostConfig"]["Memory"] == 64 * MiB


def test_oom_killed_container_is_reported(pouchd, box):
    name = box.name()
    # `tail /dev/zero` keeps an ever-growing line in memory: it allocates until the limit
    r = pouchd.cli("run", "--name", name, "-m", "20m", "--memory-swap", "20m", "busybox",
                   "tail", "/dev/zero", timeout=120)
    assert r.returncode == 137, r
    state = wait_for(lambda: (s := inspect(pouchd, name)["State"])["Status"] == "stopped" and s,
                     what="exited state")
    assert state["OOMKilled"] is True
    assert state["ExitCode"] == 137


def test_update_of_a_created_container_applies_at_start_and_survives_restart(pouchd, box):
    n = box.name()
    assert pouchd.cli("create", "--name", n, "-m", "64m", "busybox", "sleep", "600").returncode == 0
    assert pouchd.cli("update", "-m", "80m", "--pids-limit", "40", n).returncode == 0
    assert pouchd.cli("start", n).returncode == 0
    cid = cid_of(pouchd, n)
    assert cg(cid, "memory", "memory.limit_in_bytes") == str(80 * MiB)
    assert cg(cid, "pids", "pids.max") == "40"
    assert pouchd.cli("update", "-m", "90m", n).returncode == 0
    assert pouchd.cli("restart", "-t", "1", n).returncode == 0
    assert cg(cid, "memory", "memory.limit_in_bytes") == str(90 * MiB)


@pytest.mark.parametrize("runtime", ["crun", "runsc"])
def test_update_under_other_runtimes(pouchd, box, runtime):
    import shutil
    if not shutil.which(runtime):
        pytest.skip(f"{runtime} is not installed")
    n = box.run_d("--runtime", runtime, "-m", "64m", "busybox", "sleep", "600")
    cid = cid_of(pouchd, n)
    assert cg(cid, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    r = pouchd.cli("update", "-m", "96m", "--pids-limit", "30", n)
    assert r.returncode == 0, r.stderr
    assert cg(cid, "memory", "memory.limit_in_bytes") == str(96 * MiB)
    assert cg(cid, "pids", "pids.max") == "30"

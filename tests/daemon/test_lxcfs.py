"""LXCFS through the real pouchd (--enable-lxcfs): a container's /proc shows its own limits,
pouchd restarts a killed lxcfs and rebinds the views into running containers, and
`pouch remount-lxcfs` does it on demand."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from tests.conftest import _missing_for_daemon
from tests.daemon.conftest import Box, inspect, wait_for
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.images import busybox_archive, procps_archive

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lxd():
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    if not shutil.which("lxcfs"):
        pytest.skip("lxcfs is not installed (apt-get install lxcfs)")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing: lxcfs needs FUSE")
    d = PouchDaemon(extra_args=["--enable-lxcfs"])
    d.start()
    try:
        for archive in (busybox_archive(), procps_archive()):
            r = d.cli("load", "-i", archive)
            assert r.returncode == 0, r.stderr
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def lbox(lxd):
    b = Box(lxd)
    yield b
    b.cleanup()


def lxcfs_pid(base: str) -> int:
    with open(os.path.join(base, "home", "lxcfs.pid")) as f:
        return int(f.read().strip())


def meminfo_total_kb(text: str) -> int:
    return int(next(l for l in text.splitlines() if l.startswith("MemTotal:")).split()[1])


def test_free_shows_the_memory_limit(lxd):
    r = lxd.cli("run", "--rm", "-m", "200m", "--enableLxcfs", "pouch-procps", "free", "-m")
    assert r.returncode == 0, r.stderr
    mem = next(l for l in r.stdout.splitlines() if l.startswith("Mem:"))
    assert mem.split()[1] == "200", r.stdout
    r = lxd.cli("run", "--rm", "-m", "200m", "--enableLxcfs", "busybox", "cat", "/proc/meminfo")
    assert meminfo_total_kb(r.stdout) == 204800
    # without the flag the host's memory shows
    r = lxd.cli("run", "--rm", "-m", "200m", "busybox", "cat", "/proc/meminfo")
    assert meminfo_total_kb(r.stdout) > 204800


def test_each_documented_view_is_lxcfs_s_inside_the_container(lxd):
    """What a user of --enableLxcfs gets (FEATURES: meminfo, cpuinfo, stat, uptime, diskstats,
    swaps, loadavg, cpu/online): each file is served by lxcfs in the container and readable."""
    views = ("/proc/meminfo", "/proc/cpuinfo", "/proc/stat", "/proc/uptime", "/proc/diskstats",
             "/proc/swaps", "/proc/loadavg", "/sys/devices/system/cpu/online")
    r = lxd.cli("run", "--rm", "--enableLxcfs", "busybox", "sh", "-c",
                "cat /proc/self/mountinfo; for f in " + " ".join(views) + "; do cat $f >/dev/null || echo BAD $f; done")
    assert r.returncode == 0 and "BAD" not in r.stdout, r.stdout + r.stderr
    fstype = {}
    for line in r.stdout.splitlines():
        fields = line.split()
        if " - " in line:
            fstype[fields[4]] = line.split(" - ", 1)[1].split()[0]
    assert {v: fstype.get(v) for v in views} == {v: "fuse.lxcfs" for v in views}


def test_cpus_and_cpuset_show_one_cpu(lxd):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the host has a single CPU: nothing to virtualize")
    script = "nproc; grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online"
    r = lxd.cli("run", "--rm", "--enableLxcfs", "--cpuset-cpus", "0", "busybox", "sh", "-c", script)
    assert r.stdout.split() == ["1", "1", "0"], r
    # --cpus: lxcfs (--enable-cfs) derives cpuinfo and cpu/online from the CFS quota; nproc
    # follows the scheduler affinity, which no /proc view can change
    r = lxd.cli("run", "--rm", "--enableLxcfs", "--cpus", "1", "busybox", "sh", "-c", script)
    assert r.stdout.split()[1:] == ["1", "0"], r


def test_uptime_is_the_containers(lxd):
    with open("/proc/uptime") as f:
        host_up = float(f.read().split()[0])
    r = lxd.cli("run", "--rm", "--enableLxcfs", "busybox", "cat", "/proc/uptime")
    up = float(r.stdout.split()[0])
    assert up < 10 < host_up or up < host_up / 2, (up, host_up)


def test_killed_lxcfs_is_restarted_and_views_rebound(lxd, lbox):
    n = lbox.run_d("-m", "100m", "--enableLxcfs", "busybox", "sleep", "600")
    assert meminfo_total_kb(lxd.cli("exec", n, "cat", "/proc/meminfo").stdout) == 102400
    old = lxcfs_pid(lxd.base)
    os.kill(old, signal.SIGKILL)

    def healed():
        r = lxd.cli("exec", n, "cat", "/proc/meminfo")
        return r.returncode == 0 and "MemTotal" in r.stdout and meminfo_total_kb(r.stdout) == 102400
    try:
        wait_for(healed, timeout=10, interval=0.2, what="meminfo readable again after SIGKILL of lxcfs")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{lxd.log()}") from None
    assert lxcfs_pid(lxd.base) != old
    # the container was not restarted
    assert inspect(lxd, n)["RestartCount"] == 0
    assert inspect(lxd, n)["State"]["Status"] == "running"


def test_remount_lxcfs_on_demand(lxd, lbox):
    n = lbox.run_d("-m", "150m", "--enableLxcfs", "busybox", "sleep", "600")
    pid = inspect(lxd, n)["State"]["Pid"]
    # take the view away inside the running container: it sees the host's memory again
    r = subprocess.run(["nsenter", "-t", str(pid), "-m", "umount", "/proc/meminfo"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert meminfo_total_kb(lxd.cli("exec", n, "cat", "/proc/meminfo").stdout) > 153600
    r = lxd.cli("remount-lxcfs")
    assert r.returncode == 0, r.stderr
    assert meminfo_total_kb(lxd.cli("exec", n, "cat", "/proc/meminfo").stdout) == 153600
    assert inspect(lxd, n)["State"]["Pid"] == pid


def test_enable_lxcfs_without_daemon_flag_is_refused(pouchd, box):
    name = box.name()
    r = pouchd.cli("run", "--name", name, "--enableLxcfs", "busybox", "true")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "--enable-lxcfs" in r.stderr, r.stderr
    assert pouchd.cli("inspect", name).returncode != 0
    assert pouchd.cli("remount-lxcfs").returncode == 1

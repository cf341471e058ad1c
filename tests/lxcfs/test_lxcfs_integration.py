"""Integration: a real lxcfs, a process in its own mount+pid namespace under a 200M memory cgroup,
its /proc/meminfo from lxcfs; lxcfs killed -> ENOTCONN -> supervisor restarts -> remount -> works."""
import asyncio
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from pouch.lxcfs import LxcfsSupervisor, is_alive, remount

pytestmark = pytest.mark.integration
MEMCG = "/sys/fs/cgroup/memory"


def _need():
    for tool in ("lxcfs", "unshare", "nsenter"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    if not os.path.exists(os.path.join(MEMCG, "memory.limit_in_bytes")):
        pytest.skip("no cgroup v1 memory controller at /sys/fs/cgroup/memory")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")


@pytest.fixture
def memcg():
    _need()
    path = os.path.join(MEMCG, f"pouch-test-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    with open(os.path.join(path, "memory.limit_in_bytes"), "w") as f:
        f.write(str(200 * 1024 * 1024))
    yield path
    for _ in range(50):
        try:
            os.rmdir(path)
            break
        except OSError:
            time.sleep(0.1)


@pytest.fixture
def container(tmp_path, memcg):
    """`sleep` as PID 1 of new mount+pid namespaces, with tmp_path hidden under a tmpfs there."""
    p = subprocess.Popen(["unshare", "-m", "-p", "-f", "--mount-proc", "--propagation", "private",
                          "sh", "-c", f"mount -t tmpfs tmpfs {tmp_path} && exec sleep 120"])
    child = None
    for _ in range(100):
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                kids = f.read().split()
            if kids and os.readlink(f"/proc/{kids[0]}/exe").endswith("sleep"):
                child = int(kids[0])
                break
        except OSError:
            pass
        time.sleep(0.02)
    assert child, "namespace process did not start"
    with open(os.path.join(memcg, "cgroup.procs"), "w") as f:
        f.write(str(child))
    yield child
    p.send_signal(signal.SIGKILL)
    os.kill(child, signal.SIGKILL)
    p.wait()


def _read_in(pid: int, memcg: str, path: str) -> subprocess.CompletedProcess:
    """cat `path` inside the namespace of `pid`, from a process in the container's memory cgroup."""
    script = f"echo $$ > {memcg}/cgroup.procs && exec nsenter -t {pid} -m cat {path}"
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10)


def _memtotal(text: str) -> str:
    return next(l for l in text.splitlines() if l.startswith("MemTotal:")).split()[1]


async def test_meminfo_limit_kill_restart_remount(tmp_path, memcg, container):
    restarted = asyncio.Event()

    async def on_restart():
        restarted.set()

    sup = LxcfsSupervisor(str(tmp_path / "lxcfs"), on_restart=on_restart, check_interval=0.2)
    await sup.start()
    try:
        views = sup.views()
        assert "/proc/meminfo" in views and "/sys/devices/system/cpu/online" in views
        assert "/proc/loadavg" in views
        # the container cannot see the host's lxcfs mount point (tmp_path is a tmpfs in there)
        assert _read_in(container, memcg, str(tmp_path / "lxcfs" / "proc" / "meminfo")).returncode != 0
        done = await asyncio.to_thread(remount, container, sup.mount_point, views)
        assert "/proc/meminfo" in done
        r = _read_in(container, memcg, "/proc/meminfo")
        assert r.returncode == 0, r.stderr
        assert _memtotal(r.stdout) == "204800"
        assert "MemTotal" in open("/proc/meminfo").read()       # the host's own view is untouched
        assert _memtotal(open("/proc/meminfo").read()) != "204800"

        old_pid = sup.pid
        os.kill(old_pid, signal.SIGKILL)
        r = _read_in(container, memcg, "/proc/meminfo")
        assert r.returncode != 0 and "Transport endpoint is not connected" in r.stderr

        await asyncio.wait_for(restarted.wait(), 10)
        assert sup.pid != old_pid and sup.restarts == 1 and is_alive(sup.mount_point)
        await asyncio.to_thread(remount, container, sup.mount_point, views)
        r = _read_in(container, memcg, "/proc/meminfo")
        assert r.returncode == 0, r.stderr
        assert _memtotal(r.stdout) == "204800"
    finally:
        await sup.stop()
    assert not os.path.ismount(str(tmp_path / "lxcfs"))

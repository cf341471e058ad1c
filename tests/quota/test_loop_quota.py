"""Integration: the loop quota backend (a sized ext4 on a loop device per container / volume).

Runs on any kernel with loop devices and e2fsprogs (this machine's kernel has no project quota).
One daemon forced to `--quota-backend loop` serves the module; the crash test has its own.
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fixtures.daemon import PouchDaemon  # noqa: E402
from fixtures.images import busybox_archive  # noqa: E402

from pouch.quota.loopfs import available  # noqa: E402

pytestmark = pytest.mark.integration
MiB = 1024 * 1024

_ok, _why = available()
if not os.path.exists("/bin/busybox"):
    _ok, _why = False, "busybox-static is not installed (/bin/busybox)"


def _daemon(extra=None, env=None):
    d = PouchDaemon(extra_args=["--quota-backend", "loop"] + list(extra or []))
    d.start(env=env)
    return d


@pytest.fixture(scope="module")
def qd():
    if not _ok:
        pytest.skip(_why)
    d = _daemon()
    d.cli("load", "-i", busybox_archive(), check=True)
    yield d
    d.cleanup()


def _loops_under(path: str) -> list:
    r = subprocess.run(["losetup", "-a", "-O", "NAME,BACK-FILE", "-n"], capture_output=True, text=True)
    return [l for l in r.stdout.splitlines() if path in l]


def _mounts_under(path: str) -> list:
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(path.rstrip("/") + "/")]


def _quota_images(home: str) -> list:
    out = []
    for root, _dirs, files in os.walk(os.path.join(home, "quota", "loop")):
        out += [os.path.join(root, f) for f in files if f == "disk.img"]
    return out


def _clean(d, timeout: float = 15.0) -> bool:
    """No quota image and no loop device of `d` left (both go in the background after an rm:
    the image file by a thread, the device when the kernel has finished the lazy unmount)."""
    deadline = time.monotonic() + timeout
    while True:
        if _quota_images(d.home) == [] and _loops_under(d.base) == []:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_info_shows_backend_and_reason(qd):
    r = qd.cli("info", check=True)
    line = [l for l in r.stdout.splitlines() if "Disk Quota" in l]
    assert line and "loop" in line[0] and "loop device" in line[0], r.stdout


def test_rootfs_quota_df_and_enospc(qd):
    r = qd.cli("run", "--rm", "--disk-quota", "64m", "busybox", "sh", "-c",
               "df -k / | tail -1; dd if=/dev/zero of=/big bs=1M count=100; echo rc=$?; "
               "ls -l /big", timeout=120)
    out = r.stdout + r.stderr
    assert "No space left on device" in out, out
    assert "rc=1" in out, out
    size_kb = int(r.stdout.splitlines()[0].split()[1])
    assert 56 * 1024 <= size_kb <= 64 * 1024, r.stdout          # df inside shows ~ the quota
    written = int(re.search(r"\s(\d+) \w+ +\d+ +[\d:]+ /big", r.stdout).group(1))
    assert 50 * MiB <= written <= 64 * MiB, r.stdout              # stopped near the size
    # --rm: nothing left behind
    assert _clean(qd)


def test_no_quota_pays_nothing_and_bad_quota_refused(qd):
    qd.cli("create", "--name", "plain", "busybox", "true", check=True)
    assert _quota_images(qd.home) == []
    r = qd.cli("create", "--disk-quota", "/data=64m", "busybox", "true")
    assert r.returncode != 0 and "writable layer" in r.stderr
    r = qd.cli("create", "--disk-quota", "1m", "busybox", "true")
    assert r.returncode != 0 and "too small" in r.stderr
    assert _clean(qd)
    r = qd.cli("update", "--disk-quota", "64m", "plain")
    assert r.returncode != 0 and "without a disk quota" in r.stderr
    qd.cli("rm", "plain", check=True)


def test_live_growth_and_shrink_refused(qd):
    # 256m: xfs where pouchd lacks CAP_SYS_RESOURCE (as here), ext4 elsewhere; both grow online
    qd.cli("run", "-d", "--name", "grow", "--disk-quota", "256m", "busybox", "sleep", "300", check=True)
    try:
        r = qd.cli("exec", "grow", "sh", "-c", "dd if=/dev/zero of=/a bs=1M count=40 && sync")
        assert r.returncode == 0, r.stderr
        r = qd.cli("update", "--disk-quota", "32m", "grow")
        assert r.returncode != 0 and "in use" in r.stderr, r.stderr
        r = qd.cli("update", "--disk-quota", "200m", "grow")
        assert r.returncode != 0 and "cannot shrink" in r.stderr, r.stderr
        r = qd.cli("update", "--disk-quota", "320m", "grow")
        assert r.returncode == 0, r.stderr
        # past the old limit: 40 + 240 MB > 256 MB; a write past the new one still stops
        r = qd.cli("exec", "grow", "dd", "if=/dev/zero", "of=/b", "bs=1M", "count=240", timeout=120)
        assert r.returncode == 0, r.stderr
        r = qd.cli("exec", "grow", "dd", "if=/dev/zero", "of=/c", "bs=1M", "count=64", timeout=120)
        assert r.returncode != 0 and "No space left on device" in r.stderr, r.stderr
        r = qd.cli("exec", "grow", "df", "-k", "/", check=True)
        assert 300 * 1024 <= int(r.stdout.splitlines()[-1].split()[1]) <= 320 * 1024, r.stdout
        cfg = json.loads(qd.cli("inspect", "grow", check=True).stdout)[0]["Config"]
        assert cfg["DiskQuota"] == {"/": "320m"}
    finally:
        qd.cli("rm", "-f", "grow")
    assert _clean(qd)


def test_commit_diff_cp_of_quota_container(qd, tmp_path):
    qd.cli("run", "--name", "qc", "--disk-quota", "32m", "busybox", "sh", "-c",
           "echo hello > /greeting", check=True)
    try:
        assert "A /greeting" in qd.cli("diff", "qc", check=True).stdout
        qd.cli("cp", "qc:/greeting", str(tmp_path / "g"), check=True)
        assert (tmp_path / "g").read_text() == "hello\n"
        (tmp_path / "in").write_text("from host\n")
        qd.cli("cp", str(tmp_path / "in"), "qc:/in", check=True)
        qd.cli("commit", "qc", "qimg:1", check=True)
        r = qd.cli("run", "--rm", "qimg:1", "cat", "/greeting", "/in", check=True)
        assert r.stdout == "hello\nfrom host\n"
    finally:
        qd.cli("rm", "-f", "qc")
        qd.cli("rmi", "qimg:1")
    assert _clean(qd)


def test_upgrade_keeps_quota(qd):
    # a different image (Pouch's upgrade refuses the container's own image)
    qd.cli("run", "--name", "upsrc", "busybox", "touch", "/marker", check=True)
    qd.cli("commit", "upsrc", "busybox:up", check=True)
    qd.cli("rm", "upsrc", check=True)
    qd.cli("run", "-d", "--name", "upq", "--disk-quota", "32m", "busybox", "sh", "-c",
           "trap 'exit 0' TERM; while :; do sleep 1; done", check=True)
    try:
        qd.cli("exec", "upq", "touch", "/old", check=True)
        r = qd.cli("upgrade", "--image", "busybox:up", "upq", timeout=120)
        assert r.returncode == 0, r.stderr
        r = qd.cli("exec", "upq", "sh", "-c", "df -k / | tail -1; ls /old; dd if=/dev/zero of=/x bs=1M count=64")
        assert "No such file" in r.stderr and "No space left on device" in r.stderr, r.stdout + r.stderr
        assert int(r.stdout.splitlines()[0].split()[1]) <= 32 * 1024
        deadline = time.monotonic() + 15                 # the old layer's fs went with it
        while len(_quota_images(qd.home)) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_quota_images(qd.home)) == 1
    finally:
        qd.cli("rm", "-f", "upq")
        qd.cli("rmi", "busybox:up")
    assert _clean(qd)


def test_failed_upgrade_rolls_back_with_quota(qd):
    qd.cli("run", "-d", "--name", "upf", "--disk-quota", "32m", "busybox", "sh", "-c",
           "trap 'exit 0' TERM; while :; do sleep 1; done", check=True)
    try:
        qd.cli("exec", "upf", "touch", "/old", check=True)
        r = qd.cli("upgrade", "--image", "busybox", "upf", "/no/such/binary", timeout=120)
        assert r.returncode != 0
        r = qd.cli("exec", "upf", "sh", "-c", "ls /old && df -k / | tail -1; dd if=/dev/zero of=/x bs=1M count=64")
        assert "/old" in r.stdout and "No space left on device" in r.stderr, r.stdout + r.stderr
        assert int(r.stdout.splitlines()[1].split()[1]) <= 32 * 1024
    finally:
        qd.cli("rm", "-f", "upf")
    assert _clean(qd)


def test_volume_with_size(qd):
    qd.cli("volume", "create", "--name", "sized", "-o", "size=32m", check=True)
    try:
        r = qd.cli("run", "--rm", "-v", "sized:/v", "busybox", "sh", "-c",
                   "df -k /v | tail -1; dd if=/dev/zero of=/v/f bs=1M count=64; echo rc=$?")
        assert "No space left on device" in r.stderr and "rc=1" in r.stdout, r.stdout + r.stderr
        assert 28 * 1024 <= int(r.stdout.splitlines()[0].split()[1]) <= 32 * 1024
        # the data stays in the volume for the next container
        r = qd.cli("run", "--rm", "-v", "sized:/v", "busybox", "ls", "/v", check=True)
        assert r.stdout.split() == ["f"] or "f" in r.stdout.split()
    finally:
        qd.cli("volume", "rm", "sized")
    assert _clean(qd)
    assert not os.path.exists(os.path.join(qd.home, "volumes", "sized"))


def test_crash_between_mkfs_and_mount_leaves_nothing():
    """SIGKILL pouchd between mkfs and mount (failpoint); the restarted pouchd removes that
    image, and leaves alone the quota fs of a container that kept running through the crash."""
    if not _ok:
        pytest.skip(_why)
    d = _daemon()
    try:
        d.cli("load", "-i", busybox_archive(), check=True)
        d.cli("run", "-d", "--name", "keep", "--disk-quota", "32m", "busybox", "sleep", "600", check=True)
        d.kill9()
        d.start(env={"POUCH_FAILPOINT": "quota-after-mkfs"})
        r = d.cli("create", "--disk-quota", "64m", "busybox", "true")
        assert r.returncode != 0
        d.proc.wait(10)
        assert d.proc.returncode == -9                         # SIGKILLed at the fault point
        assert len(_quota_images(d.home)) == 2                 # the window: image made, not mounted
        d.proc = None
        d.start()                                              # no fault this time
        deadline = time.monotonic() + 15
        while len(_quota_images(d.home)) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_quota_images(d.home)) == 1 and len(_loops_under(d.base)) == 1
        assert d.cli("ps", "-q", check=True).stdout.split() != []
        r = d.cli("exec", "keep", "dd", "if=/dev/zero", "of=/f", "bs=1M", "count=64")
        assert r.returncode != 0 and "No space left on device" in r.stderr, r.stderr
        d.cli("rm", "-f", "keep", check=True)
        assert _clean(d)
        assert [m for m in _mounts_under(d.home) if "quota" in m or "snapshots" in m] == []
    finally:
        d.cleanup()

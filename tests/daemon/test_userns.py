"""`pouchd --userns-remap default` through the real pouchd: root inside is the first id of the
pouchremap subordinate range outside, and the rootfs is owned by root inside / the range outside."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess

import pytest

from tests.conftest import _missing_for_daemon
from tests.daemon.conftest import inspect, wait_for
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.images import busybox_archive

pytestmark = pytest.mark.integration


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


@pytest.fixture(scope="module")
def remapd():
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    for tool in ("useradd", "usermod", "userdel"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is missing (Debian package passwd)")
    with open("/proc/sys/user/max_user_namespaces") as f:
        if int(f.read()) == 0:
            pytest.skip("user namespaces are disabled (user.max_user_namespaces = 0)")
    saved = {p: _read(p) for p in ("/etc/subuid", "/etc/subgid")}
    try:
        pwd.getpwnam("pouchremap")
        existed = True
    except KeyError:
        existed = False
    d = PouchDaemon(extra_args=["--userns-remap", "default"])
    try:
        os.chmod(d.base, 0o711)   # mkdtemp makes it 0700: the remapped root must pass through
        d.start()
        assert d.cli("load", "-i", busybox_archive()).returncode == 0
        yield d
    finally:
        d.cleanup()
        if not existed:
            subprocess.run(["userdel", "pouchremap"], capture_output=True)
            for path, text in saved.items():
                if text is None:
                    if os.path.exists(path) and not _read(path):
                        os.unlink(path)
                elif _read(path) != text:
                    with open(path, "w") as f:
                        f.write(text)


def _range() -> tuple[int, int]:
    with open("/etc/subuid") as f:
        for line in f:
            name, start, size = line.strip().split(":")
            if name == "pouchremap":
                return int(start), int(size)
    raise AssertionError("pouchremap has no /etc/subuid range")


def test_root_inside_is_the_subordinate_range_outside(remapd):
    start, size = _range()
    r = remapd.cli("run", "--rm", "busybox", "cat", "/proc/self/uid_map")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", str(start), str(size)]
    assert f"User Namespaces: yes (remapped: root is {start}:{start}, {size} ids)" in remapd.cli("info").stdout
    r = remapd.cli("run", "--rm", "busybox", "sh", "-c", "stat -c %u:%g /bin/busybox /etc/passwd /; id -u")
    assert r.stdout.split() == ["0:0"] * 3 + ["0"], r


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_rootfs_owned_by_the_range_on_the_host(remapd, runtime):
    if not shutil.which(runtime):
        pytest.skip(f"{runtime} is not installed")
    start, _ = _range()
    name = "userns-" + runtime
    try:
        r = remapd.cli("run", "-d", "--name", name, "--runtime", runtime, "busybox", "sh", "-c",
                       "touch /tmp/made-inside; exec sleep 600")
        assert r.returncode == 0, r.stderr
        pid = inspect(remapd, name)["State"]["Pid"]
        with open(f"/proc/{pid}/status") as f:
            uids = next(l for l in f if l.startswith("Uid:")).split()[1:]
        assert uids == [str(start)] * 4
        st = os.stat(f"/proc/{pid}/root/bin/busybox")
        assert (st.st_uid, st.st_gid) == (start, start)
        # a file written inside belongs to the range on the host
        made = wait_for(lambda: os.path.exists(f"/proc/{pid}/root/tmp/made-inside"), what="file made inside")
        assert made and os.stat(f"/proc/{pid}/root/tmp/made-inside").st_uid == start
        if runtime == "crun":
            # runc 1.1 joins the user namespace before pouchd's network namespace on exec and gets
            # EPERM (fixed in runc 1.2); crun orders it right
            r = remapd.cli("exec", name, "sh", "-c", "id -u; stat -c %u /tmp/made-inside")
            assert r.stdout.split() == ["0", "0"], r
    finally:
        remapd.cli("rm", "-f", name)


def test_image_stays_unmapped_for_the_host(remapd):
    """Remapping works on a copy: the image's own layers keep their original owners."""
    r = remapd.cli("run", "--rm", "busybox", "true")
    assert r.returncode == 0, r.stderr
    root = os.path.join(remapd.home, "containerd", "root", "io.containerd.snapshotter.v1.overlayfs", "snapshots")
    owners = set()
    for snap in os.listdir(root):
        p = os.path.join(root, snap, "fs", "bin", "busybox")
        if os.path.exists(p):
            owners.add(os.lstat(p).st_uid)
    start, _ = _range()
    assert owners == {0, start}


def test_home_below_a_closed_directory_is_a_clear_startup_error(remapd):
    closed = PouchDaemon(extra_args=["--userns-remap", "default"])   # base is 0700
    try:
        with pytest.raises(RuntimeError) as e:
            closed.start(timeout=15)
        assert "not searchable by the remapped root" in str(e.value) and closed.base in str(e.value)
        assert "Traceback" not in str(e.value)
    finally:
        closed.cleanup()

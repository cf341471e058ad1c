"""`pouch upgrade`: a container onto a new image keeps its id, name and volumes (named and
anonymous), gets the new image's root filesystem, runs again; a failing upgrade rolls back to
exactly what was there."""
from __future__ import annotations

import pytest

from tests.daemon.conftest import inspect, status

pytestmark = pytest.mark.integration


@pytest.fixture
def v2_image(pouchd, box):
    """busybox plus /etc/release=v2 and a new default command (made with commit)."""
    n = box.name()
    assert pouchd.cli("run", "--name", n, "busybox", "sh", "-c", "echo v2 > /etc/release").returncode == 0
    assert pouchd.cli("commit", "-c", 'CMD ["sh", "-c", "cat /etc/release; sleep 600"]', n,
                      "upgrade-test:v2").returncode == 0
    yield "upgrade-test:v2"
    pouchd.cli("rmi", "-f", "upgrade-test:v2")


def test_upgrade_keeps_identity_and_volumes_and_swaps_the_rootfs(pouchd, box, v2_image):
    vol = box.name()
    n = box.run_d("-v", f"{vol}:/named", "-v", "/anon", "busybox", "sleep", "600")
    assert pouchd.cli("exec", n, "sh", "-c", "echo keep > /named/f; echo keep-anon > /anon/f; "
                                             "echo rw > /rw-layer").returncode == 0
    before = inspect(pouchd, n)
    anon = next(m["Name"] for m in before["Mounts"] if m["Destination"] == "/anon")
    r = pouchd.cli("upgrade", "--image", v2_image, n)
    assert r.returncode == 0, r.stderr
    after = inspect(pouchd, n)
    assert after["Id"] == before["Id"] and after["Name"] == before["Name"]
    assert after["Image"] != before["Image"] and after["Config"]["Image"] == v2_image
    assert status(pouchd, n) == "running"
    # the old command came along (it was given at create); the new image's files are there
    out = pouchd.cli("exec", n, "sh", "-c", "cat /named/f /anon/f /etc/release; test -e /rw-layer || echo fresh")
    assert out.stdout.split() == ["keep", "keep-anon", "v2", "fresh"], out.stderr
    assert next(m["Name"] for m in after["Mounts"] if m["Destination"] == "/anon") == anon
    assert pouchd.cli("volume", "ls", "-q").stdout.count("\n") >= 2
    box.cleanup()
    pouchd.cli("volume", "rm", vol)


def test_failed_upgrade_rolls_back(pouchd, box, v2_image):
    n = box.run_d("busybox", "sleep", "600")
    assert pouchd.cli("exec", n, "sh", "-c", "echo rw > /rw-layer").returncode == 0
    before = inspect(pouchd, n)
    r = pouchd.cli("upgrade", "--image", v2_image, n, "/no/such/binary")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    after = inspect(pouchd, n)
    assert after["Image"] == before["Image"] and after["Config"]["Cmd"] == before["Config"]["Cmd"]
    assert status(pouchd, n) == "running"
    assert pouchd.cli("exec", n, "cat", "/rw-layer").stdout == "rw\n"  # the writable layer survived
    assert pouchd.cli("upgrade", "--image", "no-such-image:1", n).returncode != 0
    assert status(pouchd, n) == "running"
    # a later upgrade that works also drops the layer the rolled-back one kept
    assert pouchd.cli("upgrade", "--image", v2_image, n).returncode == 0
    assert pouchd.cli("exec", n, "cat", "/etc/release").stdout == "v2\n"
    import glob
    import subprocess
    sock = glob.glob(f"{pouchd.base}/run/containerd/containerd.sock")[0]
    snaps = subprocess.run(["ctr", "-a", sock, "-n", "default", "snapshots", "ls"], capture_output=True,
                           text=True).stdout
    assert f"{before['Id']}-upgrade-" not in snaps


def _snapshots(d) -> str:
    import glob
    import subprocess
    sock = glob.glob(f"{d.base}/run/containerd/containerd.sock")[0]
    return subprocess.run(["ctr", "-a", sock, "-n", "default", "snapshots", "ls"], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture(scope="module")
def crash_pouchd():
    """A pouchd of this module's own (the tests kill it), with busybox and crash-test:v2."""
    from tests.conftest import _missing_for_daemon
    from tests.fixtures.daemon import PouchDaemon
    from tests.fixtures.images import busybox_archive
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    d = PouchDaemon()
    d.start()
    d.cli("load", "-i", busybox_archive(), check=True)
    d.cli("run", "--name", "v2src", "busybox", "sh", "-c", "echo v2 > /etc/release", check=True)
    d.cli("commit", "v2src", "crash-test:v2", check=True)
    yield d
    d.cleanup()


@pytest.mark.parametrize("point,lands_on", [
    ("upgrade-before-commit", "old"),  # stopped, marker written, layer not yet moved
    ("upgrade-after-commit", "old"),   # old writable layer committed aside, new one not prepared
    ("upgrade-before-start", "new"),   # new layer and spec in place, container not started
    ("start-task-created", "new"),     # the new rootfs's task created, its process not started
])
def test_upgrade_interrupted_by_a_real_crash_comes_back_running(crash_pouchd, point, lands_on):
    """pouchd SIGKILLs itself at a step of a real upgrade of a running container (the failpoint
    is armed for that one daemon's life): the next pouchd either rolls the upgrade back (before
    the new layer is in place: old image, the writable layer's data kept) or completes it, and
    either way the container runs again, as it did before the upgrade."""
    d = crash_pouchd
    assert d.cli("run", "-d", "--name", "crashy", "busybox", "sleep", "600").returncode == 0
    assert d.cli("exec", "crashy", "sh", "-c", "echo precious > /data-file").returncode == 0
    cid = inspect(d, "crashy")["Id"]
    d.stop()  # live restore: the container keeps running
    d.start(env={"POUCH_FAILPOINT": point})
    r = d.cli("upgrade", "--image", "crash-test:v2", "crashy")
    assert r.returncode != 0, "pouchd should have died mid-upgrade"
    assert d.proc.wait(10) == -9, d.log()
    d.proc = None
    d.start()
    assert status(d, "crashy") == "running", d.log()
    c = inspect(d, "crashy")
    assert "Upgrading" not in c
    release = d.cli("exec", "crashy", "cat", "/etc/release")
    data = d.cli("exec", "crashy", "cat", "/data-file")
    if lands_on == "old":
        assert "rolled back" in d.log()
        assert c["Config"]["Image"] == "busybox"
        assert release.returncode != 0  # busybox has no /etc/release
        assert data.stdout == "precious\n", data.stderr  # the writable layer came back
    else:
        assert "completed" in d.log()
        assert c["Config"]["Image"] == "crash-test:v2"
        assert release.stdout == "v2\n"
        assert data.returncode != 0  # a fresh writable layer, as a finished upgrade gives
        assert f"{cid}-upgrade-" not in _snapshots(d), "the finished upgrade dropped the old layer"
    assert d.cli("rm", "-f", "crashy").returncode == 0
    assert cid not in _snapshots(d), "removing the container removes any kept layer too"


def test_upgrade_rebases_the_env_inherited_from_the_image():
    """Config.Env holds the image's Env (merged at create): an upgrade swaps the old image's
    entries for the new one's and keeps the user's."""
    from pouch.daemon.mgr.upgrade import rebase_env
    assert rebase_env(["PATH=/a", "V=1", "MINE=x"], ["PATH=/a", "V=1"], ["PATH=/b", "V=2"]) == \
        ["PATH=/b", "V=2", "MINE=x"]
    assert rebase_env(["PATH=/a", "V=9"], ["PATH=/a", "V=1"], ["PATH=/b", "V=2"]) == ["PATH=/b", "V=9"]
    default = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert rebase_env([default, "MINE=x"], [], ["PATH=/b"]) == ["PATH=/b", "MINE=x"]

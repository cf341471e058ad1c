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


def test_upgrade_interrupted_by_a_crash_is_rolled_back_at_restart(fresh_pouchd):
    """pouchd SIGKILLed mid-upgrade, right after it committed the old writable layer aside: the
    next pouchd puts that layer back, and the container runs on its old image with its data."""
    import glob
    import json
    import subprocess

    from pouch.daemon.meta.store import MetaStore
    d = fresh_pouchd
    assert d.cli("run", "-d", "--name", "crashy", "busybox", "sleep", "600").returncode == 0
    assert d.cli("exec", "crashy", "sh", "-c", "echo precious > /data-file").returncode == 0
    assert d.cli("stop", "-t", "1", "crashy").returncode == 0
    cid = inspect(d, "crashy")["Id"]
    d.kill9()
    # the state upgrade() leaves between committing the layer aside and preparing the new one
    sock = glob.glob(f"{d.base}/run/containerd/containerd.sock")[0]
    ctr = ["ctr", "-a", sock, "-n", "default"]
    spec = subprocess.run([*ctr, "containers", "info", "--spec", cid], capture_output=True, text=True, check=True).stdout
    subprocess.run([*ctr, "snapshots", "commit", f"{cid}-upgrade-crash", cid], check=True, capture_output=True)
    store = MetaStore(f"{d.home}/meta/meta.db")
    meta = store.get("containers", cid)
    meta["Upgrading"] = {"Image": "docker.io/library/busybox:latest", "Spec": json.loads(spec),
                         "Backup": f"{cid}-upgrade-crash"}
    store.put("containers", cid, meta)
    store.close()
    d.start()
    assert "rolled back" in d.log()
    assert "Upgrading" not in inspect(d, "crashy")
    assert d.cli("start", "crashy").returncode == 0
    assert d.cli("exec", "crashy", "cat", "/data-file").stdout == "precious\n"
    assert d.cli("rm", "-f", "crashy").returncode == 0
    r = subprocess.run([*ctr, "snapshots", "ls"], capture_output=True, text=True)
    assert cid not in r.stdout, "removing the container removes the kept layer too"

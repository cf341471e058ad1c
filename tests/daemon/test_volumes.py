"""Volumes through the real pouchd: volume create/ls/inspect/rm/prune, -v name:/path[:ro], anonymous
volumes for an image's VOLUME with copy-up, --volumes-from, --mount bind|volume|tmpfs, --tmpfs,
refusal to remove a volume in use, rm -v, and the local driver's -o mount=DIR (the data directory).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid

import pytest

from tests.daemon.nettools import SEED, cli_ok, inspect_json, load_test_image

pytestmark = pytest.mark.integration


@pytest.fixture
def vols(pouchd):
    """Unique volume names, removed at teardown (after the box's containers)."""
    made: list[str] = []

    def new() -> str:
        n = "v" + uuid.uuid4().hex[:10]
        made.append(n)
        return n
    yield new
    if made:
        pouchd.cli("volume", "rm", "-f", *made)


def test_volume_create_ls_inspect_rm_prune(pouchd, vols):
    name, other = vols(), vols()
    label = "pouchtest=" + uuid.uuid4().hex[:8]
    assert cli_ok(pouchd, "volume", "create", "--name", name, "-l", label).strip() == name
    cli_ok(pouchd, "volume", "create", other, "-l", label)
    assert name in cli_ok(pouchd, "volume", "ls", "-q").split()
    rows = [line.split() for line in cli_ok(pouchd, "volume", "ls").splitlines()[1:]]
    assert ["local", name] in rows
    info = inspect_json(pouchd, "volume", name)
    assert info["Name"] == name and info["Driver"] == "local"
    assert info["Labels"] == {"pouchtest": label.split("=")[1]}
    assert os.path.isdir(info["Mountpoint"])
    cli_ok(pouchd, "volume", "rm", name)
    assert not os.path.exists(info["Mountpoint"])
    r = pouchd.cli("volume", "inspect", name)
    assert r.returncode == 1 and "not found" in r.stderr
    out = cli_ok(pouchd, "volume", "prune", "-f", "--filter", "label=" + label)
    assert out.split() == [other]
    assert other not in cli_ok(pouchd, "volume", "ls", "-q").split()


def test_named_volume_persists_and_ro_refuses_writes(pouchd, box, vols):
    v = vols()
    cli_ok(pouchd, "run", "--rm", "-v", f"{v}:/data", "busybox", "sh", "-c", "echo persisted > /data/f")
    assert v in cli_ok(pouchd, "volume", "ls", "-q").split()     # -v NAME creates the volume
    assert cli_ok(pouchd, "run", "--rm", "-v", f"{v}:/data", "busybox", "cat", "/data/f").strip() == "persisted"
    r = pouchd.cli("run", "--rm", "-v", f"{v}:/data:ro", "busybox", "sh", "-c", "cat /data/f; echo x > /data/g")
    assert r.returncode != 0 and "persisted" in r.stdout and "Read-only file system" in r.stderr
    mp = inspect_json(pouchd, "volume", v)["Mountpoint"]
    assert os.listdir(mp) == ["f"]


def test_volume_in_use_cannot_be_removed(pouchd, box, vols):
    v = vols()
    n = box.run_d("-v", f"{v}:/data", "busybox", "sleep", "600")
    r = pouchd.cli("volume", "rm", v)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "in use" in r.stderr, r.stderr
    status, _ = pouchd.api("DELETE", f"/volumes/{v}")
    assert status == 409
    assert v in cli_ok(pouchd, "volume", "ls", "-q").split()
    pouchd.cli("rm", "-f", n)
    cli_ok(pouchd, "volume", "rm", v)


def test_image_volume_is_anonymous_copied_up_and_removed_by_rm_v(pouchd, box):
    image = load_test_image(pouchd)
    n = box.run_d(image, "sleep", "600")
    assert cli_ok(pouchd, "exec", n, "cat", "/data/seed.txt").encode() == SEED
    mounts = inspect_json(pouchd, "", n)["Mounts"]
    anon = [m for m in mounts if m["Destination"] == "/data"]
    assert len(anon) == 1 and anon[0]["Type"] == "volume" and len(anon[0]["Name"]) == 64
    name = anon[0]["Name"]
    with open(os.path.join(anon[0]["Source"], "seed.txt"), "rb") as f:
        assert f.read() == SEED
    cli_ok(pouchd, "rm", "-f", "-v", n)
    assert pouchd.cli("volume", "inspect", name).returncode == 1


def test_anonymous_volume_kept_without_rm_v(pouchd, box):
    image = load_test_image(pouchd)
    n = box.run_d(image, "true")
    name = inspect_json(pouchd, "", n)["Mounts"][0]["Name"]
    cli_ok(pouchd, "rm", "-f", n)
    assert pouchd.cli("volume", "inspect", name).returncode == 0
    cli_ok(pouchd, "volume", "rm", name)


def test_copy_up_only_into_a_new_empty_volume(pouchd, vols):
    image = load_test_image(pouchd)
    fresh, used = vols(), vols()
    out = cli_ok(pouchd, "run", "--rm", "-v", f"{fresh}:/data", image, "cat", "/data/seed.txt")
    assert out.encode() == SEED
    cli_ok(pouchd, "run", "--rm", "-v", f"{used}:/data", "busybox", "sh", "-c", "echo mine > /data/own")
    out = cli_ok(pouchd, "run", "--rm", "-v", f"{used}:/data", image, "ls", "/data")
    assert out.split() == ["own"]
    out = cli_ok(pouchd, "run", "--rm", "--mount", f"type=volume,src={vols()},dst=/data,volume-nocopy", image,
                 "ls", "/data")
    assert out.split() == []


def test_volumes_from(pouchd, box, vols):
    v = vols()
    src = box.run_d("-v", f"{v}:/shared", "busybox", "sh", "-c", "echo from-src > /shared/x; sleep 600")
    out = cli_ok(pouchd, "run", "--rm", "--volumes-from", src, "busybox", "sh", "-c",
                 "sleep 0.3; cat /shared/x; echo back > /shared/y")
    assert out.strip() == "from-src"
    assert cli_ok(pouchd, "exec", src, "cat", "/shared/y").strip() == "back"
    r = pouchd.cli("run", "--rm", "--volumes-from", f"{src}:ro", "busybox", "touch", "/shared/z")
    assert r.returncode != 0 and "Read-only" in r.stderr


def test_mount_bind_volume_tmpfs(pouchd, vols):
    d = tempfile.mkdtemp(prefix="pouch-bind-")
    try:
        with open(os.path.join(d, "hostfile"), "w") as f:
            f.write("from-host\n")
        v = vols()
        out = cli_ok(pouchd, "run", "--rm",
                     "--mount", f"type=bind,source={d},target=/b",
                     "--mount", f"type=bind,source={d},target=/bro,readonly",
                     "--mount", f"type=volume,source={v},target=/v",
                     "--mount", "type=tmpfs,target=/t,tmpfs-size=2m",
                     "busybox", "sh", "-c",
                     "cat /b/hostfile; echo c > /b/fromc; echo v > /v/f; df -h /t | tail -1;"
                     " touch /bro/no 2>&1; grep ' /t ' /proc/mounts")
        lines = out.splitlines()
        assert lines[0] == "from-host"
        assert lines[1].split()[1] == "2.0M"
        assert "Read-only file system" in out
        assert lines[-1].split()[2] == "tmpfs"
        with open(os.path.join(d, "fromc")) as f:
            assert f.read() == "c\n"
        assert not os.path.exists(os.path.join(d, "no"))
        with open(os.path.join(inspect_json(pouchd, "volume", v)["Mountpoint"], "f")) as f:
            assert f.read() == "v\n"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tmpfs_flag_size(pouchd):
    out = cli_ok(pouchd, "run", "--rm", "--tmpfs", "/run:size=1m", "busybox", "sh", "-c",
                 "df -h /run | tail -1; grep ' /run ' /proc/mounts")
    df, mnt = out.splitlines()
    assert df.split()[0] == "tmpfs" and df.split()[1] == "1.0M"
    assert mnt.split()[2] == "tmpfs" and "size=1024k" in mnt


def test_local_driver_mount_option_puts_data_under_dir(pouchd, vols):
    d = tempfile.mkdtemp(prefix="pouch-voldir-")
    try:
        v = vols()
        cli_ok(pouchd, "volume", "create", "-o", f"mount={d}", v)
        mp = inspect_json(pouchd, "volume", v)["Mountpoint"]
        assert mp == d  # as Pouch: the data is that very directory
        cli_ok(pouchd, "run", "--rm", "-v", f"{v}:/d", "busybox", "sh", "-c", "echo here > /d/q")
        with open(os.path.join(mp, "q")) as f:
            assert f.read() == "here\n"
        cli_ok(pouchd, "volume", "rm", v)
        assert not os.path.exists(mp)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_volume_inspect_refcount_follows_containers(pouchd, box, vols):
    v = vols()
    n = box.run_d("-v", f"{v}:/data", "busybox", "sleep", "600")
    assert inspect_json(pouchd, "volume", v)["UsageData"]["RefCount"] == 1
    m = [x for x in inspect_json(pouchd, "", n)["Mounts"] if x["Destination"] == "/data"][0]
    assert m["Name"] == v and m["RW"] is True
    pouchd.cli("rm", "-f", n)
    assert inspect_json(pouchd, "volume", v)["UsageData"]["RefCount"] == 0
    assert json.loads(cli_ok(pouchd, "volume", "inspect", v))[0]["Name"] == v


def test_pouch_local_options_selectors_and_bad_options(pouchd, vols):
    d = tempfile.mkdtemp(prefix="pouch-voldir-")
    try:
        v = vols()
        cli_ok(pouchd, "volume", "create", "-o", f"mountpoint={d}", "-s", "zone=hz", v)
        info = inspect_json(pouchd, "volume", v)
        assert info["Mountpoint"] == d and info["Options"]["selector.zone"] == "hz"
        assert info["Status"]["selectors"] == {"zone": "hz"}  # (opt.size: tests/volume, the quota tests)
        # another volume on the same directory, a bad selector, an unknown option: refused, none made
        for args in (["-o", f"mount={d}"], ["-s", "novalue"], ["-o", "colour=red"], ["-o", "mount=rel/dir"]):
            w = vols()
            r = pouchd.cli("volume", "create", *args, w)
            assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
            assert pouchd.cli("volume", "inspect", w).returncode != 0
        cli_ok(pouchd, "volume", "rm", v)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_dr_mode_mounts_the_volume_subdirectory_filled_from_the_image(pouchd, vols):
    v = vols()
    out = cli_ok(pouchd, "run", "--rm", "-v", f"{v}:/etc:dr", "busybox", "sh", "-c",
                 "test -f /etc/passwd && echo has-passwd; echo mine > /etc/marker")
    assert "has-passwd" in out
    mp = inspect_json(pouchd, "volume", v)["Mountpoint"]
    assert os.path.isfile(os.path.join(mp, "etc", "passwd"))  # the image's /etc, copied into <vol>/etc
    with open(os.path.join(mp, "etc", "marker")) as f:
        assert f.read() == "mine\n"
    r = pouchd.cli("run", "--rm", "-v", "/tmp:/x:dr", "busybox", "true")
    assert r.returncode != 0 and "volumes only" in r.stderr


def test_tmpfs_volume_driver(pouchd, box, vols):
    v = vols()
    cli_ok(pouchd, "volume", "create", "-d", "tmpfs", "-o", "size=2m", v)
    n = box.run_d("-v", f"{v}:/t", "busybox", "sleep", "300")
    mp = inspect_json(pouchd, "volume", v)["Mountpoint"]
    with open("/proc/self/mountinfo") as f:
        line = next(l for l in f if l.split()[4] == mp)
    assert " - tmpfs " in line and "size=2048k" in line, line
    out = cli_ok(pouchd, "exec", n, "sh", "-c", "echo hi > /t/f && df -k /t | tail -1")
    assert out.split()[1] == "2048"
    pouchd.cli("rm", "-f", n)
    assert not os.path.ismount(mp)  # unmounted when its last container is gone
    cli_ok(pouchd, "volume", "rm", v)
    assert not os.path.exists(mp)
    r = pouchd.cli("volume", "create", "-d", "tmpfs", "-o", "mount=/x", vols())
    assert r.returncode != 0 and "tmpfs" in r.stderr

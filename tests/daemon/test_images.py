"""Images without a registry: load, save/load round trip, import, tag, rmi, images, inspect."""
from __future__ import annotations

import io
import json
import tarfile
import uuid

import pytest

from tests.fixtures.images import busybox_archive, busybox_layer, image_archive

pytestmark = pytest.mark.integration


def _repo() -> str:
    return "pt" + uuid.uuid4().hex[:8]


def _image_ids(d) -> list[str]:
    return d.cli("images", "-q").stdout.split()


def test_images_list_and_quiet(pouchd):
    r = pouchd.cli("images")
    assert r.returncode == 0
    assert any(l.split()[1:2] == ["busybox:latest"] or "busybox" in l for l in r.stdout.splitlines()[1:])
    info = json.loads(pouchd.cli("image", "inspect", "busybox").stdout)
    info = info[0] if isinstance(info, list) else info
    assert info["Id"].startswith("sha256:")
    assert info["Id"][7:19] in _image_ids(pouchd)
    assert "busybox:latest" in info["RepoTags"]
    assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    assert info["Size"] > 1_000_000
    assert info["Config"]["Cmd"] == ["sh"]


def test_tag_and_rmi_untag(pouchd):
    repo = _repo()
    assert pouchd.cli("tag", "busybox", f"{repo}:v1").returncode == 0
    r = pouchd.cli("run", "--rm", f"{repo}:v1", "echo", "tagged")
    assert r.stdout == "tagged\n", r.stderr
    ids = _image_ids(pouchd)
    # rmi of one of two tags only untags: the image and the other tag remain
    r = pouchd.cli("rmi", f"{repo}:v1")
    assert r.returncode == 0, r.stderr
    assert f"{repo}:v1" in r.stdout
    assert _image_ids(pouchd) == ids
    assert pouchd.cli("image", "inspect", f"{repo}:v1").returncode == 1
    assert pouchd.cli("image", "inspect", "busybox").returncode == 0


def test_save_load_round_trip(pouchd, tmp_path):
    repo = _repo()
    # a distinct image (own layer + config) so that deleting it does not touch busybox
    layer = busybox_layer()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = repo.encode() + b"\n"
        ti = tarfile.TarInfo("etc/marker")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    arch = tmp_path / "img.tar"
    arch.write_bytes(image_archive([layer, buf.getvalue()], {"Cmd": ["cat", "/etc/marker"]}, f"{repo}:1"))
    r = pouchd.cli("load", "-i", str(arch))
    assert r.returncode == 0, r.stderr
    assert f"{repo}:1" in r.stdout
    assert pouchd.cli("run", "--rm", f"{repo}:1").stdout == repo + "\n"
    saved = tmp_path / "saved.tar"
    r = pouchd.cli("save", "-o", str(saved), f"{repo}:1")
    assert r.returncode == 0, r.stderr
    with tarfile.open(saved) as tf:
        names = tf.getnames()
        assert "manifest.json" in names
        manifest = json.load(tf.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == [f"{repo}:1"] and len(manifest[0]["Layers"]) == 2
    image_id = json.loads(pouchd.cli("image", "inspect", f"{repo}:1").stdout)
    image_id = (image_id[0] if isinstance(image_id, list) else image_id)["Id"]
    r = pouchd.cli("rmi", f"{repo}:1")
    assert r.returncode == 0, r.stderr
    assert image_id[7:19] not in _image_ids(pouchd)
    r = pouchd.cli("load", "-i", str(saved))
    assert r.returncode == 0, r.stderr
    again = json.loads(pouchd.cli("image", "inspect", f"{repo}:1").stdout)
    assert (again[0] if isinstance(again, list) else again)["Id"] == image_id
    assert pouchd.cli("run", "--rm", f"{repo}:1").stdout == repo + "\n"
    assert pouchd.cli("rmi", f"{repo}:1").returncode == 0


def test_load_from_stdin(pouchd):
    with open(busybox_archive(), "rb") as f:
        r = pouchd.cli("load", input=f.read())
    assert r.returncode == 0, r.stderr
    assert b"busybox:latest" in r.stdout


def test_import_rootfs_then_run(pouchd, tmp_path):
    repo = _repo()
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(busybox_layer())
    r = pouchd.cli("import", str(rootfs), f"{repo}:imported")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("sha256:") or len(r.stdout.strip()) >= 12
    r = pouchd.cli("run", "--rm", f"{repo}:imported", "/bin/sh", "-c", "echo imported-ok")
    assert r.stdout == "imported-ok\n", r.stderr
    assert pouchd.cli("rmi", f"{repo}:imported").returncode == 0


def test_rmi_refused_while_container_uses_it(pouchd, box, tmp_path):
    repo = _repo()
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(busybox_layer())
    assert pouchd.cli("import", str(rootfs), f"{repo}:used").returncode == 0
    n = box.name()
    assert pouchd.cli("create", "--name", n, f"{repo}:used", "/bin/true").returncode == 0
    r = pouchd.cli("rmi", f"{repo}:used")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "container" in r.stderr.lower(), r.stderr
    assert pouchd.cli("image", "inspect", f"{repo}:used").returncode == 0
    assert pouchd.cli("rm", n).returncode == 0
    assert pouchd.cli("rmi", f"{repo}:used").returncode == 0


def test_unknown_image(pouchd):
    before = pouchd.cli("ps", "-aq").stdout.split()
    for args in (("image", "inspect", "no-such-image:1"), ("rmi", "no-such-image:1"),
                 ("tag", "no-such-image:1", "x:y")):
        r = pouchd.cli(*args)
        assert r.returncode == 1, args
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = pouchd.cli("create", "127.0.0.1:1/no-such-image:1")
    assert r.returncode == 1
    assert pouchd.cli("ps", "-aq").stdout.split() == before

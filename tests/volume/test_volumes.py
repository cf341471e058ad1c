"""Volume manager on a real directory tree: create/inspect/rm/prune, refcounts, copy-up, restart."""
from __future__ import annotations

import os
import stat

import pytest

from pouch.volume.errors import InvalidVolumeSpec, VolumeInUse, VolumeNotFound
from pouch.volume.manager import VolumeManager


@pytest.fixture
def vm(tmp_path):
    return VolumeManager(root=str(tmp_path / "volumes"))


def test_create_inspect_list_rm(vm, tmp_path):
    v = vm.create("v1", labels={"team": "a"}, options={"size": "10g"})
    assert v.mountpoint == str(tmp_path / "volumes" / "v1" / "_data") and os.path.isdir(v.mountpoint)
    info = vm.inspect("v1")
    assert info["Name"] == "v1" and info["Driver"] == "local" and info["Labels"] == {"team": "a"}
    assert info["Options"] == {"size": "10g"} and v.size == 10 << 30
    assert [x.name for x in vm.list({"label": ["team=a"]})] == ["v1"]
    assert vm.list({"label": ["team=b"]}) == []
    assert vm.create("v1") is v                      # same name again: the existing volume
    vm.remove("v1")
    assert not os.path.exists(os.path.dirname(v.mountpoint))
    with pytest.raises(VolumeNotFound):
        vm.inspect("v1")
    vm.remove("v1", force=True)


def test_mount_option_places_volume_and_size_hook_is_called(tmp_path):
    calls = []
    vm = VolumeManager(root=str(tmp_path / "volumes"), size_limiter=lambda p, n: calls.append((p, n)))
    v = vm.create("data", options={"mount": str(tmp_path / "disk" / "data"), "opt.size": "512m"})
    assert v.mountpoint == str(tmp_path / "disk" / "data") and os.path.isdir(v.mountpoint)  # Pouch: that dir
    assert calls == [(v.mountpoint, 512 << 20)]
    vm.remove("data")
    assert not os.path.exists(v.mountpoint) and os.path.isdir(tmp_path / "disk")


@pytest.mark.parametrize("opts,msg", [({"bogus": "1"}, "unknown option"), ({"size": "ten"}, "invalid size"),
                                      ({"mount": "rel/dir"}, "absolute")])
def test_bad_options_are_400(vm, opts, msg):
    with pytest.raises(InvalidVolumeSpec, match=msg) as ei:
        vm.create("bad", options=opts)
    assert ei.value.http_status == 400 and "bad" not in {v.name for v in vm.list()}


def test_in_use_refusal_names_containers_then_prune(vm, tmp_path):
    vm.use("shared", "c1")
    vm.use("shared", "c2")
    anon = vm.use(None, "c1")
    assert anon.anonymous and len(anon.name) == 64
    with pytest.raises(VolumeInUse) as ei:
        vm.remove("shared")
    assert ei.value.http_status == 409 and set(ei.value.containers) == {"c1", "c2"} and "c1" in str(ei.value)
    assert vm.release("c1", remove_anonymous=True) == [anon.name]
    assert vm.get("shared").refs == ["c2"]
    vm.create("idle")
    names, _ = vm.prune()
    assert names == ["idle"]
    # references survive a restart; restore drops those of containers that are gone
    vm2 = VolumeManager(root=vm.root)
    assert vm2.get("shared").refs == ["c2"]
    vm2.restore(existing_containers=set())
    vm2.remove("shared")


async def test_copy_up_preserves_owner_mode_symlinks(vm, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown to other owners needs root")
    src = tmp_path / "image" / "etc" / "app"
    (src / "sub").mkdir(parents=True)
    (src / "conf").write_text("x=1\n")
    os.chown(src / "conf", 1234, 5678)
    os.chmod(src / "conf", 0o640)
    os.chmod(src / "sub", 0o701)
    os.symlink("conf", src / "link")
    os.chmod(src, 0o750)
    v = vm.create("cu")
    assert await vm.copy_up("cu", str(src)) is True
    mp = v.mountpoint
    st = os.lstat(os.path.join(mp, "conf"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o640)
    assert stat.S_IMODE(os.lstat(os.path.join(mp, "sub")).st_mode) == 0o701
    assert os.readlink(os.path.join(mp, "link")) == "conf"
    assert stat.S_IMODE(os.stat(mp).st_mode) == 0o750
    # not empty any more: a second copy-up does nothing
    (src / "new").write_text("n")
    assert await vm.copy_up("cu", str(src)) is False and not os.path.exists(os.path.join(mp, "new"))

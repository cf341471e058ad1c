"""Parsers of -v / --mount / --tmpfs and their OCI mounts."""
from __future__ import annotations

import pytest

from pouch.volume.errors import InvalidVolumeSpec
from pouch.volume.mounts import check_duplicates, parse_mount, parse_tmpfs, parse_volume, to_oci


@pytest.mark.parametrize("spec,typ,src,dst,ro,prop", [
    ("v1:/data", "volume", "v1", "/data", False, ""),
    ("v1:/data:ro", "volume", "v1", "/data", True, ""),
    ("/host/dir:/c", "bind", "/host/dir", "/c", False, ""),
    ("/host/dir/:/c/:ro,rslave", "bind", "/host/dir", "/c", True, "rslave"),
    ("/anon", "volume", "", "/anon", False, ""),
    ("/anon:ro", "volume", "", "/anon", True, ""),
])
def test_volume_flag(spec, typ, src, dst, ro, prop):
    m = parse_volume(spec)
    assert (m.type, m.source, m.destination, m.readonly, m.propagation) == (typ, src, dst, ro, prop)


@pytest.mark.parametrize("spec,msg", [
    ("", "want"), ("v1:data", "not an absolute path"), ("v1:/", "can't be '/'"), ("a:b:c:d", "want"),
    ("v1:/d:rx", "invalid mode 'rx'"), ("v1:/d:ro,rw", "twice"), ("/h:/d:nocopy", "volumes only"),
    ("./rel:/d", "absolute"), ("b@d:/d", "neither an absolute path nor a valid volume name"),
])
def test_volume_flag_errors_are_400_with_reason(spec, msg):
    with pytest.raises(InvalidVolumeSpec, match=msg) as ei:
        parse_volume(spec)
    assert ei.value.http_status == 400


def test_mount_flag_forms():
    m = parse_mount("type=volume,src=v1,dst=/d,ro,volume-opt=size=1g,volume-label=a=b,volume-nocopy")
    assert (m.type, m.source, m.destination, m.readonly, m.nocopy) == ("volume", "v1", "/d", True, True)
    assert m.volume_options == {"size": "1g"} and m.volume_labels == {"a": "b"}
    b = parse_mount('type=bind,source=/srv,target=/w,readonly=false,bind-propagation=rshared')
    assert to_oci(b) == {"destination": "/w", "type": "bind", "source": "/srv", "options": ["rbind", "rw", "rshared"]}
    t = parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1700")
    assert to_oci(t)["options"] == ["nosuid", "nodev", "noexec", "size=64m", "mode=1700"]
    assert parse_mount("dst=/x").type == "volume"      # default type


@pytest.mark.parametrize("spec,msg", [
    ("type=nfs,dst=/x", "type 'nfs'"), ("type=bind,dst=/x", "needs a source"), ("type=volume,src=v", "no destination"),
    ("type=bind,src=rel,dst=/x", "absolute"), ("type=tmpfs,dst=/x,src=a", "no source"),
    ("type=volume,dst=/x,bind-propagation=rshared", "type=bind only"), ("dst=/x,ro=maybe", "true or false"),
    ("dst=/x,colour=red", "unknown key 'colour'"), ("type=tmpfs,dst=/x,tmpfs-mode=9z", "octal"),
    ("type=volume,dst=/x,volume-opt=novalue", "KEY=VALUE"),
])
def test_mount_flag_errors(spec, msg):
    with pytest.raises(InvalidVolumeSpec, match=msg):
        parse_mount(spec)


def test_tmpfs_flag_and_oci():
    m = parse_tmpfs("/run:size=64m,exec,uid=1000")
    assert m.destination == "/run"
    assert to_oci(m) == {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                         "options": ["nosuid", "nodev", "size=64m", "uid=1000", "mode=1777"]}
    assert to_oci(parse_tmpfs("/tmp"))["options"] == ["nosuid", "nodev", "noexec", "mode=1777"]
    for bad in ("run", "/run:size=huge", "/run:color=red", "/run:bogus"):
        with pytest.raises(InvalidVolumeSpec):
            parse_tmpfs(bad)


def test_volume_oci_uses_resolved_mountpoint_and_duplicates_rejected():
    m = parse_volume("v1:/data:ro")
    assert to_oci(m, "/var/lib/pouch/volumes/v1/_data") == {
        "destination": "/data", "type": "bind", "source": "/var/lib/pouch/volumes/v1/_data",
        "options": ["rbind", "ro", "rprivate"]}
    with pytest.raises(InvalidVolumeSpec, match="duplicate mount point: /data"):
        check_duplicates([m, parse_mount("type=tmpfs,dst=/data/")])

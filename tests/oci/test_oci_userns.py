"""pouch.oci.userns: subordinate-id lookup, spec fields, owner shifting, path checks."""
import os
import stat

import pytest

from pouch.oci.errors import InvalidOciConfig
from pouch.oci.userns import IdRange, apply_userns, check_traversable, remap_tree


def test_from_flag_uid_gid_reads_the_subordinate_files(tmp_path):
    (tmp_path / "subuid").write_text("other:50000:10\nroot:200000:65536\n")
    (tmp_path / "subgid").write_text("root:300000:1000\n")
    ids = IdRange.from_flag("0:0", str(tmp_path / "subuid"), str(tmp_path / "subgid"))
    assert ids == IdRange(200000, 65536, 300000, 1000)
    assert IdRange.from_flag("root", str(tmp_path / "subuid"), str(tmp_path / "subgid")) == ids


def test_from_flag_without_a_range_names_the_file(tmp_path):
    (tmp_path / "subuid").write_text("")
    (tmp_path / "subgid").write_text("")
    with pytest.raises(InvalidOciConfig) as e:
        IdRange.from_flag("root", str(tmp_path / "subuid"), str(tmp_path / "subgid"))
    assert "subuid" in str(e.value)
    with pytest.raises(InvalidOciConfig):
        IdRange.from_flag("", str(tmp_path / "subuid"), str(tmp_path / "subgid"))
    with pytest.raises(InvalidOciConfig):
        IdRange.from_flag("no-such-user-xyz", str(tmp_path / "subuid"), str(tmp_path / "subgid"))


def test_apply_userns_adds_namespace_and_mappings():
    spec = {"linux": {"namespaces": [{"type": "pid"}]}}
    apply_userns(spec, IdRange(100000, 65536, 100000, 65536))
    assert {"type": "user"} in spec["linux"]["namespaces"]
    assert spec["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert spec["linux"]["gidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_remap_tree_shifts_owners_and_keeps_setuid(tmp_path):
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "su"
    f.write_text("x")
    os.chown(f, 1000, 1000)
    os.chmod(f, 0o4755)
    os.symlink("/nonexistent", tmp_path / "link")
    ids = IdRange(100000, 65536, 200000, 65536)
    assert remap_tree(str(tmp_path), ids) == 4
    st = os.lstat(f)
    assert (st.st_uid, st.st_gid) == (101000, 201000)
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert os.lstat(tmp_path / "link").st_uid == 100000
    assert os.lstat(tmp_path).st_uid == 100000


def test_check_traversable(tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    os.chmod(closed, 0o700)
    ids = IdRange(100000, 65536, 100000, 65536)
    with pytest.raises(InvalidOciConfig) as e:
        check_traversable([str(closed / "home")], ids)
    assert str(closed) in str(e.value) and "o+x" in str(e.value)
    import shutil
    import tempfile
    base = tempfile.mkdtemp(dir="/tmp")   # /tmp is 1777; pytest's own tmp dirs are 0700
    try:
        inner = os.path.join(base, "x")
        os.mkdir(inner, 0o700)
        with pytest.raises(InvalidOciConfig):
            check_traversable([os.path.join(inner, "home")], ids)
        os.chmod(inner, 0o711)
        os.chmod(base, 0o711)
        check_traversable([os.path.join(inner, "home")], ids)
    finally:
        shutil.rmtree(base)

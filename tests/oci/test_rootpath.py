"""Paths resolved inside a root: symlinks never lead out of it."""
from __future__ import annotations

import os

import pytest

from pouch.oci.rootpath import root_path


def test_root_path_stays_inside_root(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink("/etc", tmp_path / "abs")
    os.symlink("../../..", tmp_path / "up")
    os.symlink("real", tmp_path / "rel")
    os.symlink("loop", tmp_path / "loop")
    assert root_path(str(tmp_path), "abs/passwd") == str(tmp_path / "etc/passwd")
    assert root_path(str(tmp_path), "up/x") == str(tmp_path / "x")
    assert root_path(str(tmp_path), "rel/y") == str(tmp_path / "real/y")
    assert root_path(str(tmp_path), "../../z") == str(tmp_path / "z")
    with pytest.raises(OSError):
        root_path(str(tmp_path), "loop/a")

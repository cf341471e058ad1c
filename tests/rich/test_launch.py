"""Unit tests of the rich-container launch plan over fake image layers (directories)."""
from __future__ import annotations

import os

import pytest

from pouch.daemon.mgr.spec import signal_number
from pouch.errtypes import InvalidArgument
from pouch.rich import launch_env, plan, stop_signal, validate
from pouch.rich.launch import _exists


def layers(tmp_path, *specs: dict[str, str | None]) -> list[str]:
    """Layer dirs, top first: path -> file content, None for a dir, '->target' for a symlink,
    'WHITEOUT' for an overlay whiteout."""
    out = []
    for i, spec in enumerate(specs):
        d = tmp_path / f"l{i}"
        d.mkdir()
        for rel, what in spec.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if what is None:
                p.mkdir(exist_ok=True)
            elif what == "WHITEOUT":
                os.mknod(p, 0o600 | 0o020000, os.makedev(0, 0))
            elif what.startswith("->"):
                os.symlink(what[2:], p)
            else:
                p.write_text(what)
        out.append(str(d))
    return out


def test_lookup_follows_merged_usr_symlinks_across_layers_and_whiteouts(tmp_path):
    ls = layers(tmp_path, {"usr/lib/systemd/systemd": "x"}, {"lib": "->usr/lib", "sbin": "->/usr/sbin",
                                                              "usr/sbin/init": "->/lib/systemd/systemd"})
    assert _exists(ls, "lib/systemd/systemd")
    assert _exists(ls, "sbin/init")
    assert not _exists(ls, "bin/sh")
    (tmp_path / "h").mkdir()
    hidden = layers(tmp_path / "h", {"usr/bin/dumb-init": "WHITEOUT"}, {"usr/bin/dumb-init": "x"})
    assert not _exists(hidden, "usr/bin/dumb-init")


def test_dumb_init_prefers_the_images_own(tmp_path):
    ls = layers(tmp_path, {"usr/bin/dumb-init": "x", "bin/sh": "x"})
    p = plan({"Rich": True}, ["app", "--flag"], ls)
    assert p.args == ["/usr/bin/dumb-init", "--", "app", "--flag"]
    assert launch_env({"Rich": True}) == ["rich_mode=true", "rich_mode_launch_manner=dumb-init"]
    assert p.mounts == []


def test_dumb_init_falls_back_to_the_hosts_static_init_and_wraps_the_initscript(tmp_path):
    ls = layers(tmp_path, {"bin/sh": "x"})
    p = plan({"Rich": True, "InitScript": "/init.sh"}, ["app"], ls)
    assert p.args[:3] == ["/sbin/docker-init", "-g", "--"]
    assert p.args[3:5] == ["/bin/sh", "-c"] and p.args[-2:] == ["/init.sh", "app"]
    assert p.mounts[0]["source"] == "/usr/bin/tini-static"


def test_sbin_init_runs_only_an_explicit_command_in_the_background(tmp_path):
    ls = layers(tmp_path, {"sbin/init": "x", "bin/sh": "x"})
    assert plan({"Rich": True, "RichMode": "sbin-init"}, ["image", "cmd"], ls).args == ["/sbin/init"]
    p = plan({"Rich": True, "RichMode": "sbin-init", "Cmd": ["sleep", "9"]}, ["sleep", "9"], ls)
    assert p.args[:2] == ["/bin/sh", "-c"] and p.args[-4:] == ["", "/sbin/init", "sleep", "9"]


def test_systemd_gets_its_mounts_env_and_stop_signal(tmp_path):
    ls = layers(tmp_path, {"lib/systemd/systemd": "x"})
    cfg = {"Rich": True, "RichMode": "systemd"}
    p = plan(cfg, [], ls)
    assert p.args == ["/lib/systemd/systemd"] and "container=pouch" in launch_env(cfg) and p.writable_cgroups
    assert {m["destination"] for m in p.mounts} == {"/run", "/run/lock", "/tmp"}
    assert stop_signal(cfg) == "SIGRTMIN+3"
    assert signal_number("SIGRTMIN+3") == signal_number("SIGRTMIN") + 3
    with pytest.raises(InvalidArgument):
        signal_number("SIGTERM+3")


@pytest.mark.parametrize("cfg,msg", [
    ({"RichMode": "systemd"}, "must first enable rich mode"),
    ({"Rich": True, "RichMode": "openrc"}, "invalid rich mode"),
    ({"InitScript": "/a"}, "needs rich mode"),
    ({"Rich": True, "InitScript": "a.sh"}, "absolute"),
])
def test_validate(cfg, msg):
    with pytest.raises(InvalidArgument, match=msg):
        validate(cfg)


def test_missing_init_is_a_clear_error(tmp_path):
    ls = layers(tmp_path, {"bin/sh": "x"})
    with pytest.raises(InvalidArgument, match="no /sbin/init"):
        plan({"Rich": True, "RichMode": "sbin-init"}, [], ls)

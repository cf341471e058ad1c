"""OCI hook files: validation, matching, and what reaches the spec."""
from __future__ import annotations

import json

import pytest

from pouch.oci.hooks import HookError, apply, parse


def doc(**kw) -> dict:
    d = {"version": "1.0.0", "hook": {"path": "/bin/true"}, "when": {"always": True}, "stages": ["prestart"]}
    d.update(kw)
    return d


@pytest.mark.parametrize("bad,msg", [
    (doc(version="2"), "version"),
    (doc(hook={"path": "true"}), "absolute"),
    (doc(hook={"path": "/x", "args": "a b"}), "list of strings"),
    (doc(when={}), "at least one condition"),
    (doc(when={"commands": ["("]}), "regular expression"),
    (doc(stages=["prestop"]), "stages"),
])
def test_bad_hooks_are_refused_with_the_reason(bad, msg):
    with pytest.raises(HookError, match=msg):
        parse(bad)


def test_matching_and_later_directories_override(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "gate.json").write_text(json.dumps(doc(hook={"path": "/old"}, when={"always": True})))
    (b / "gate.json").write_text(json.dumps(doc(hook={"path": "/audit", "args": ["audit"]},
                                                when={"annotations": {"^audit$": "^on$"}},
                                                stages=["prestart", "poststop"])))
    (b / "init.json").write_text(json.dumps(doc(hook={"path": "/init-hook"}, when={"commands": ["/sbin/init$"]})))
    (b / "notes.txt").write_text("not a hook")
    plain = {"process": {"args": ["sh"]}, "mounts": []}
    assert apply(plain, [str(a), str(b)]) == [] and "hooks" not in plain
    audited = {"process": {"args": ["sh"]}, "annotations": {"audit": "on"}}
    assert apply(audited, [str(a), str(b)]) == ["gate.json"]
    assert audited["hooks"] == {"prestart": [{"path": "/audit", "args": ["audit"]}],
                                "poststop": [{"path": "/audit", "args": ["audit"]}]}
    init = {"process": {"args": ["/sbin/init"]}}
    assert apply(init, [str(a), str(b)]) == ["init.json"]
    assert apply({"process": {"args": ["x"]}}, [str(tmp_path / "missing")]) == []

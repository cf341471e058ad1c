"""OCI hooks from `pouchd --hooks-dir`: run on the host by the runtime with the container's state,
prestart before the command and poststop after the container is gone; gated by annotation;
a broken hook file is skipped, not fatal."""
from __future__ import annotations

import json
import os

import pytest

from tests.conftest import _missing_for_daemon
from tests.daemon.conftest import wait_for
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.images import busybox_archive

pytestmark = pytest.mark.integration

RECORDER = """#!/bin/sh
# $1: stage, $2: file; the runtime gives the container's state JSON on stdin
state=$(cat)
echo "$1 $state" >> "$2"
"""


@pytest.fixture
def hooked(tmp_path):
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    hooks = tmp_path / "hooks.d"
    hooks.mkdir()
    rec = tmp_path / "record.sh"
    rec.write_text(RECORDER)
    rec.chmod(0o755)
    log = tmp_path / "hooks.log"
    for stage in ("prestart", "poststop"):
        (hooks / f"10-{stage}.json").write_text(json.dumps({
            "version": "1.0.0", "hook": {"path": str(rec), "args": ["record.sh", stage, str(log)]},
            "when": {"always": True}, "stages": [stage]}))
    (hooks / "20-audit.json").write_text(json.dumps({
        "version": "1.0.0", "hook": {"path": str(rec), "args": ["record.sh", "audit", str(log)]},
        "when": {"annotations": {"^io.pouch.audit$": "^on$"}}, "stages": ["prestart"]}))
    (hooks / "30-broken.json").write_text('{"version": "1.0.0", "hook": {"path": "relative"}}')
    d = PouchDaemon(extra_args=["--hooks-dir", str(hooks)])
    d.start()
    assert d.cli("load", "-i", busybox_archive()).returncode == 0
    yield d, log
    d.cleanup()


def records(log) -> list[tuple[str, dict]]:
    if not os.path.exists(log):
        return []
    out = []
    for line in open(log).read().splitlines():
        stage, _, state = line.partition(" ")
        out.append((stage, json.loads(state)))
    return out


def test_prestart_and_poststop_hooks_run_on_the_host_with_the_state(hooked):
    d, log = hooked
    r = d.cli("run", "--name", "h1", "busybox", "echo", "ran")
    assert r.returncode == 0 and r.stdout == "ran\n", r.stderr
    cid = d.cli("inspect", "-f", "{{.Id}}", "h1").stdout.strip()
    assert d.cli("rm", "h1").returncode == 0
    got = wait_for(lambda: (rs := records(log)) and [s for s, _ in rs] == ["prestart", "poststop"] and rs,
                   what="prestart then poststop")
    (_, pre), (_, post) = got
    assert pre["id"] == cid and pre["pid"] > 0 and pre["status"] in ("creating", "created")
    assert post["id"] == cid
    assert "ignoring hook" in d.log() and "30-broken.json" in d.log()


def test_annotation_gated_hook_runs_only_where_asked(hooked):
    d, log = hooked
    assert d.cli("run", "--rm", "busybox", "true").returncode == 0
    assert d.cli("run", "--rm", "--annotation", "io.pouch.audit=on", "busybox", "true").returncode == 0
    wait_for(lambda: [s for s, _ in records(log)].count("poststop") == 2, what="both containers gone")
    assert [s for s, _ in records(log)].count("audit") == 1

"""OCI runtimes through the real pouchd: busybox under runc, crun and runsc (gVisor, proven by
its own kernel), runtime shown by ps/inspect, --add-runtime, the config file's `runtimes`,
and a clear refusal of an unknown runtime."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.conftest import _missing_for_daemon
from tests.daemon.conftest import Box, inspect, runtime_state
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.images import busybox_archive

pytestmark = pytest.mark.integration


def need(binary: str) -> str:
    path = shutil.which(binary)
    if not path:
        pytest.skip(f"{binary} is not installed")
    return path


@pytest.mark.parametrize("runtime", ["runc", "crun", "runsc"])
def test_busybox_runs_under_each_runtime(pouchd, box, runtime):
    need(runtime)
    n = box.name()
    r = pouchd.cli("run", "--name", n, "--runtime", runtime, "busybox", "sh", "-c", "echo hello-$((6*7))",
                   timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hello-42"
    assert inspect(pouchd, n)["HostConfig"]["Runtime"] == runtime
    rows = [l.split() for l in pouchd.cli("ps", "-a").stdout.splitlines()]
    row = next(l for l in rows if l and l[0] == n)
    assert row[-1] == runtime


def test_runsc_is_a_real_gvisor_sandbox(pouchd):
    need("runsc")
    r = pouchd.cli("run", "--rm", "--runtime", "runsc", "busybox", "sh", "-c", "uname -r; dmesg", timeout=120)
    assert r.returncode == 0, r.stderr
    kernel, *dmesg = r.stdout.splitlines()
    assert kernel != os.uname().release
    assert any("gVisor" in line for line in dmesg), r.stdout
    host = pouchd.cli("run", "--rm", "busybox", "uname", "-r").stdout.strip()
    assert host == os.uname().release


@pytest.mark.parametrize("runtime,other", [("crun", "runc"), ("runc", "crun")])
def test_the_runtime_itself_runs_the_container(pouchd, box, runtime, other):
    """Not pouch's bookkeeping: the chosen runtime's own state directory holds the container
    (its `state` names the container's pid), and the other runtime does not know it."""
    need(runtime), need(other)
    n = box.run_d("--runtime", runtime, "busybox", "sleep", "600")
    c = inspect(pouchd, n)
    state = runtime_state(runtime, c["Id"])
    assert state is not None and state["status"] == "running", state
    assert state["pid"] == c["State"]["Pid"]
    assert runtime_state(other, c["Id"]) is None
    rows = [l.split() for l in pouchd.cli("ps").stdout.splitlines()]
    assert next(l for l in rows if l and l[0] == n)[-1] == runtime


def test_unknown_runtime_is_refused(pouchd, box):
    n = box.name()
    r = pouchd.cli("run", "--name", n, "--runtime", "nosuchruntime", "busybox", "true")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nosuchruntime" in lines[0], r.stderr
    assert pouchd.cli("inspect", n).returncode != 0


def _daemon_with(extra_args=None, config=None):
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    d = PouchDaemon(extra_args=extra_args)
    if config is not None:
        with open(os.path.join(d.base, "config.json"), "w") as f:
            json.dump(config, f)
    return d


def _check_runtime(d: PouchDaemon, name: str) -> None:
    d.start()
    try:
        assert d.cli("load", "-i", busybox_archive()).returncode == 0
        assert name in json.loads(d.cli("info", "-f", "{{json .Runtimes}}").stdout)
        b = Box(d)
        n = b.name()
        r = d.cli("run", "--name", n, "--runtime", name, "busybox", "echo", "via-" + name, timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == "via-" + name, r
        assert inspect(d, n)["HostConfig"]["Runtime"] == name
        b.cleanup()
    finally:
        d.cleanup()


def test_add_runtime_flag():
    runc = need("runc")
    _check_runtime(_daemon_with(["--add-runtime", f"myrunc={runc}"]), "myrunc")


def test_runtime_from_config_file():
    runc = need("runc")
    _check_runtime(_daemon_with(config={"runtimes": {"cfgrunc": {"path": runc}}}), "cfgrunc")


def test_add_runtime_not_installed_yet_is_accepted_and_a_run_fails_clearly():
    """As Pouch: --add-runtime may name a runtime installed later; a run using it is refused
    in one line while it is missing (nothing left behind), and works once it is installed."""
    runc = need("runc")
    d = _daemon_with([])
    ghost = os.path.join(d.base, "bin", "ghost-runtime")
    d.extra_args = ["--add-runtime", f"ghost={ghost}"] + d.extra_args
    try:
        d.start()
        assert d.cli("load", "-i", busybox_archive()).returncode == 0
        assert "ghost" in json.loads(d.cli("info", "-f", "{{json .Runtimes}}").stdout)
        r = d.cli("run", "--name", "g1", "--runtime", "ghost", "busybox", "true")
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1 and "ghost" in lines[0] and "not installed" in lines[0], r
        assert d.cli("inspect", "g1").returncode != 0
        os.makedirs(os.path.dirname(ghost))
        os.symlink(runc, ghost)
        r = d.cli("run", "--rm", "--runtime", "ghost", "busybox", "echo", "now-here", timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == "now-here", r
    finally:
        d.cleanup()

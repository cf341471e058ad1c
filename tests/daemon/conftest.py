"""Fixtures for the core-engine integration suite: unique names and cleanup.

``box`` hands out container names for one test and force-removes every
container of those names (and any id the test registers) when it ends, so the
session daemon stays clean for the next test.
"""
from __future__ import annotations

import itertools
import os
import time
import uuid

import pytest

_counter = itertools.count()


class Box:
    """Names for one test's containers on one daemon, removed at teardown."""

    def __init__(self, daemon) -> None:
        self.d = daemon
        self.made: list[str] = []
        self.prefix = "t%s%d" % (uuid.uuid4().hex[:6], os.getpid() % 1000)

    def name(self) -> str:
        n = "%s-%d" % (self.prefix, next(_counter))
        self.made.append(n)
        return n

    def track(self, ref: str) -> str:
        self.made.append(ref.strip())
        return ref.strip()

    def run_d(self, *args: str, name: str | None = None) -> str:
        """`pouch run -d --name N ARGS...`; returns the name."""
        n = name or self.name()
        r = self.d.cli("run", "-d", "--name", n, *args)
        assert r.returncode == 0, r.stderr
        return n

    def cleanup(self) -> None:
        if not self.made or self.d.proc is None:
            return
        self.d.cli("rm", "-f", *self.made, timeout=120)


@pytest.fixture
def box(pouchd):
    b = Box(pouchd)
    yield b
    b.cleanup()


def wait_for(cond, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``cond()`` until it returns a truthy value; return it or fail."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def inspect(d, ref: str) -> dict:
    import json
    r = d.cli("inspect", ref)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    return data[0] if isinstance(data, list) else data


def status(d, ref: str) -> str:
    return d.cli("inspect", "-f", "{{.State.Status}}", ref).stdout.strip()


RUNC_SHIM_ROOT = "/run/containerd/runc/default"  # the runc v2 shim's default --root, any binary


def runtime_state(binary: str, cid: str) -> dict | None:
    """What an OCI runtime binary itself says of a container (`<binary> --root R state ID`), or
    None where it does not know it: proof of which runtime runs a container."""
    import json
    import subprocess
    r = subprocess.run([binary, "--root", RUNC_SHIM_ROOT, "state", cid], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else None

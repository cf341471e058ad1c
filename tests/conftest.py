"""Shared pytest fixtures: a real pouchd with the busybox test image loaded."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.images import busybox_archive


def _missing_for_daemon() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root"
    for tool in ("containerd", "runc"):
        if not shutil.which(tool):
            return f"{tool} is not installed (apt-get install {tool})"
    if not os.path.exists("/bin/busybox"):
        return "busybox-static is not installed (/bin/busybox)"
    return None


def busybox_daemon(**kw):
    """For fixtures (``yield from``): a started ``PouchDaemon(**kw)`` with busybox:latest loaded,
    cleaned up afterwards; the test is skipped where the machine lacks what pouchd needs."""
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    d = PouchDaemon(**kw)
    d.start()
    try:
        r = d.cli("load", "-i", busybox_archive())
        assert r.returncode == 0, r.stderr
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="session")
def pouchd():
    """One pouchd for the whole session, with busybox:latest loaded and pouchd's default
    network settings (bridge p0, 192.168.5.0/24); other test daemons get bridges of their own.
    POUCH_TEST_PRIVATE_BRIDGE=1 gives it a bridge of its own too, so that several test runs can
    share a machine (tests read the bridge and subnet from the fixture)."""
    yield from busybox_daemon(default_network=not os.environ.get("POUCH_TEST_PRIVATE_BRIDGE"))


@pytest.fixture
def fresh_pouchd():
    """A pouchd of the test's own (for restart / kill tests), busybox loaded."""
    yield from busybox_daemon()

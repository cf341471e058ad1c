"""Fixtures for CLI tests: a fake pouchd and a helper running the real `pouch` entry point."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "client"))
from fake_pouchd import FakePouchd  # noqa: E402

POUCH = os.path.join(sys.prefix, "bin", "pouch")


@pytest.fixture
def fake():
    with FakePouchd() as server:
        yield server


@pytest.fixture
def pouch(fake):
    """pouch(*args, input=b"") -> CompletedProcess (bytes), run against the fake daemon."""
    def run(*args, input=b"", env=None):
        e = dict(os.environ)
        e.pop("POUCH_HOST", None)
        e.pop("DOCKER_HOST", None)
        e.update(env or {})
        return subprocess.run([POUCH, "-H", fake.host, *args], input=input, capture_output=True,
                              timeout=30, env=e)
    return run

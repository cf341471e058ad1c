"""Fixtures for the SDK tests: a fake pouchd and an APIClient pointed at it."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fake_pouchd import FakePouchd  # noqa: E402


@pytest.fixture
def fake():
    with FakePouchd() as server:
        yield server


@pytest.fixture
def client(fake):
    from pouch.client import APIClient
    c = APIClient(fake.host)
    yield c
    c.close()

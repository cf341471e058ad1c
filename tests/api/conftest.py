"""Shared by the contract suites: unique object names and a fixture removing the containers a
test made."""
from __future__ import annotations

import uuid

import pytest


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def names(pouchd):
    """Names of containers the test makes: removed (rm -f) after it."""
    made: list[str] = []
    yield made
    for n in made:
        pouchd.cli("rm", "-f", n)

"""The fault suite: bursts of create/start/stop/rm/exec on a pouchd of the test's own while pouchd,
its containerd or a shim is SIGKILLed at a random moment; after each round the consistency check
finds nothing, no container whose create answered is lost, and `rm -f` leaves nothing behind.
(bench/soak.py runs many more rounds, lxcfs kills included with --lxcfs.)"""
from __future__ import annotations

import random

import pytest

from tests.fixtures.faults import fault_round, summary

pytestmark = pytest.mark.integration


def test_fault_rounds_lose_and_leak_nothing(fresh_pouchd):
    rng = random.Random(14)
    results = [fault_round(fresh_pouchd, rng, f"f{i}", faults=(kind,))
               for i, kind in enumerate(("containerd", "pouchd", "shim"))]
    s = summary(results)
    assert s["operations"] > 10 and s["faults"] >= 2, s
    assert s["lost"] == 0, s
    assert s["leaked"] == 0, (s["leaked_items"], s)

"""schemathesis against pouch/api/openapi.json on a pouchd of the test's own (TCP on loopback with
--insecure-tcp; schemathesis speaks HTTP over TCP): a bounded number of generated requests per
operation, no 5xx, no request that does not answer within 20 s, and afterwards the consistency
check finds nothing.  Left out: streams that end only when their container does or never
(/events, attach, logs, stats, wait, exec start) and operations that would reach registries off
this machine (pull, push, search, auth)."""
from __future__ import annotations

import os
import time

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from tests.conftest import _missing_for_daemon  # noqa: E402
from tests.fixtures.daemon import PouchDaemon  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402
from tests.fixtures.registry import free_port  # noqa: E402

pytestmark = pytest.mark.integration

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "pouch", "api", "openapi.json")
SKIP = {"/events", "/containers/{id}/attach", "/containers/{id}/logs", "/containers/{id}/stats",
        "/containers/{id}/wait", "/exec/{id}/start", "/images/create", "/images/{name}/push",
        "/images/search", "/auth", "/images/get", "/images/{name}/get", "/images/load",
        "/containers/{id}/archive"}
EXAMPLES = int(os.environ.get("POUCH_FUZZ_EXAMPLES", "3"))

schema = schemathesis.openapi.from_path(DOC)


@pytest.fixture(scope="module")
def fuzz_daemon():
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    port = free_port()
    d = PouchDaemon(extra_args=["-l", f"tcp://127.0.0.1:{port}", "--insecure-tcp"])
    d.start()
    assert d.cli("load", "-i", busybox_archive()).returncode == 0
    assert d.cli("run", "-d", "--name", "fuzzbox", "busybox", "sleep", "3600").returncode == 0
    d.port = port
    yield d
    try:
        ids = d.cli("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            d.cli("rm", "-f", *ids, timeout=180)
        deadline = time.monotonic() + 30
        while True:
            status, body = d.api("GET", "/system/consistency?ids=" + ",".join(ids))
            if (status == 200 and not body["Violations"]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 200 and body["Violations"] == [], body
    finally:
        d.cleanup()


@schema.exclude(path=sorted(SKIP)).parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_no_hang(case, fuzz_daemon):
    if "id" in (case.path_parameters or {}) and case.path_parameters["id"] == "":
        case.path_parameters["id"] = "fuzzbox"
    t0 = time.monotonic()
    case.call_and_validate(base_url=f"http://127.0.0.1:{fuzz_daemon.port}", checks=[not_a_server_error],
                           timeout=20)
    assert time.monotonic() - t0 < 20

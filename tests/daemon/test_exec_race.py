"""Quick execs race their own exit events: the exit can reach pouchd before containerd answers the
exec's Start; 120 execs (4 at a time) must all succeed with their own exit code."""
from __future__ import annotations

import concurrent.futures

import pytest

pytestmark = pytest.mark.integration


def test_hundreds_of_quick_execs_all_succeed(pouchd, box):
    n = box.run_d("busybox", "sleep", "600")

    def one(i):
        code = i % 3  # `exit 0`, `exit 1`, `exit 2`: the code must be the exec's own
        r = pouchd.cli("exec", n, "sh", "-c", f"exit {code}", timeout=60)
        return code, r.returncode, r.stderr.strip()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(120)))
    bad = [r for r in results if r[0] != r[1]]
    assert bad == [], bad[:5]

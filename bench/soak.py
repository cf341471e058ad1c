"""Soak: N fault rounds (default 1000) against a pouchd of its own (tests/fixtures/faults.py):
bursts of create/start/stop/rm/exec while pouchd, its containerd, a shim or (with --lxcfs) its
lxcfs is SIGKILLed at a random moment.  Prints rounds, faults, operations, lost and leaked (both
must be 0; the exit status is 1 otherwise).

    .venv/bin/python bench/soak.py --rounds 20 [--seed 1] [--lxcfs]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.fixtures.daemon import PouchDaemon  # noqa: E402
from tests.fixtures.faults import FAULTS, fault_round, summary  # noqa: E402
from tests.fixtures.images import busybox_archive  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=1000)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--lxcfs", action="store_true", help="run pouchd with --enable-lxcfs and kill lxcfs too")
    args = p.parse_args()
    rng = random.Random(args.seed)
    d = PouchDaemon(extra_args=["--enable-lxcfs"] if args.lxcfs else [])
    faults = FAULTS if args.lxcfs else tuple(f for f in FAULTS if f != "lxcfs")
    results = []
    t0 = time.monotonic()
    try:
        d.start()
        assert d.cli("load", "-i", busybox_archive()).returncode == 0
        for i in range(args.rounds):
            r = fault_round(d, rng, f"s{i}", faults=faults)
            results.append(r)
            if r.lost or r.leaked:
                print(f"round {i}: faults={r.faults} lost={r.lost} leaked={r.leaked}", file=sys.stderr)
            if (i + 1) % 10 == 0:
                print(f"{i + 1} rounds, {time.monotonic() - t0:.0f} s", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        d.cleanup()
    s = summary(results)
    s.update(seed=args.seed, seconds=round(time.monotonic() - t0))
    print(json.dumps(s, indent=1))
    return 0 if s["lost"] == 0 and s["leaked"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Issue 16's one table: runs the core bench (run.py: run --rm, exec, ps, version, idle RSS),
throughput.py (200 `run -d` from 8 clients), density.py (N running containers: memory, ps,
restart adoption) and registry_pull.py (cold pull) one after the other, each with its own
daemons, and prints every table line they printed under one header, met / NOT MET per row.

    sudo .venv/bin/python bench/issue16.py [--quick]

--quick: fewer runs and 200 containers for density (a few minutes instead of ~20).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.engines import HEADER  # noqa: E402


def benches(quick: bool) -> list[list[str]]:
    return [["run.py", "--runs", "5" if quick else "15", "--many", "0"],
            ["throughput.py"] + (["--count", "80"] if quick else []),
            ["density.py", "--count", "200" if quick else "1000"],
            ["registry_pull.py"] + (["--rounds", "2"] if quick else [])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    table: list[str] = []
    for argv in benches(a.quick):
        print(f"== {' '.join(argv)}", flush=True)
        r = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        print(r.stdout, flush=True)
        if r.returncode != 0:
            table.append(f"{argv[0]}: failed ({r.returncode}); see its output above")
            continue
        lines = r.stdout.splitlines()
        starts = [i for i, line in enumerate(lines) if line == HEADER]
        for i in starts:  # the rows that follow each header, up to the first blank line
            for line in lines[i + 1:]:
                if not line.strip():
                    break
                table.append(line)
    print("\n" + HEADER)
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# The main job: start pouchd (if it is not running), load the busybox test
# image built from Debian's busybox-static, and run a container.
set -euo pipefail
cd "$(dirname "$0")/.."
SOCK=/var/run/pouchd.sock
if ! pouch version >/dev/null 2>&1; then
  mkdir -p /var/log/pouch
  nohup pouchd >/var/log/pouch/pouchd.log 2>&1 &
  for _ in $(seq 1 200); do pouch version >/dev/null 2>&1 && break; sleep 0.1; done
  pouch version >/dev/null || { echo "pouchd did not start; see /var/log/pouch/pouchd.log" >&2; exit 1; }
fi
if ! pouch image inspect busybox:latest >/dev/null 2>&1; then
  pouch load -i "$(.venv/bin/python -m tests.fixtures.images busybox)"
fi
pouch run --rm busybox echo "hello from a pouch container"
pouch ps -a

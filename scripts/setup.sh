#!/usr/bin/env bash
# Set up pouch on a fresh Debian 12 machine: Debian packages, the virtualenv
# (.venv, from Debian's /usr/bin/python3 for fast start-up), containerd's
# generated gRPC stubs, and `pouch` / `pouchd` on PATH (/usr/local/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

pkgs=$(grep -v '^#' scripts/debian-packages.txt | tr '\n' ' ')
missing=$(dpkg-query -W -f='${Package} ${Status}\n' $pkgs 2>/dev/null | awk '$4!="installed"{print $1}'; \
          for p in $pkgs; do dpkg-query -W "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$(echo $missing)" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $pkgs
fi

if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e ".[build,test]" --config-settings editable_mode=compat
.venv/bin/python -m pouch.daemon.ctrd.genproto 2>&1 | grep -v "warning: Import .* is unused" || true
.venv/bin/python -m pouch.cri.genproto

# The CLI's launcher: no site import (-S) and no pip-script imports, only the stdlib and
# pouch itself, so `pouch` starts in about 20 ms.
cat > .venv/bin/pouch <<LAUNCHER
#!$ROOT/.venv/bin/python3 -SE
import sys
sys.path.insert(0, "$ROOT")
from pouch.cli.main import main
sys.exit(main())
LAUNCHER
chmod +x .venv/bin/pouch
ln -sf "$ROOT/.venv/bin/pouch" /usr/local/bin/pouch
ln -sf "$ROOT/.venv/bin/pouchd" /usr/local/bin/pouchd
echo "pouch set up: $(command -v pouch), $(command -v pouchd)"

# pouch: make-style entry points (run as root on Debian 12)
VENV := .venv
PY := $(VENV)/bin/python
SOCK ?= /var/run/pouchd.sock

.PHONY: setup proto test test-unit demo bench clean

setup:
	./scripts/setup.sh

proto:
	$(PY) -m pouch.daemon.ctrd.genproto
	$(PY) -m pouch.cri.genproto

test: setup
	$(PY) -m pytest -q -rs --durations=15

test-unit:
	$(PY) -m pytest -q -m "not integration"

demo: setup
	./scripts/demo.sh

bench: setup
	dpkg -s docker.io >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io
	$(PY) bench/run.py

clean:
	rm -rf build *.egg-info pouch/daemon/ctrd/pb pouch/cri/pb

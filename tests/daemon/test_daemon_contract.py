"""pouchd's own contract, as PouchContainer's: one daemon per home / socket / containerd (a second
one refuses, naming the first's pid, and leaves nothing behind), --pidfile, --label,
--log-driver/--log-opt defaults, --add-runtime, Pouch's config-file keys, POST /daemon/update
and `pouch updatedaemon` (online labels and image proxy, offline settings at the next start),
--allow-multi-snapshotter, --default-registry[-namespace] and --image-proxy with a real registry."""
from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import urllib.request

import pytest

from tests.conftest import _missing_for_daemon
from tests.fixtures.daemon import POUCHD, PouchDaemon
from tests.fixtures.images import busybox_archive

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def daemon():
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    d = PouchDaemon(extra_args=["--label", "zone=hz", "--label", "disk=ssd",
                                "--log-opt", "max-size=1m", "--log-opt", "max-file=2"])
    d.start()
    assert d.cli("load", "-i", busybox_archive()).returncode == 0
    yield d
    d.cleanup()


def _second(d: PouchDaemon, home: str, run_dir: str, sock: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([POUCHD, "--home-dir", home, "--exec-root-dir", run_dir, "-l", "unix://" + sock,
                           "--config-file", os.path.join(d.base, "none.json"), "--bridge-name", "ptdup0",
                           "--bip", "10.199.250.1/24", *extra], capture_output=True, text=True, timeout=60)


def test_second_daemon_on_same_home_socket_or_containerd_refuses_naming_the_pid(daemon):
    pid = daemon.proc.pid
    cases = [  # (what is shared, home, run dir, socket)
        ("home", daemon.home, os.path.join(daemon.base, "run2"), os.path.join(daemon.base, "s2.sock")),
        ("socket", os.path.join(daemon.base, "home3"), os.path.join(daemon.base, "run3"), daemon.sock),
        ("exec root", os.path.join(daemon.base, "home4"), daemon.run_dir, os.path.join(daemon.base, "s4.sock")),
    ]
    before = set(os.listdir(daemon.base))
    for what, home, run_dir, sock in cases:
        r = _second(daemon, home, run_dir, sock)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1, (what, r.stderr)
        assert f"pid {pid}" in lines[0] and what in lines[0], (what, lines)
    # nothing of the refused daemons is left; the first one still serves its socket
    assert set(os.listdir(daemon.base)) == before
    assert daemon.cli("version").returncode == 0
    assert daemon.cli("run", "--rm", "busybox", "true").returncode == 0


def test_pidfile_labels_and_log_defaults(daemon):
    with open(os.path.join(daemon.run_dir, "pouch.pid")) as f:
        assert f.read().strip() == str(daemon.proc.pid)
    info = json.loads(daemon.cli("info", "-f", "{{json .}}").stdout)
    assert info["Labels"] == ["zone=hz", "disk=ssd"]
    assert daemon.cli("create", "--name", "logdef", "busybox", "true").returncode == 0
    host = json.loads(daemon.cli("inspect", "-f", "{{json .HostConfig.LogConfig}}", "logdef").stdout)
    assert host == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    # a container's own options add to the defaults; driver none takes no options (refused, nothing made)
    r = daemon.cli("create", "--log-driver", "none", "--log-opt", "max-size=1k", "--name", "lognone", "busybox")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "none" in r.stderr
    assert daemon.cli("inspect", "lognone").returncode != 0
    assert daemon.cli("rm", "logdef").returncode == 0


def test_daemon_update_labels_online_api_and_cli(daemon):
    status, _ = daemon.api("POST", "/daemon/update", {"Labels": ["zone=sh", "rack=r1"]})
    assert status == 200
    r = daemon.cli("updatedaemon", "--label", "owner=me")
    assert r.returncode == 0, r.stderr
    info = json.loads(daemon.cli("info", "-f", "{{json .}}").stdout)
    assert info["Labels"] == ["zone=sh", "disk=ssd", "rack=r1", "owner=me"]
    for body in ({}, {"Labels": ["novalue"]}, {"Debug": True}, {"Labels": "a=b"}, {"ImageProxy": "ftp://x"}):
        status, out = daemon.api("POST", "/daemon/update", body)
        assert status == 400 and out["message"], (body, out)
    r = daemon.cli("updatedaemon", "--label", "bad")
    assert r.returncode != 0 and "key=value" in r.stderr
    r = daemon.cli("updatedaemon", "--bip", "10.1.2.1/24")  # an offline setting while it runs
    assert r.returncode != 0 and "--offline" in r.stderr
    assert json.loads(daemon.cli("info", "-f", "{{json .Labels}}").stdout) == info["Labels"]


def test_offline_update_and_pouch_config_keys_apply_at_next_start(tmp_path):
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    d = PouchDaemon()
    d.extra_args = []  # bridge and bip come from the config file, in Pouch's nested layout
    cfg = os.path.join(d.base, "config.json")
    n = int.from_bytes(os.urandom(2), "big")
    with open(cfg, "w") as f:
        json.dump({"network-config": {"bridge-config": {"bridge-name": f"pu{n:04x}",
                                                        "bip": f"10.{150 + n % 40}.{n // 256}.1/24"}},
                   "default-log-config": {"Type": "json-file", "Config": {"max-size": "2m"}},
                   "label": ["from=file"]}, f)
    # offline update through the CLI (no daemon answers on this socket)
    r = d.cli("updatedaemon", "--config-file", cfg, "--label", "offline=yes", "--image-proxy",
              "http://127.0.0.1:3128")
    assert r.returncode == 0, r.stderr
    try:
        d.start()
        info = json.loads(d.cli("info", "-f", "{{json .}}").stdout)
        assert info["Labels"] == ["from=file", "offline=yes"]
        assert info["ImageProxy"] == "http://127.0.0.1:3128"
        assert os.path.isdir(f"/sys/class/net/pu{n:04x}")  # network-config.bridge-config.bridge-name
        d.stop()
        # a key both in the file and as a flag: refused in one line, naming it
        d.extra_args = ["--label", "x=y"]
        with pytest.raises(RuntimeError) as e:
            d.start(timeout=15)
        assert "label" in str(e.value) and "flag" in str(e.value)
        d.extra_args = []
    finally:
        d.cleanup()


def test_allow_multi_snapshotter(tmp_path):
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    from pouch.sysinfo.detect import overlay_usable
    d = PouchDaemon()
    ok, reason = overlay_usable(d.base)
    if not ok:
        d.cleanup()
        pytest.skip(f"overlayfs snapshotter unusable here: {reason}")
    base_args = list(d.extra_args)
    try:
        d.extra_args = base_args + ["--snapshotter", "overlayfs"]
        d.start()
        assert d.cli("load", "-i", busybox_archive()).returncode == 0
        d.stop()
        d.extra_args = base_args + ["--snapshotter", "native"]
        with pytest.raises(RuntimeError) as e:
            d.start(timeout=30)
        assert "current snapshotter driver is overlayfs, cannot change to native" in str(e.value)
        d.extra_args = base_args + ["--snapshotter", "native", "--allow-multi-snapshotter"]
        d.start()
        assert json.loads(d.cli("info", "-f", "{{json .Driver}}").stdout) == "native"
    finally:
        d.extra_args = base_args
        d.cleanup()


class _ForwardProxy(http.server.ThreadingHTTPServer):
    """A plain-http forward proxy that counts the requests going through it."""

    def __init__(self):
        self.seen: list[str] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def _fwd(self):
                outer.seen.append(self.path)
                req = urllib.request.Request(self.path, method=self.command,
                                             headers={k: v for k, v in self.headers.items()
                                                      if k.lower() not in ("proxy-connection", "host")})
                try:
                    resp = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30)
                except urllib.error.HTTPError as e:
                    resp = e
                body = resp.read()
                self.send_response(resp.status if hasattr(resp, "status") else resp.code)
                for k, v in resp.headers.items():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            do_GET = do_HEAD = _fwd

            def log_message(self, *a):
                pass
        super().__init__(("127.0.0.1", 0), H)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_default_registry_namespace_and_image_proxy(tmp_path):
    from tests.daemon.registry_env import build_busybox_image, need_tools
    from tests.fixtures.registry import RegistryServer, skopeo_push
    need_tools()
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    reg = RegistryServer(tmp_path / "reg").start()
    proxy = _ForwardProxy()
    img = build_busybox_image(tmp_path / "layout", "v1", repo="team/tiny")
    skopeo_push(img, f"{reg.host}/team/tiny:v1")
    d = PouchDaemon(extra_args=["--default-registry", reg.host, "--default-registry-namespace", "team",
                                "--insecure-registries", "127.0.0.0/8"])
    try:
        d.start()
        r = d.cli("pull", "tiny:v1")
        assert r.returncode == 0, r.stderr
        assert "tiny:v1" in d.cli("images").stdout
        r = d.cli("run", "--rm", "tiny:v1", "cat", "/data/repo.txt")
        assert r.returncode == 0 and "team/tiny" in r.stdout, r
        assert proxy.seen == []
        assert d.cli("updatedaemon", "--image-proxy", f"http://127.0.0.1:{proxy.server_address[1]}").returncode == 0
        assert d.cli("rmi", "tiny:v1").returncode == 0
        r = d.cli("pull", "tiny:v1")
        assert r.returncode == 0, r.stderr
        assert any("/v2/team/tiny/manifests/v1" in p for p in proxy.seen), proxy.seen
        r = d.cli("pull", "nosuch")  # -> <registry>/team/nosuch: named in the one-line error
        assert r.returncode != 0 and "team/nosuch" in r.stderr
        # upgrade (as Pouch): the same image is refused; a missing one is pulled first
        assert d.cli("load", "-i", busybox_archive()).returncode == 0
        assert d.cli("run", "-d", "--name", "up", "busybox", "sleep", "300").returncode == 0
        r = d.cli("upgrade", "--image", "busybox", "up")
        assert r.returncode != 0 and "image not changed" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert d.cli("rmi", "tiny:v1").returncode == 0
        r = d.cli("upgrade", "--image", "tiny:v1", "up", "sleep", "300")
        assert r.returncode == 0, r.stderr
        up = json.loads(d.cli("inspect", "up").stdout)
        up = up[0] if isinstance(up, list) else up
        assert up["Image"] == json.loads(d.cli("image", "inspect", "-f", "{{json .Id}}", "tiny:v1").stdout)
        assert up["State"]["Running"]
    finally:
        d.cleanup()
        proxy.shutdown()
        reg.stop()

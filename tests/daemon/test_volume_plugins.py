"""Docker volume plugins through pouchd: a tiny plugin this test serves on a unix socket in a
private plugin directory (pouchd --volume-plugin-dir), found by its .sock and by a .spec file;
Create/Mount/Unmount/Remove reach it, a container writes into the plugin's directory, and the
plugin's errors come back in one line with nothing left behind."""
from __future__ import annotations

import http.server
import json
import os
import socketserver
import threading

import pytest

from tests.conftest import _missing_for_daemon
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.images import busybox_archive

pytestmark = pytest.mark.integration


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _plugin(sock: str, data_dir: str, calls: list):
    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            method = self.path.lstrip("/")
            calls.append((method, body))
            name = body.get("Name", "")
            out: dict = {}
            if method == "Plugin.Activate":
                out = {"Implements": ["VolumeDriver"]}
            elif method == "VolumeDriver.Create":
                if (body.get("Opts") or {}).get("fail"):
                    out = {"Err": "refusing: " + body["Opts"]["fail"]}
                else:
                    os.makedirs(os.path.join(data_dir, name), exist_ok=True)
            elif method in ("VolumeDriver.Mount", "VolumeDriver.Path"):
                out = {"Mountpoint": os.path.join(data_dir, name)}
            elif method == "VolumeDriver.Remove":
                os.rename(os.path.join(data_dir, name), os.path.join(data_dir, name + ".removed"))
            raw = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.docker.plugins.v1+json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def address_string(self):
            return "plugin-client"

        def log_message(self, *a):
            pass
    srv = _UnixHTTPServer(sock, H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_volume_plugin_protocol(tmp_path):
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    pdir, data = tmp_path / "plugins", tmp_path / "data"
    pdir.mkdir()
    data.mkdir()
    calls: list = []
    srv = _plugin(str(pdir / "tinyvol.sock"), str(data), calls)
    srv2 = _plugin(str(tmp_path / "other.sock"), str(data), calls)
    (pdir / "specvol.spec").write_text(f"unix://{tmp_path / 'other.sock'}\n")
    d = PouchDaemon(extra_args=["--volume-plugin-dir", str(pdir)])
    try:
        d.start()
        assert d.cli("load", "-i", busybox_archive()).returncode == 0
        r = d.cli("volume", "create", "-d", "tinyvol", "-o", "speed=fast", "pv1")
        assert r.returncode == 0, r.stderr
        assert ("VolumeDriver.Create", {"Name": "pv1", "Opts": {"speed": "fast"}}) in calls
        r = d.cli("run", "--name", "pc", "-v", "pv1:/data", "busybox", "sh", "-c", "echo via-plugin > /data/f")
        assert r.returncode == 0, r.stderr
        assert (data / "pv1" / "f").read_text() == "via-plugin\n"
        cid = json.loads(d.cli("inspect", "-f", "{{json .Id}}", "pc").stdout)
        assert ("VolumeDriver.Mount", {"Name": "pv1", "ID": cid}) in calls
        assert d.cli("rm", "pc").returncode == 0
        assert ("VolumeDriver.Unmount", {"Name": "pv1", "ID": cid}) in calls
        assert d.cli("volume", "rm", "pv1").returncode == 0
        assert (data / "pv1.removed").is_dir()
        # found through a .spec file too
        assert d.cli("volume", "create", "-d", "specvol", "pv2").returncode == 0
        assert json.loads(d.cli("volume", "inspect", "-f", "{{json .Driver}}", "pv2").stdout) == "specvol"
        # the plugin's Err, an unknown driver: one line, no volume
        r = d.cli("volume", "create", "-d", "tinyvol", "-o", "fail=disk full", "pv3")
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "disk full" in r.stderr
        r = d.cli("volume", "create", "-d", "nosuchplugin", "pv4")
        assert r.returncode != 0 and "nosuchplugin" in r.stderr
        names = d.cli("volume", "ls", "-q").stdout.split()
        assert "pv3" not in names and "pv4" not in names
    finally:
        d.cleanup()
        srv.shutdown()
        srv2.shutdown()

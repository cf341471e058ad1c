"""Docker volume plugins: a driver name pouchd does not know is looked up as a plugin, as
Docker and Pouch do: ``<dir>/<name>.sock`` (a unix socket) or ``<dir>/<name>.spec`` /
``<name>.json`` (a URL: unix:///path or tcp://host:port) in the plugin directories
(/run/docker/plugins, /etc/docker/plugins, /usr/lib/docker/plugins by default).

The plugin protocol is JSON over HTTP POST: /Plugin.Activate (must implement VolumeDriver), then
/VolumeDriver.Create, .Remove, .Mount (per container id; its Mountpoint is bind-mounted),
.Unmount and .Path.  A plugin's ``Err`` is a 400 naming the plugin; an unreachable plugin a 503.
Calls are short and synchronous, as the rest of the volume manager is.
"""
from __future__ import annotations

import http.client
import json
import os
import socket

from .errors import InvalidVolumeSpec, VolumeError

DEFAULT_DIRS = ("/run/docker/plugins", "/etc/docker/plugins", "/usr/lib/docker/plugins")
TIMEOUT = 30


class PluginUnavailable(VolumeError):
    """503: the plugin's socket does not answer."""
    http_status = 503


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("plugin", timeout=TIMEOUT)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(self.path)
        self.sock = s


def find(name: str, dirs=DEFAULT_DIRS) -> str | None:
    """The plugin's address (unix:///path or tcp://host:port), or None."""
    if not name or "/" in name or name.startswith("."):
        return None
    for d in dirs:
        sock = os.path.join(d, name + ".sock")
        if os.path.exists(sock):
            return "unix://" + sock
        for ext in (".spec", ".json"):
            path = os.path.join(d, name + ext)
            if os.path.isfile(path):
                with open(path) as f:
                    text = f.read().strip()
                if ext == ".json":
                    text = (json.loads(text) or {}).get("Addr", "")
                return text
    return None


class PluginDriver:
    """A volume driver served by a plugin at ``address``."""

    def __init__(self, name: str, address: str) -> None:
        self.name = name
        self.address = address
        self._activated = False
        self.per_container = True   # Mount/Unmount per container id

    def _call(self, method: str, body: dict | None = None) -> dict:
        if self.address.startswith("unix://"):
            conn = _UnixConnection(self.address[len("unix://"):])
        elif self.address.startswith(("tcp://", "http://")):
            hostport = self.address.split("://", 1)[1].rstrip("/")
            conn = http.client.HTTPConnection(hostport, timeout=TIMEOUT)
        else:
            raise InvalidVolumeSpec(f"volume plugin {self.name}: unsupported address {self.address!r}")
        try:
            conn.request("POST", "/" + method, json.dumps(body or {}),
                         {"Content-Type": "application/vnd.docker.plugins.v1+json",
                          "Accept": "application/vnd.docker.plugins.v1+json"})
            resp = conn.getresponse()
            raw = resp.read()
        except OSError as e:
            raise PluginUnavailable(f"volume plugin {self.name} at {self.address}: {e}") from None
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise VolumeError(f"volume plugin {self.name}: {method} answered no JSON (HTTP {resp.status})") from None
        if data.get("Err"):
            raise InvalidVolumeSpec(f"volume plugin {self.name}: {data['Err']}")
        if resp.status >= 400:
            raise VolumeError(f"volume plugin {self.name}: {method} answered HTTP {resp.status}")
        return data

    def activate(self) -> None:
        if self._activated:
            return
        data = self._call("Plugin.Activate")
        if "VolumeDriver" not in (data.get("Implements") or []):
            raise InvalidVolumeSpec(f"plugin {self.name} does not implement VolumeDriver")
        self._activated = True

    # the volume manager's driver interface -------------------------------------------------
    def validate(self, options: dict[str, str]) -> int:
        return 0

    def path_for(self, name: str, options: dict[str, str]) -> str:
        return ""  # the plugin says where, at Mount

    def create(self, name: str, options: dict[str, str]) -> tuple[str, int]:
        self.activate()
        self._call("VolumeDriver.Create", {"Name": name, "Opts": dict(options)})
        try:
            mp = self._call("VolumeDriver.Path", {"Name": name}).get("Mountpoint", "")
        except VolumeError:
            mp = ""
        return mp, 0

    def attach(self, name: str, mountpoint: str, options: dict[str, str], cid: str = "") -> str:
        self.activate()
        mp = self._call("VolumeDriver.Mount", {"Name": name, "ID": cid}).get("Mountpoint", "")
        if not mp:
            raise VolumeError(f"volume plugin {self.name}: Mount of {name} gave no mountpoint")
        return mp

    def detach(self, name: str, mountpoint: str, options: dict[str, str], cid: str = "") -> None:
        self.activate()
        self._call("VolumeDriver.Unmount", {"Name": name, "ID": cid})

    def remove(self, name: str, mountpoint: str, options: dict[str, str]) -> None:
        self.activate()
        self._call("VolumeDriver.Remove", {"Name": name})

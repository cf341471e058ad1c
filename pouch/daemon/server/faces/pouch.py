"""The Pouch face: PouchContainer's API (apis/swagger.yml) for /v1.24 and unversioned requests.

Differences from Moby it owns: names without a leading '/', the state Moby calls
``exited`` is ``stopped``, the create response carries ``Name``, inspect carries
``GraphDriver`` and a ``LogPath`` only once started, image list entries carry
``Config``, rmi is a bare 204, /version and /info hold Pouch's fields, and
missing objects read ``container x: not found``.
"""
from __future__ import annotations

from pouch.errtypes import NotFound

NAME = "pouch"
API_VERSION = "1.24"
_STATES = {"exited": "stopped"}
# Docker-only keys of the neutral /info view that Pouch's SystemInfo does not have
_NOT_IN_INFO = ("DockerRootDir", "Plugins", "SystemTime")


def error_text(e: Exception, text: str) -> str:
    if isinstance(e, NotFound) and getattr(e, "kind", None):
        return f"{e.kind} {e.ref}: not found"
    return text


def state(status: str) -> str:
    return _STATES.get(status, status)


def container_created(c) -> dict:
    return {"Id": c.id, "Name": c.name, "Warnings": c.warnings or None}


def container_inspect(view: dict) -> dict:
    out = dict(view)
    out["Name"] = out.get("Name", "").lstrip("/")
    st = out["State"] = dict(out["State"])
    st["Status"] = state(st["Status"])
    if st.get("StartedAt", "").startswith("0001"):
        out["LogPath"] = ""  # Pouch has no log file before the first start
    hc = out.get("HostConfig")
    if hc and hc.get("LogConfig") and not hc["LogConfig"].get("Config"):
        out["HostConfig"] = dict(hc, LogConfig=dict(hc["LogConfig"], Config=None))
    if not out.get("ExecIDs"):
        out["ExecIDs"] = None
    return out


def container_summary(view: dict) -> dict:
    out = dict(view)
    out["Names"] = [n.lstrip("/") for n in out.get("Names") or []]
    out["State"] = state(out.get("State", ""))
    status = out.get("Status", "")
    if status.startswith("Exited "):
        out["Status"] = "Stopped " + status[len("Exited "):]
    elif status.endswith(" (Paused)"):
        out["Status"] = status[:-len(" (Paused)")] + "(paused)"
    elif status in ("Created", "Removing", "Dead"):
        out["Status"] = status.lower()
    return out


def image_summary(view: dict, img) -> dict:
    out = dict(view)
    cfg = (img.config.get("config") or {}) if img is not None else {}
    out["Config"] = cfg or None
    return out


def image_removed(out: list[dict]):
    """(status, body) of DELETE /images/{name}: Pouch answers 204 with no body."""
    return 204, None


_VERSION_KEYS = ("Version", "ApiVersion", "GitCommit", "GoVersion", "Os", "Arch", "KernelVersion", "BuildTime")


def version(v: dict) -> dict:
    out = {k: v.get(k, "") for k in _VERSION_KEYS}
    out["ApiVersion"] = API_VERSION
    return out


def info(i: dict) -> dict:
    out = {k: v for k, v in i.items() if k not in _NOT_IN_INFO}
    out.setdefault("LxcfsEnabled", bool((i.get("Features") or {}).get("Lxcfs", {}).get("Enabled")))
    out.setdefault("CriEnabled", False)
    out.setdefault("DefaultRegistry", "registry.hub.docker.com")
    out.setdefault("ExperimentalBuild", False)
    out.setdefault("VolumeDrivers", ((i.get("Plugins") or {}).get("Volume")) or ["local"])
    out.setdefault("ListenAddresses", [])
    out.setdefault("ContainerdCommit", {"ID": "", "Expected": ""})
    out.setdefault("RuncCommit", {"ID": "", "Expected": ""})
    return out

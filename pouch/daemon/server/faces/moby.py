"""The Moby face: Docker Engine API shapes for /v1.25 and newer (the docker CLI and SDK).

The managers' views are Moby-shaped already, so most functions pass them through.
"""
from __future__ import annotations

from pouch.api.version import API_VERSION, MIN_API_VERSION
from pouch.errtypes import NotFound

NAME = "moby"
_MISSING = {"container": "No such container: {}", "image": "No such image: {}",
            "volume": "get {}: no such volume", "network": "network {} not found",
            "exec": "No such exec instance: {}"}


def error_text(e: Exception, text: str) -> str:
    if isinstance(e, NotFound) and getattr(e, "kind", None) in _MISSING:
        return _MISSING[e.kind].format(e.ref)
    return text


def state(status: str) -> str:
    return status


def container_created(c) -> dict:
    return {"Id": c.id, "Warnings": c.warnings}


def container_inspect(view: dict) -> dict:
    return view


def container_summary(view: dict) -> dict:
    return view


def image_summary(view: dict, img) -> dict:
    return view


def image_removed(out: list[dict]):
    """(status, body) of DELETE /images/{name}: Moby lists what was untagged and deleted."""
    return 200, out


def version(v: dict) -> dict:
    v = dict(v)
    # the Docker CLI prints the Engine component's Details (Os/Arch, Go version...)
    for comp in v.get("Components") or []:
        if comp.get("Name") == "Engine":
            details = comp.setdefault("Details", {})
            for key in ("ApiVersion", "MinAPIVersion", "Os", "Arch", "GoVersion", "GitCommit",
                        "KernelVersion", "BuildTime"):
                details.setdefault(key, v.get(key, ""))
            details.setdefault("Experimental", "false")
    v["ApiVersion"], v["MinAPIVersion"] = API_VERSION, MIN_API_VERSION
    return v


def info(i: dict) -> dict:
    return i

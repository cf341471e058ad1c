"""OCI hooks from a directory of JSON files (the schema of ``oci-hooks(5)``, as Podman reads them).

Each ``*.json`` file in a hooks directory is one hook::

    {"version": "1.0.0",
     "hook": {"path": "/usr/local/bin/audit", "args": ["audit", "start"], "env": ["K=V"], "timeout": 5},
     "when": {"always": true, "annotations": {"^io.pouch.audit$": "^on$"}, "commands": ["^/sbin/init$"],
              "hasBindMounts": false},
     "stages": ["prestart", "poststop"]}

A hook applies to a container when any ``when`` condition holds (``always``; an annotation whose
key and value match the regexes; the process's ``args[0]`` matching a command regex; bind mounts
present).  The runtime runs it on the host with the container's state JSON on stdin: prestart
before the command starts, poststop after the container is deleted.  Files are read at every
container create, so a change needs no restart; a broken file is skipped with a warning, and
later directories override earlier ones' files of the same name.
"""
from __future__ import annotations

import json
import logging
import os
import re

log = logging.getLogger(__name__)

STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


class HookError(ValueError):
    pass


def parse(doc: dict) -> dict:
    """Validate one hook document; returns it (raises HookError naming the problem)."""
    if doc.get("version") != "1.0.0":
        raise HookError(f"unsupported version {doc.get('version')!r} (want 1.0.0)")
    hook = doc.get("hook")
    if not isinstance(hook, dict) or not isinstance(hook.get("path"), str) or not hook["path"].startswith("/"):
        raise HookError("hook.path must be an absolute path")
    for key in ("args", "env"):
        if key in hook and not (isinstance(hook[key], list) and all(isinstance(x, str) for x in hook[key])):
            raise HookError(f"hook.{key} must be a list of strings")
    if "timeout" in hook and (not isinstance(hook["timeout"], int) or hook["timeout"] < 1):
        raise HookError("hook.timeout must be a positive integer")
    when = doc.get("when")
    if not isinstance(when, dict) or not when:
        raise HookError("when must name at least one condition")
    annotations = when.get("annotations") or {}
    for p in [*annotations.keys(), *annotations.values(), *(when.get("commands") or [])]:
        try:
            re.compile(p)
        except re.error as e:
            raise HookError(f"bad regular expression {p!r}: {e}") from None
    stages = doc.get("stages")
    if not isinstance(stages, list) or not stages or any(s not in STAGES for s in stages):
        raise HookError(f"stages must be a non-empty list of {', '.join(STAGES)}")
    return doc


def load(dirs: list[str]) -> dict[str, dict]:
    """file name -> hook document, from every readable, valid ``*.json`` in ``dirs`` (later wins)."""
    hooks: dict[str, dict] = {}
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except FileNotFoundError:
            continue
        for name in names:
            if not name.endswith(".json"):
                continue
            path = os.path.join(d, name)
            try:
                with open(path) as f:
                    hooks[name] = parse(json.load(f))
            except (OSError, ValueError) as e:
                log.warning("ignoring hook %s: %s", path, e)
    return hooks


def matches(doc: dict, spec: dict) -> bool:
    when = doc["when"]
    if when.get("always"):
        return True
    annotations = spec.get("annotations") or {}
    for kre, vre in (when.get("annotations") or {}).items():
        if any(re.search(kre, k) and re.search(vre, v) for k, v in annotations.items()):
            return True
    args = (spec.get("process") or {}).get("args") or [""]
    if any(re.search(c, args[0]) for c in when.get("commands") or []):
        return True
    if when.get("hasBindMounts") and any(m.get("type") == "bind" for m in spec.get("mounts") or []):
        return True
    return False


def apply(spec: dict, dirs: list[str]) -> list[str]:
    """Add the hooks of ``dirs`` that match ``spec`` to it; returns the names of those applied."""
    applied = []
    for name, doc in sorted(load(dirs).items()):
        if not matches(doc, spec):
            continue
        entry = {k: v for k, v in doc["hook"].items() if k in ("path", "args", "env", "timeout")}
        for stage in doc["stages"]:
            spec.setdefault("hooks", {}).setdefault(stage, []).append(dict(entry))
        applied.append(name)
    return applied

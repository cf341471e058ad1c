"""Crash-safe JSON files: write to a temp file in the same dir, fsync, rename over the target."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any


def write_json(path: str, data: Any, *, sync: bool = True) -> None:
    d = os.path.dirname(path)
    text = json.dumps(data, separators=(",", ":"))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    except FileNotFoundError:  # the first write into a new directory
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: str) -> Any | None:
    """The file's JSON, or None if it is missing or torn (a crash before rename leaves only temp files)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

"""Loader for pouchd's OpenAPI 3.0 document (``pouch/api/openapi.json``).

The JSON file is the API's reference, shared by the daemon and the clients.
Nothing on the CLI's hot path imports this module: it is for tests, tooling
and anyone who wants to read the document programmatically.
"""
from __future__ import annotations

import json
from importlib import resources

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load() -> dict:
    """The OpenAPI document as a dict (a fresh copy on every call)."""
    text = resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
    return json.loads(text)


def operations(doc: dict | None = None) -> dict[tuple[str, str], dict]:
    """``{("GET", "/containers/json"): operation, ...}`` for every documented operation."""
    doc = load() if doc is None else doc
    return {(method.upper(), path): op
            for path, item in doc.get("paths", {}).items()
            for method, op in item.items() if method in HTTP_METHODS}

"""pouch.client: Python SDK for pouchd's HTTP API (Moby v1.41 + Pouch extensions).

Stdlib only (a small HTTP/1.1 client over AF_UNIX or TCP) so that the CLI starts fast.
`APIClient` is the entry point; errors live in `pouch.client.errors`. Names are loaded
lazily so that importing `pouch.client.errors` alone stays cheap.
"""
_LAZY = {
    "APIClient": "pouch.client.api", "DEFAULT_HOST": "pouch.client.base",
    "API_VERSION": "pouch.client.base",
    "APIError": "pouch.client.errors", "Conflict": "pouch.client.errors",
    "ConnectionFailed": "pouch.client.errors", "InvalidArgument": "pouch.client.errors",
    "NotFound": "pouch.client.errors", "PouchClientError": "pouch.client.errors",
}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(name)
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)

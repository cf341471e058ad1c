"""Typed errors of the runtime registry."""


class RuntimeRegistryError(Exception):
    """500: base of runtime registry errors."""
    http_status = 500


class InvalidRuntime(RuntimeRegistryError):
    """400: a bad --add-runtime value or config entry (no name, missing binary, reserved name)."""
    http_status = 400


class RuntimeNotFound(RuntimeRegistryError):
    """404: `--runtime NAME` names no registered runtime."""
    http_status = 404

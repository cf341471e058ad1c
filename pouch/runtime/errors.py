"""Typed errors of the runtime registry (on pouch.errtypes: the API maps them by class)."""
from __future__ import annotations

from pouch.errtypes import InvalidArgument, NotFound, SystemError_


class RuntimeRegistryError(SystemError_):
    """500: base of runtime registry errors."""


class InvalidRuntime(InvalidArgument, RuntimeRegistryError):
    """400: a bad --add-runtime value or config entry (no name, missing binary, reserved name)."""


class RuntimeNotFound(NotFound, RuntimeRegistryError):
    """404: `--runtime NAME` names no registered runtime."""

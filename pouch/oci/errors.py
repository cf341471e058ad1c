"""Typed errors of the OCI helpers (on pouch.errtypes: the API maps them by class)."""
from __future__ import annotations

from pouch.errtypes import InvalidArgument, NotFound, SystemError_


class OciError(SystemError_):
    """500: a host operation behind a spec setting failed (cgroup write, device stat)."""


class InvalidOciConfig(InvalidArgument, OciError):
    """400: a HostConfig value (cap, sysctl, ulimit, device, resource, security-opt) is invalid."""


class MissingPrivilege(InvalidOciConfig):
    """400: the request needs a capability pouchd itself does not hold (named in the message)."""


class CgroupNotFound(NotFound, OciError):
    """404: the container's cgroup does not exist (not running)."""

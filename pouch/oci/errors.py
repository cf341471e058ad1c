"""Typed errors of the OCI helpers; `http_status` tells the API layer the code to answer."""


class OciError(Exception):
    """500: a host operation behind a spec setting failed (cgroup write, device stat)."""
    http_status = 500


class InvalidOciConfig(OciError):
    """400: a HostConfig value (cap, sysctl, ulimit, device, resource, security-opt) is invalid."""
    http_status = 400


class MissingPrivilege(InvalidOciConfig):
    """400: the request needs a capability pouchd itself does not hold (named in the message)."""
    http_status = 400


class CgroupNotFound(OciError):
    """404: the container's cgroup does not exist (not running)."""
    http_status = 404

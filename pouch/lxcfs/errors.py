"""Typed errors of the lxcfs subsystem; `http_status` tells the API layer the code to answer."""


class LxcfsError(Exception):
    """500: lxcfs could not be started, or the views could not be mounted."""
    http_status = 500


class LxcfsNotEnabled(LxcfsError):
    """400: a container asked for lxcfs views but pouchd runs without --enable-lxcfs or lxcfs is absent."""
    http_status = 400

"""Typed errors of the lxcfs subsystem (on pouch.errtypes: the API maps them by class)."""
from __future__ import annotations

from pouch.errtypes import InvalidArgument, SystemError_


class LxcfsError(SystemError_):
    """500: lxcfs could not be started, or the views could not be mounted."""


class LxcfsNotEnabled(InvalidArgument, LxcfsError):
    """400: a container asked for lxcfs views but pouchd runs without --enable-lxcfs or lxcfs is absent."""

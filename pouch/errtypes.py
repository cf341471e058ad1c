"""Typed errors shared by every layer of pouch.

Each error carries the HTTP status it maps to; the server maps them in one
place (pouch.daemon.server.app).  Subsystems (network, volume, oci, quota, registry, runtime,
lxcfs) keep their own error modules, whose classes subclass these (a subsystem's "not found" is
a NotFound), so ``except NotFound`` / ``except PouchError`` catch them too and the client maps statuses back to these
classes (pouch.client.errors).  containerd's gRPC codes are mapped once in
pouch.daemon.ctrd.errors.
"""
from __future__ import annotations


class PouchError(Exception):
    """Base of every pouch error; ``http_status`` says how the API reports it."""

    http_status = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message or self.__class__.__name__


class InvalidArgument(PouchError):
    http_status = 400


class Unauthorized(PouchError):
    """The caller's (or our) credentials were refused, or are missing."""

    http_status = 401


class NotFound(PouchError):
    """``kind``/``ref`` (e.g. "container", "web") let each API face word the error its own way."""

    http_status = 404

    def __init__(self, message: str = "", kind: str | None = None, ref: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.ref = kind, ref


class Conflict(PouchError):
    http_status = 409


class InUse(Conflict):
    """A resource cannot be removed or changed because something uses it."""


class NotModified(PouchError):
    http_status = 304


class Forbidden(PouchError):
    http_status = 403


class NotImplementedYet(PouchError):
    http_status = 501


class Unavailable(PouchError):
    http_status = 503


class Timeout(PouchError):
    http_status = 504


class SystemError_(PouchError):
    """An internal failure (containerd, runtime, filesystem)."""

    http_status = 500


class AlreadyExists(Conflict):
    """The object exists already (containerd's ALREADY_EXISTS)."""

"""Typed errors of the volume subsystem (volumes, mounts parsing)."""
from __future__ import annotations

from pouch.errtypes import Conflict, InUse, InvalidArgument, NotFound, PouchError


class VolumeError(PouchError):
    """500: the filesystem refused a volume operation."""


class InvalidVolumeSpec(InvalidArgument):
    """400: a volume name, driver option, -v / --mount / --tmpfs value is malformed."""


class VolumeNotFound(NotFound):
    """404: no volume by that name."""


class VolumeConflict(Conflict):
    """409: a volume exists already with other options."""


class VolumeInUse(InUse):
    """409: the volume is referenced by containers (their ids are in `.containers`)."""

    def __init__(self, message: str, containers: list[str]) -> None:
        super().__init__(message)
        self.containers = containers

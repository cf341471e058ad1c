"""The one place that chooses which face answers a request.

``/v1.24`` (the version the Pouch client pins) and unversioned requests get the
Pouch face (PouchContainer's swagger); ``/v1.25`` and newer get the Moby face of
that version.  Handlers produce face-neutral data and hand it to
``face(request)``, which serializes it; the error middleware asks the face for
the status and text of an error.
"""
from __future__ import annotations

from aiohttp import web

from .faces import moby, pouch

POUCH_API_VERSION = "1.24"
FACE = web.RequestKey("face", object)


def choose(version: str | None):
    """The face module for an API version prefix (None: unversioned)."""
    if version is None or version == POUCH_API_VERSION:
        return pouch
    major, _, minor = version.partition(".")
    if (int(major), int(minor)) <= (1, 24):
        return pouch
    return moby


def face(request):
    """The face chosen for this request by the version middleware (Pouch's by default)."""
    return request.get(FACE, pouch)

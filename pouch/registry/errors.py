"""Typed errors raised by the registry client (pouch.registry).

They subclass pouch.errtypes' classes, which carry the HTTP status the daemon answers with:
400 invalid input, 401 unauthorized, 404 not found, 500 otherwise.
"""

from __future__ import annotations

from pouch import errtypes


class RegistryError(errtypes.SystemError_):
    """Base of every error raised by pouch.registry."""


class InvalidReference(errtypes.InvalidArgument, RegistryError):
    """An image reference or digest that does not parse."""


class InvalidPlatform(errtypes.InvalidArgument, RegistryError):
    """A platform string like ``linux/arm64/v8`` that does not parse."""


class Unauthorized(errtypes.Unauthorized, RegistryError):
    """The registry refused our credentials, or asked for some we do not have."""


class NotFound(errtypes.NotFound, RegistryError):
    """The registry has no such repository, tag, manifest or blob."""


class NoMatchingPlatform(NotFound):
    """A manifest list / OCI index has no entry for the wanted platform."""


class UnsupportedManifest(errtypes.InvalidArgument, RegistryError):
    """A manifest media type we do not handle (for example Docker schema 1)."""


class DigestMismatch(RegistryError):
    """Content whose sha256 differs from the digest it was asked for."""

    def __init__(self, digest: str, actual: str, what: str = "blob") -> None:
        super().__init__(f"{what} {digest}: digest mismatch, content hashes to {actual}")
        self.digest = digest
        self.actual = actual


class SizeMismatch(RegistryError):
    """Content whose length differs from its descriptor's size."""

    def __init__(self, digest: str, expected: int, actual: int) -> None:
        super().__init__(f"blob {digest}: size mismatch, expected {expected} bytes, got {actual}")
        self.digest = digest


class RegistryUnavailable(RegistryError):
    """The registry could not be reached (connection refused, TLS failure, 5xx)."""


class InsecureRegistryRefused(RegistryUnavailable):
    """A plain-http or untrusted-TLS registry that is not listed as insecure."""


class UploadFailed(RegistryError):
    """A blob or manifest upload that the registry rejected."""

"""Typed errors raised by the registry client (pouch.registry).

Each class carries an ``http_status`` class attribute so the daemon maps it to an
HTTP status once: 400 invalid input, 401 unauthorized, 404 not found, 500 otherwise.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error raised by pouch.registry."""

    http_status = 500


class InvalidReference(RegistryError):
    """An image reference or digest that does not parse."""

    http_status = 400


class InvalidPlatform(RegistryError):
    """A platform string like ``linux/arm64/v8`` that does not parse."""

    http_status = 400


class Unauthorized(RegistryError):
    """The registry refused our credentials, or asked for some we do not have."""

    http_status = 401


class NotFound(RegistryError):
    """The registry has no such repository, tag, manifest or blob."""

    http_status = 404


class NoMatchingPlatform(NotFound):
    """A manifest list / OCI index has no entry for the wanted platform."""


class UnsupportedManifest(RegistryError):
    """A manifest media type we do not handle (for example Docker schema 1)."""

    http_status = 400


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

    http_status = 500


class InsecureRegistryRefused(RegistryUnavailable):
    """A plain-http or untrusted-TLS registry that is not listed as insecure."""


class UploadFailed(RegistryError):
    """A blob or manifest upload that the registry rejected."""

"""pouch.registry: Docker Registry HTTP API v2 / OCI distribution client (pull, push, auth, mirrors).

The image manager uses ``RegistryClient`` with a ``Sink`` (see sink.py) for blobs.
"""

from .client import RegistryClient
from .compression import open_layer_stream
from .config import RegistryConfig
from .credentials import Credentials, CredentialStore
from .errors import (DigestMismatch, InsecureRegistryRefused, InvalidPlatform, InvalidReference, NoMatchingPlatform,
                     NotFound, RegistryError, RegistryUnavailable, SizeMismatch, Unauthorized, UnsupportedManifest,
                     UploadFailed)
from .manifest import Descriptor
from .platform import Platform, parse_platform
from .progress import Progress, State
from .reference import Reference, parse_reference
from .resolve import ResolvedImage
from .sink import DirSink

__all__ = [
    "RegistryClient", "RegistryConfig", "CredentialStore", "Credentials", "DirSink", "Descriptor",
    "Platform", "parse_platform", "Progress", "State", "Reference", "parse_reference", "ResolvedImage",
    "open_layer_stream", "RegistryError", "InvalidReference", "InvalidPlatform", "Unauthorized", "NotFound",
    "NoMatchingPlatform", "UnsupportedManifest", "DigestMismatch", "SizeMismatch", "RegistryUnavailable",
    "InsecureRegistryRefused", "UploadFailed",
]

"""What P2P components accept as names: digests, repositories and registries, checked before use.

Every name that arrives over the network is checked here first; file names are built only from a
checked digest's algorithm and hex (``sha256-<64 hex>``), never from the text as received.
"""
from __future__ import annotations

import re

# the algorithms we can verify, and their hex lengths
_HEX = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"(sha256|sha512):([0-9a-f]+)")
# distribution/reference: path components of lowercase alnum with ., _, __, - separators
_REPO_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
_REGISTRY_RE = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


class BadName(ValueError):
    """A digest, repository or registry name that is not well formed (HTTP 400)."""


def check_digest(digest: str) -> tuple[str, str]:
    """``algorithm:hex`` -> (algorithm, hex); BadName for anything else (paths, other algorithms)."""
    m = _DIGEST_RE.fullmatch(digest or "")
    if not m or len(m.group(2)) != _HEX[m.group(1)]:
        raise BadName(f"invalid digest {digest[:80]!r}: want sha256:<64 hex> or sha512:<128 hex>")
    return m.group(1), m.group(2)


def blob_name(digest: str) -> str:
    """The file name of a blob: ``sha256-<hex>`` from a checked digest."""
    algo, hexpart = check_digest(digest)
    return f"{algo}-{hexpart}"


def check_repository(name: str) -> str:
    if len(name) > 255 or not _REPO_RE.fullmatch(name or ""):
        raise BadName(f"invalid repository name {name[:80]!r}")
    return name


def check_registry(hostport: str) -> str:
    if len(hostport) > 255 or not _REGISTRY_RE.fullmatch(hostport or ""):
        raise BadName(f"invalid registry {hostport[:80]!r}: want host[:port]")
    return hostport

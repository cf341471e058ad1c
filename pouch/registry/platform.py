"""Platforms (os/architecture/variant) and choosing one entry of a manifest list / OCI index."""

from __future__ import annotations

import platform as _host
from dataclasses import dataclass

from .errors import InvalidPlatform

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
                 "i386": "386", "i686": "386"}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    def normalized(self) -> "Platform":
        arch = _ARCH_ALIASES.get(self.architecture, self.architecture)
        variant = self.variant
        if arch == "arm64" and variant in ("8", "v8"):
            variant = None  # v8 is the only arm64 variant in practice: treat as default
        if arch == "arm" and variant and not variant.startswith("v"):
            variant = f"v{variant}"
        return Platform(self.os.lower(), arch, variant)


def parse_platform(text: str | None) -> Platform:
    """``linux/arm64/v8`` -> Platform; empty -> the host's platform."""
    if not text:
        return host_platform()
    parts = text.strip().split("/")
    if len(parts) not in (1, 2, 3) or not all(parts):
        raise InvalidPlatform(f"invalid platform {text!r}: want os[/arch[/variant]]")
    if len(parts) == 1:
        return Platform(parts[0], host_platform().architecture).normalized()
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None).normalized()


def host_platform() -> Platform:
    return Platform("linux", _ARCH_ALIASES.get(_host.machine(), _host.machine()) or "amd64").normalized()


def match_score(want: Platform, entry: dict | None) -> int:
    """How well an index entry's ``platform`` fits ``want``: 0 = not at all, higher is better."""
    if not entry:
        return 0
    have = Platform(entry.get("os", ""), entry.get("architecture", ""), entry.get("variant") or None).normalized()
    want = want.normalized()
    if have.os != want.os or have.architecture != want.architecture:
        return 0
    if want.variant:
        if have.variant == want.variant:
            return 3
        if have.variant is None and _DEFAULT_VARIANT.get(want.architecture) == want.variant:
            return 2
        if want.architecture == "arm" and have.variant and have.variant < want.variant:
            return 1  # an older arm variant runs on a newer CPU (v6 on v7)
        return 0
    if have.variant is None or have.variant == _DEFAULT_VARIANT.get(want.architecture):
        return 3
    return 1


def choose(entries: list[dict], want: Platform) -> dict | None:
    """Best entry of ``manifests`` for ``want`` (first of equal score), or None."""
    best, best_score = None, 0
    for entry in entries:
        score = match_score(want, entry.get("platform"))
        if score > best_score:
            best, best_score = entry, score
    return best

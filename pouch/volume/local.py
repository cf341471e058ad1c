"""The `local` volume driver: a directory per volume, at <root>/<name>/_data or, with
`-o mount=DIR`, at DIR/<name>.  `-o size=10g` is recorded and handed to the `size_limiter`
hook (the disk-quota code enforces it with project quota)."""
from __future__ import annotations

import os
import re
import shutil
from typing import Callable

from .errors import InvalidVolumeSpec, VolumeError

SizeLimiter = Callable[[str, int], None]     # (directory, bytes) -> None; raises to refuse
KNOWN_OPTS = {"mount", "size"}
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """'10g', '512M', '1.5GiB', '1024' -> bytes (binary units, as Pouch)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtpb]?)(?:i?b)?\s*", text.lower())
    if not m:
        raise InvalidVolumeSpec(f"invalid size {text!r}: want a number with an optional unit (k, m, g, t)")
    n = int(float(m.group(1)) * _UNITS[m.group(2)])
    if n <= 0:
        raise InvalidVolumeSpec(f"invalid size {text!r}: must be positive")
    return n


class LocalDriver:
    name = "local"

    def __init__(self, root: str, size_limiter: SizeLimiter | None = None) -> None:
        self.root = root
        self.size_limiter = size_limiter
        self.size_releaser: Callable[[str], None] | None = None  # (directory) -> None, before removal

    def validate(self, options: dict[str, str]) -> int:
        """Check options; return the size limit in bytes (0 if none)."""
        unknown = set(options) - KNOWN_OPTS
        if unknown:
            raise InvalidVolumeSpec(f"unknown option(s) for local volume driver: {', '.join(sorted(unknown))}")
        mount = options.get("mount")
        if mount is not None and not os.path.isabs(mount):
            raise InvalidVolumeSpec(f"-o mount={mount!r} must be an absolute path")
        return parse_size(options["size"]) if options.get("size") else 0

    def path_for(self, name: str, options: dict[str, str]) -> str:
        if options.get("mount"):
            return os.path.join(options["mount"], name)
        return os.path.join(self.root, name, "_data")

    def create(self, name: str, options: dict[str, str]) -> tuple[str, int]:
        """Make the volume's directory; return (mountpoint, size)."""
        size = self.validate(options)
        path = self.path_for(name, options)
        try:
            os.makedirs(path, mode=0o755, exist_ok=True)
        except OSError as e:
            raise VolumeError(f"cannot create volume directory {path}: {e}") from e
        if size and self.size_limiter is not None:
            try:
                self.size_limiter(path, size)
            except BaseException:
                shutil.rmtree(path if options.get("mount") else os.path.dirname(path), ignore_errors=True)
                raise
        return path, size

    def remove(self, name: str, mountpoint: str, options: dict[str, str]) -> None:
        top = mountpoint if options.get("mount") else os.path.dirname(mountpoint)
        if options.get("size") and self.size_releaser is not None:
            self.size_releaser(mountpoint)
        try:
            shutil.rmtree(top)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise VolumeError(f"cannot remove volume directory {top}: {e}") from e

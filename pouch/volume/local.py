"""The `local` volume driver: a directory per volume, at <root>/<name>/_data or, as Pouch's,
at the directory `-o mount=DIR` (alias `mountpoint=DIR`) names.  `-o size=10g` (Pouch also reads
`opt.size`, `Size`, `opt.Size`) is recorded and handed to the `size_limiter` hook (the disk-quota
code enforces it with project quota).  `selector.<key>` options (`volume create -s k=v`) are kept
as the volume's selectors.  The `tmpfs` driver keeps a volume's data on a tmpfs mounted while a
container uses it (Pouch's tmpfs volume driver; `-o size=` defaults to 64m)."""
from __future__ import annotations

import os
import re
import shutil
from typing import Callable

from .errors import InvalidVolumeSpec, VolumeError

SizeLimiter = Callable[[str, int], None]     # (directory, bytes) -> None; raises to refuse
KNOWN_OPTS = {"mount", "mountpoint", "size", "opt.size", "Size", "opt.Size"}
SIZE_KEYS = ("size", "opt.size", "Size", "opt.Size")


def size_option(options: dict[str, str]) -> str:
    """The size option under any of Pouch's names ('' if none)."""
    for k in SIZE_KEYS:
        if options.get(k):
            return options[k]
    return ""


def check_selectors(options: dict[str, str]) -> None:
    for k, v in options.items():
        if k.startswith("selector.") and (not k[len("selector."):] or not v):
            raise InvalidVolumeSpec(f"invalid selector {k[len('selector.'):]}={v}: selector format must be key=value")
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
        unknown = {k for k in options if k not in KNOWN_OPTS and not k.startswith("selector.")}
        if unknown:
            raise InvalidVolumeSpec(f"unknown option(s) for local volume driver: {', '.join(sorted(unknown))}")
        check_selectors(options)
        if options.get("mount") and options.get("mountpoint") and options["mount"] != options["mountpoint"]:
            raise InvalidVolumeSpec("-o mount and -o mountpoint name different directories")
        for key in ("mount", "mountpoint"):
            mount = options.get(key)
            if mount is not None and not os.path.isabs(mount):
                raise InvalidVolumeSpec(f"-o {key}={mount!r} must be an absolute path")
            if mount and os.path.exists(mount) and not os.path.isdir(mount):
                raise InvalidVolumeSpec(f"mount path is not a dir {mount}")
        size = size_option(options)
        return parse_size(size) if size else 0

    def path_for(self, name: str, options: dict[str, str]) -> str:
        if options.get("mount") or options.get("mountpoint"):  # Pouch: the data is that directory
            return os.path.normpath(options.get("mount") or options["mountpoint"])
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
                shutil.rmtree(path if (options.get("mount") or options.get("mountpoint")) else os.path.dirname(path),
                              ignore_errors=True)
                raise
        return path, size

    def attach(self, name: str, mountpoint: str, options: dict[str, str], cid: str = "") -> str | None:
        return None

    def detach(self, name: str, mountpoint: str, options: dict[str, str], cid: str = "") -> None:
        pass

    def remove(self, name: str, mountpoint: str, options: dict[str, str]) -> None:
        top = mountpoint if (options.get("mount") or options.get("mountpoint")) else os.path.dirname(mountpoint)
        if size_option(options) and self.size_releaser is not None:
            self.size_releaser(mountpoint)
        try:
            shutil.rmtree(top)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise VolumeError(f"cannot remove volume directory {top}: {e}") from e


class TmpfsDriver(LocalDriver):
    """Pouch's `tmpfs` volume driver: <root>/tmpfs/<name> holds a tmpfs (mode 1777, nosuid,
    nodev, noexec) from the first container that uses the volume until the last one is gone."""
    name = "tmpfs"
    DEFAULT_SIZE = 64 << 20

    def validate(self, options: dict[str, str]) -> int:
        unknown = {k for k in options if k not in SIZE_KEYS and not k.startswith("selector.")}
        if unknown:
            raise InvalidVolumeSpec(f"unknown option(s) for tmpfs volume driver: {', '.join(sorted(unknown))}")
        check_selectors(options)
        size = size_option(options)
        return parse_size(size) if size else self.DEFAULT_SIZE

    def path_for(self, name: str, options: dict[str, str]) -> str:
        return os.path.join(self.root, "tmpfs", name)

    def create(self, name: str, options: dict[str, str]) -> tuple[str, int]:
        size = self.validate(options)
        path = self.path_for(name, options)
        os.makedirs(path, mode=0o755, exist_ok=True)
        return path, size

    def attach(self, name: str, mountpoint: str, options: dict[str, str], cid: str = "") -> str | None:
        import subprocess
        if os.path.ismount(mountpoint):
            return None
        os.makedirs(mountpoint, mode=0o755, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=1777,nosuid,nodev,noexec,size={self.validate(options)}",
                            "shm", mountpoint], capture_output=True, text=True)
        if r.returncode != 0:
            raise VolumeError(f"mounting tmpfs volume {name}: {r.stderr.strip()}")
        return None

    def detach(self, name: str, mountpoint: str, options: dict[str, str], cid: str = "") -> None:
        import subprocess
        if os.path.ismount(mountpoint):
            subprocess.run(["umount", "-l", mountpoint], capture_output=True)

    def remove(self, name: str, mountpoint: str, options: dict[str, str]) -> None:
        self.detach(name, mountpoint, options)
        try:
            os.rmdir(mountpoint)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise VolumeError(f"cannot remove volume directory {mountpoint}: {e}") from e

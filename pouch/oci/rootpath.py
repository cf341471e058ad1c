"""Resolving a path inside a root directory as if that root were ``/``: symlinks (absolute or
``..``) are followed but never lead out of it (what containerd's fs.RootPath does).  The root may
be one directory or an image's stack of layer directories (``lookup`` says where a path is)."""
from __future__ import annotations

import os
import stat
from typing import Callable

Lookup = Callable[[str], "tuple[str, int] | None"]  # "a/b" -> (host path, st_mode), None if absent


def resolve(lookup: Lookup, rel: str, max_links: int = 255) -> tuple[list[str], bool]:
    """(components of ``rel`` inside the root, whether it exists).  Symlinks are followed while
    the path exists; after a missing component the rest is taken as written (``..`` still never
    climbs above the root).  OSError on a symlink loop."""
    todo = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    exists, links = True, 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        found = lookup("/".join([*done, part])) if exists else None
        if found is None:
            exists = False
            done.append(part)
            continue
        path, mode = found
        if stat.S_ISLNK(mode):
            links += 1
            if links > max_links:
                raise OSError(f"too many levels of symbolic links in {rel!r}")
            target = os.readlink(path)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            continue
        done.append(part)
    return done, exists


def root_path(root: str, rel: str) -> str:
    """``rel`` resolved inside the directory ``root``; the result may not exist."""
    def lookup(r: str):
        try:
            return os.path.join(root, r), os.lstat(os.path.join(root, r)).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
    return os.path.join(root, *resolve(lookup, rel)[0])

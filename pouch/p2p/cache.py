"""Bounding a P2P cache: the least recently used complete blobs go first."""
from __future__ import annotations

import os


def evict(cache_dir: str, limit: int, keep: set[str] = frozenset()) -> list[str]:
    """Delete complete blob files (not ``*.part``, not in ``keep``) from ``cache_dir``, least
    recently used first, until the directory holds at most ``limit`` bytes; returns their names."""
    entries = []
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        entries.append((max(st.st_atime, st.st_mtime), st.st_size, name))
    total = sum(size for _, size, _ in entries)
    gone = []
    for _, size, name in sorted(entries):
        if total <= limit:
            break
        if name.endswith(".part") or name in keep:
            continue
        try:
            os.unlink(os.path.join(cache_dir, name))
        except FileNotFoundError:
            pass
        total -= size
        gone.append(name)
    return gone


def touch(path: str) -> None:
    """Mark a blob used now (filesystems mounted noatime do not do it on read)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        pass

"""Downloading a blob from its registry (the origin) into a cache directory, verified.

Each download writes its own ``.part`` file (concurrent downloads of one blob never share one),
checks size and digest, and renames it into place atomically; a failed download leaves nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import Callable

import aiohttp

from .names import blob_name, check_digest


class OriginError(Exception):
    """The registry did not give us the blob (status is its HTTP status, 0 if unreachable)."""

    def __init__(self, msg: str, status: int = 0) -> None:
        super().__init__(msg)
        self.status = status


def hasher(digest: str):
    return hashlib.new(check_digest(digest)[0])


def verify_file(path: str, digest: str) -> bool:
    """Whether the file's content hashes to ``digest`` (blocking)."""
    h = hasher(digest)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest() == check_digest(digest)[1]


async def download(session: aiohttp.ClientSession, url: str, headers: dict, digest: str, size: int | None,
                   cache_dir: str, progress: Callable[[str, int], None] | None = None, ssl=None) -> str:
    """GET ``url`` into ``cache_dir/<blob name>``; ``progress(path, bytes_so_far)`` as it goes
    (with a known ``size``, the last bytes only once the digest matched: a reader never gets a
    whole body that is wrong).  Returns the final path; OriginError on any failure (the .part is
    removed)."""
    final = os.path.join(cache_dir, blob_name(digest))
    fd, part = tempfile.mkstemp(dir=cache_dir, prefix=blob_name(digest) + ".", suffix=".part")
    h, done = hasher(digest), 0
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                async with session.get(url, headers=headers, ssl=ssl) as resp:
                    if resp.status != 200:
                        raise OriginError(f"registry answered HTTP {resp.status} for {digest}", resp.status)
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        f.write(chunk)
                        h.update(chunk)
                        done += len(chunk)
                        if progress and done != size:  # the last bytes wait for the digest check
                            f.flush()
                            progress(part, done)
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                raise OriginError(f"downloading {digest} from the registry: {e}") from None
        if (size is not None and done != size) or h.hexdigest() != check_digest(digest)[1]:
            raise OriginError(f"blob from the registry does not match {digest} ({done} bytes)")
        os.replace(part, final)
        if progress:
            progress(final, done)
        return final
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        raise

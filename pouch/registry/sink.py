"""Where fetched blobs go: the Sink interface the registry client writes into, and DirSink.

A sink is any object with these coroutine methods (duck-typed; ``Sink`` is a Protocol):

- ``has(digest) -> bool``: the whole, verified blob is already stored.
- ``offset(digest) -> int``: bytes already stored of a partial download (0 if none).
- ``read_partial(digest)``: optional; async iterator over those partial bytes, so the client
  can re-hash them before resuming. A sink without it never resumes across fetch calls.
- ``open(digest, size, offset) -> BlobWriter``: start writing at ``offset`` (0 truncates any partial).

A ``BlobWriter`` has ``write(data)``, ``commit()`` (the client calls it only after the sha256 of
all bytes matched the digest; the blob becomes visible to ``has``), ``abort()`` (discard the
partial) and ``close()`` (stop but keep the partial for a later resume).

Blobs that a push reads come from a ``BlobProvider``: ``read(digest)`` -> async iterator of bytes.
DirSink is both.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import AsyncIterator, Protocol

from .errors import NotFound
from .reference import validate_digest

CHUNK = 256 * 1024


class BlobWriter(Protocol):
    async def write(self, data: bytes) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...
    async def close(self) -> None: ...


class Sink(Protocol):
    async def has(self, digest: str) -> bool: ...
    async def offset(self, digest: str) -> int: ...
    async def open(self, digest: str, size: int, offset: int) -> BlobWriter: ...


class BlobProvider(Protocol):
    def read(self, digest: str) -> AsyncIterator[bytes]: ...


class _FileWriter:
    """Writes one partial file; commit renames it into place."""

    def __init__(self, partial: Path, final: Path, offset: int) -> None:
        self._partial, self._final = partial, final
        self._file = open(partial, "r+b" if offset and partial.exists() else "wb")
        self._file.truncate(offset)
        self._file.seek(offset)

    async def write(self, data: bytes) -> None:
        self._file.write(data)  # page-cache writes of one chunk: short enough for the loop

    async def commit(self) -> None:
        await asyncio.to_thread(self._sync_close)
        os.replace(self._partial, self._final)

    async def abort(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)

    async def close(self) -> None:
        await asyncio.to_thread(self._sync_close)

    def _sync_close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


# A sink may set ``verifies_digest = True`` when its commit checks the digest itself (and raises
# pouch.registry.errors.DigestMismatch on a mismatch); the client then does not hash the bytes.


class DirSink:
    """Blobs as files under ``root/<algo>/<hex>``; partial downloads as ``root/<algo>/<hex>.partial``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        algo, _, hexpart = validate_digest(digest).partition(":")
        return self.root / algo / hexpart

    def _partial(self, digest: str) -> Path:
        return self.path(digest).with_suffix(".partial")

    async def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    async def offset(self, digest: str) -> int:
        try:
            return self._partial(digest).stat().st_size
        except FileNotFoundError:
            return 0

    async def read_partial(self, digest: str) -> AsyncIterator[bytes]:
        with open(self._partial(digest), "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    async def open(self, digest: str, size: int, offset: int) -> _FileWriter:
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        return _FileWriter(self._partial(digest), final, offset)

    async def read(self, digest: str) -> AsyncIterator[bytes]:
        """BlobProvider side: the stored blob's bytes (NotFound if absent)."""
        try:
            f = open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not in {self.root}") from None
        with f:
            while chunk := f.read(CHUNK):
                yield chunk

    async def put(self, digest: str, data: bytes) -> None:
        """Store a small blob (a manifest or config) given whole; the caller verified it.

        Written to a unique temporary name and renamed, so concurrent puts of one digest are safe.
        """
        final = self.path(digest)
        if final.is_file():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".put-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, final)

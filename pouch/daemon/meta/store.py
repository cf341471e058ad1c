"""The meta store: pouchd's crash-safe record of what users made.

SQLite in WAL mode, one table of JSON documents keyed by (bucket, id).
Each put is one transaction, so a record is either wholly written or not at
all, whatever moment pouchd is killed at.

A full disk (ENOSPC, SQLite's "database or disk is full") is a ``StoreFull``
error (503) for writes a request needs; writes that must not fail the work
around them (a container's exit, its removal) use ``put_eventually`` /
``delete_eventually``: the latest such write per record is kept in memory and
retried (``flush``, every few seconds once ``start_retrying`` ran, and before
every later write) until the disk has room again.
"""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sqlite3
from typing import Iterator

from pouch.errtypes import Unavailable

log = logging.getLogger(__name__)
_DELETE = object()


class StoreFull(Unavailable):
    """The meta store cannot write: no space left on the device of pouchd's home."""


def _full(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e).lower()
    return isinstance(e, sqlite3.Error) and ("full" in text or "disk i/o" in text)


class MetaStore:
    def __init__(self, path: str, sync: str = "NORMAL") -> None:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={sync}")
        self.db.execute("CREATE TABLE IF NOT EXISTS objects ("
                        " bucket TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,"
                        " PRIMARY KEY (bucket, id))")

        self.pending: dict[tuple[str, str], object] = {}  # (bucket, id) -> data, or _DELETE
        self._retry: asyncio.Task | None = None

    def _write(self, bucket: str, key: str, data) -> None:
        try:
            if data is _DELETE:
                self.db.execute("DELETE FROM objects WHERE bucket=? AND id=?", (bucket, key))
            else:
                self.db.execute("INSERT OR REPLACE INTO objects (bucket, id, data) VALUES (?, ?, ?)",
                                (bucket, key, data))
        except (sqlite3.Error, OSError) as e:
            if _full(e):
                raise StoreFull(f"meta store {self.path}: no space left on device ({e})") from None
            raise

    def put(self, bucket: str, key: str, obj: dict) -> None:
        self.flush()
        self._write(bucket, key, json.dumps(obj, separators=(",", ":")))
        self.pending.pop((bucket, key), None)

    def put_eventually(self, bucket: str, key: str, obj: dict) -> None:
        """put, or (disk full) keep it to retry: never raises StoreFull."""
        self._eventually(bucket, key, json.dumps(obj, separators=(",", ":")))

    def delete_eventually(self, bucket: str, key: str) -> None:
        self._eventually(bucket, key, _DELETE)

    def _eventually(self, bucket: str, key: str, data) -> None:
        self.pending[(bucket, key)] = data
        try:
            self.flush()
        except StoreFull as e:
            log.warning("%s; %d record(s) kept in memory until there is room", e.message, len(self.pending))

    def flush(self) -> None:
        """Write what ``*_eventually`` kept; raises StoreFull while the disk is still full."""
        while self.pending:
            (bucket, key), data = next(iter(self.pending.items()))
            self._write(bucket, key, data)
            if self.pending.get((bucket, key)) is data:
                del self.pending[(bucket, key)]

    def start_retrying(self, interval: float = 2.0) -> None:
        async def loop():
            while True:
                await asyncio.sleep(interval)
                if self.pending:
                    try:
                        self.flush()
                        log.info("meta store: kept records written")
                    except StoreFull:
                        pass
                    except Exception:  # noqa: BLE001 - keep retrying
                        log.exception("meta store: retrying kept records")
        self._retry = asyncio.get_running_loop().create_task(loop())

    def get(self, bucket: str, key: str) -> dict | None:
        if (bucket, key) in self.pending:
            data = self.pending[(bucket, key)]
            return None if data is _DELETE else json.loads(data)
        row = self.db.execute("SELECT data FROM objects WHERE bucket=? AND id=?", (bucket, key)).fetchone()
        return json.loads(row[0]) if row else None

    def delete(self, bucket: str, key: str) -> None:
        self.flush()
        self._write(bucket, key, _DELETE)
        self.pending.pop((bucket, key), None)

    def list(self, bucket: str) -> Iterator[tuple[str, dict]]:
        for key, data in self.db.execute("SELECT id, data FROM objects WHERE bucket=?", (bucket,)).fetchall():
            if (bucket, key) not in self.pending:
                yield key, json.loads(data)
        for (b, key), data in list(self.pending.items()):
            if b == bucket and data is not _DELETE:
                yield key, json.loads(data)

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        try:
            self.flush()
        except StoreFull as e:
            log.error("%s: %d record(s) lost at exit", e.message, len(self.pending))
        self.db.close()

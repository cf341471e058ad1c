"""The meta store: pouchd's crash-safe record of what users made.

SQLite in WAL mode, one table of JSON documents keyed by (bucket, id).
Each put is one transaction, so a record is either wholly written or not at
all, whatever moment pouchd is killed at.
"""
from __future__ import annotations

import json
import os
import sqlite3
from typing import Iterator


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

    def put(self, bucket: str, key: str, obj: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO objects (bucket, id, data) VALUES (?, ?, ?)",
                        (bucket, key, json.dumps(obj, separators=(",", ":"))))

    def get(self, bucket: str, key: str) -> dict | None:
        row = self.db.execute("SELECT data FROM objects WHERE bucket=? AND id=?", (bucket, key)).fetchone()
        return json.loads(row[0]) if row else None

    def delete(self, bucket: str, key: str) -> None:
        self.db.execute("DELETE FROM objects WHERE bucket=? AND id=?", (bucket, key))

    def list(self, bucket: str) -> Iterator[tuple[str, dict]]:
        for key, data in self.db.execute("SELECT id, data FROM objects WHERE bucket=?", (bucket,)).fetchall():
            yield key, json.loads(data)

    def close(self) -> None:
        self.db.close()

"""The P2P caches stay under their size, dropping the least recently used blobs first."""
from __future__ import annotations

import os
import time

from pouch.p2p.cache import evict, touch


def test_lru_eviction_keeps_parts_and_the_blob_in_use(tmp_path):
    for i, name in enumerate(["sha256-old", "sha256-mid", "sha256-new", "sha256-busy.part"]):
        p = tmp_path / name
        p.write_bytes(b"x" * 100)
        os.utime(p, (time.time() - 100 + i, time.time() - 100 + i))
    touch(str(tmp_path / "sha256-old"))  # just used: now the newest
    # 400 bytes, limit 250: "mid" is the least recently used; "new" is in use and the partial
    # download must stay, so the just-touched "old" goes too
    gone = evict(str(tmp_path), 250, keep={"sha256-new"})
    assert gone == ["sha256-mid", "sha256-old"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["sha256-busy.part", "sha256-new"]
    assert evict(str(tmp_path), 250) == []  # under the limit: nothing more

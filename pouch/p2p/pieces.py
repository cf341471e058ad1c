"""How a blob is cut into pieces (the unit peers exchange and verify)."""
from __future__ import annotations

PIECE_SIZE = 4 << 20  # 4 MiB: ten pieces for a 40 MB layer, few enough hashes, many enough sources

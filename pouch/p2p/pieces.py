"""How a blob is cut into pieces (the unit peers exchange)."""
from __future__ import annotations

PIECE_SIZE = 4 << 20


def piece_count(size: int, piece_size: int = PIECE_SIZE) -> int:
    return max(1, -(-size // piece_size))


def piece_range(index: int, size: int, piece_size: int = PIECE_SIZE) -> tuple[int, int]:
    """[start, end) of piece ``index`` of a blob of ``size`` bytes."""
    start = index * piece_size
    return start, min(size, start + piece_size)

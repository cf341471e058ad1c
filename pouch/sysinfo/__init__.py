"""Kernel/host feature detection for `pouch info` and for degrading with a clear message."""
from .detect import collect

__all__ = ["collect"]

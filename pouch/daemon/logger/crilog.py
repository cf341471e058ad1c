"""The CRI log driver: kubelet's container log format at the path kubelet chose.

Each line is ``<RFC3339Nano time> <stdout|stderr> <F|P> <text>``: ``F`` ends a
line the container wrote, ``P`` is a piece of a longer one (kubelet joins
them).  ``reopen()`` closes the file so the next write creates it again, which
is how kubelet rotates logs (rename, then ReopenContainerLog).
"""
from __future__ import annotations

import os
import time

from .jsonfile import PARTIAL_MAX, rfc3339nano


class CriLogger:
    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
        self._f = None
        self._partial: dict[str, bytes] = {}
        if create:  # kubelet (and critest) read the file as soon as the container has started
            self._file()

    def _file(self):
        if self._f is None:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self._f = open(self.path, "ab", buffering=0)
        return self._f

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial.get(stream, b"") + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        out = [self._line(stream, b"F", line) for line in lines]
        while len(rest) >= PARTIAL_MAX:
            out.append(self._line(stream, b"P", rest[:PARTIAL_MAX]))
            rest = rest[PARTIAL_MAX:]
        self._partial[stream] = rest
        if out:
            self._file().write(b"".join(out))

    @staticmethod
    def _line(stream: str, tag: bytes, text: bytes) -> bytes:
        return b"%s %s %s %s\n" % (rfc3339nano(time.time_ns()).encode(), stream.encode(), tag, text)

    def flush(self) -> None:
        """Write out unterminated output as a partial line (the process ended or stopped)."""
        out = [self._line(s, b"P", rest) for s, rest in self._partial.items() if rest]
        self._partial.clear()
        if out:
            self._file().write(b"".join(out))

    def reopen(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        self._file()

    def close(self) -> None:
        self.flush()
        if self._f is not None:
            self._f.close()
            self._f = None

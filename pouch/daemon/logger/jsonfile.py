"""The json-file log driver: Docker's on-disk log format, with size rotation.

Each line a container prints becomes one JSON object
``{"log": "...\\n", "stream": "stdout", "time": "RFC3339Nano"}`` in
``<container dir>/<id>-json.log``; ``max-size`` rotates the file to ``.1``,
``.2`` ... keeping ``max-file`` files.  Readers filter by since/until and tail
and can follow: writers wake followers through an asyncio.Condition.  ``tail`` reads from the
end of the newest file backwards over the rotated ones; a full read and a follower go in bounded
steps (lists of entries, reads of at most 1 MiB), so a big log costs neither memory nor a long
stall of the event loop.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from typing import AsyncIterator

from pouch.errtypes import InvalidArgument

PARTIAL_MAX = 16 * 1024


def parse_size(v: str) -> int:
    v = v.strip().lower()
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "b": 1}
    try:
        if v and v[-1] in units:
            return int(float(v[:-1]) * units[v[-1]])
        return int(v)
    except ValueError:
        raise InvalidArgument(f"invalid log size {v!r}") from None


def rfc3339nano(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


def parse_time(s: str) -> int:
    """RFC3339(Nano) -> ns since epoch."""
    base, _, frac = s.rstrip("Z").partition(".")
    sec = int(time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) - time.timezone)
    return sec * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def json_log_path(container_dir: str, cid: str, opts: dict[str, str]) -> str:
    """The container's json log: in its own directory, or ``<root-dir>/<id>/json.log`` with
    Pouch's ``--log-opt root-dir=/abs/path``."""
    root = (opts or {}).get("root-dir")
    if root:
        return os.path.join(root, cid, "json.log")
    return os.path.join(container_dir, f"{cid}-json.log")


class JsonFileLogger:
    def __init__(self, path: str, opts: dict[str, str] | None = None, attrs: dict[str, str] | None = None) -> None:
        opts = opts or {}
        unknown = set(opts) - {"max-size", "max-file", "labels", "env", "compress", "tag", "root-dir"}
        if unknown:
            raise InvalidArgument(f"unknown log opt '{sorted(unknown)[0]}' for json-file log driver")
        if "root-dir" in opts and not os.path.isabs(opts["root-dir"] or ""):
            raise InvalidArgument(f"as root dir of container log, {opts['root-dir']!r} should be an absolute path")
        self.path = path
        self.max_size = parse_size(opts["max-size"]) if opts.get("max-size") else 0
        try:
            self.max_file = int(opts.get("max-file", "1"))
        except ValueError:
            raise InvalidArgument("max-file must be a number") from None
        if self.max_file < 1:
            raise InvalidArgument("max-file cannot be less than 1")
        self._f = None
        self._extra = {"attrs": dict(attrs)} if attrs else {}  # the labels/env log options' values
        self._partial: dict[str, bytes] = {}
        self.changed = asyncio.Condition()

    def _file(self):
        if self._f is None:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            self._f = open(self.path, "ab", buffering=0)
        return self._f

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial.get(stream, b"") + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        if len(rest) >= PARTIAL_MAX:
            lines.append(rest)
            rest = b""
            last_partial = True
        else:
            last_partial = False
        self._partial[stream] = rest
        if not lines:
            return
        now = time.time_ns()
        out = []
        for i, line in enumerate(lines):
            nl = "" if (last_partial and i == len(lines) - 1) else "\n"
            out.append(json.dumps({"log": line.decode("utf-8", "replace") + nl, "stream": stream,
                                   "time": rfc3339nano(now), **self._extra}, ensure_ascii=False) + "\n")
        self._append_lines(out)

    def flush(self) -> None:
        for stream, rest in list(self._partial.items()):
            if rest:
                self._partial[stream] = b""
                self._append((json.dumps({"log": rest.decode("utf-8", "replace"), "stream": stream,
                                          "time": rfc3339nano(time.time_ns()), **self._extra}, ensure_ascii=False)
                              + "\n").encode())

    def _append(self, data: bytes) -> None:
        self._append_lines([data.decode()])

    def _append_lines(self, lines: list[str]) -> None:
        """Write JSON lines, rotating between lines so no file grows past max-size."""
        if not self.max_size:
            self._file().write("".join(lines).encode())
            self._notify()
            return
        f = self._file()
        size = f.tell()
        batch: list[bytes] = []
        for line in lines:
            data = line.encode()
            if size + len(data) > self.max_size and size > 0:
                if batch:
                    f.write(b"".join(batch))
                    batch = []
                self._rotate()
                f = self._file()
                size = 0
            batch.append(data)
            size += len(data)
        if batch:
            f.write(b"".join(batch))
        self._notify()

    def _rotate(self) -> None:
        self._f.close()
        self._f = None
        if self.max_file <= 1:
            os.truncate(self.path, 0)
            return
        for i in range(self.max_file - 1, 0, -1):
            src = self.path if i == 1 else f"{self.path}.{i - 1}"
            if os.path.exists(src):
                os.replace(src, f"{self.path}.{i}")

    def _notify(self) -> None:
        async def wake():
            async with self.changed:
                self.changed.notify_all()
        try:
            asyncio.get_running_loop().create_task(wake())
        except RuntimeError:
            pass

    def close(self) -> None:
        self.flush()
        if self._f:
            self._f.close()
            self._f = None


def _files(path: str) -> list[str]:
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


BLOCK = 64 * 1024
FOLLOW_READ_MAX = 1 << 20  # a follower reads at most this much per step


def _parse(line: bytes) -> dict | None:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _in_window(e: dict, since_ns: int, until_ns: int) -> bool:
    if not since_ns and not until_ns:
        return True
    t = parse_time(e["time"])
    return (not since_ns or t >= since_ns) and (not until_ns or t <= until_ns)


def _lines_backwards(path: str):
    """The file's lines, last first, read in BLOCK-sized steps from its end."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            lines = (f.read(step) + rest).split(b"\n")
            rest = lines[0]
            for line in reversed(lines[1:]):
                if line:
                    yield line
        if rest:
            yield rest


def read_tail(path: str, tail: int, since_ns: int = 0, until_ns: int = 0) -> list[dict]:
    """The last ``tail`` entries (within since/until), read from the end of the newest file
    backwards over the rotated ones: the cost is that of the lines returned, not of the log."""
    out: list[dict] = []
    if tail <= 0:
        return out
    for p in reversed(_files(path)):
        for line in _lines_backwards(p):
            e = _parse(line)
            if e is None:
                continue
            if since_ns and parse_time(e["time"]) < since_ns:
                return out[::-1]  # entries are in time order: nothing older can match
            if until_ns and parse_time(e["time"]) > until_ns:
                continue
            out.append(e)
            if len(out) >= tail:
                return out[::-1]
    return out[::-1]


def iter_entries(path: str, since_ns: int = 0, until_ns: int = 0, batch: int = 1000):
    """All entries (within since/until), oldest first, in lists of at most ``batch`` (a caller
    on an event loop takes one list per thread hop; memory stays bounded)."""
    chunk: list[dict] = []
    for p in _files(path):
        try:
            f = open(p, "rb")
        except FileNotFoundError:  # rotated away meanwhile
            continue
        with f:
            for line in f:
                e = _parse(line)
                if e is None or not _in_window(e, since_ns, until_ns):
                    continue
                chunk.append(e)
                if len(chunk) >= batch:
                    yield chunk
                    chunk = []
    if chunk:
        yield chunk


def read_entries(path: str, since_ns: int = 0, until_ns: int = 0, tail: int = -1) -> list[dict]:
    if tail >= 0:
        return read_tail(path, tail, since_ns, until_ns)
    return [e for chunk in iter_entries(path, since_ns, until_ns) for e in chunk]


async def follow(path: str, logger: JsonFileLogger | None, offset: int,
                 running) -> AsyncIterator[dict]:
    """Yield entries appended after byte ``offset`` of the current file until ``running()`` is false."""
    ino = os.stat(path).st_ino if os.path.exists(path) else None
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if ino is not None and (st is None or st.st_ino != ino):  # rotated: finish the old file
            for e in await asyncio.to_thread(_rest_of_rotated, path + ".1", ino, offset):
                yield e
            offset, ino = 0, None
        if st is not None:
            if ino is None:
                ino = st.st_ino
            if st.st_size > offset:
                data = await asyncio.to_thread(_read_at, path, ino, offset, FOLLOW_READ_MAX)
                if data is None:  # rotated since the stat: the next round finishes the old file
                    continue
                end = data.rfind(b"\n") + 1
                if end == 0 and len(data) >= FOLLOW_READ_MAX:  # one line longer than a read
                    end = len(data)
                offset += end
                for line in data[:end].splitlines():
                    e = _parse(line)
                    if e is not None:
                        yield e
                if end:
                    continue
        if not running():
            return
        if logger is not None:
            try:
                async with logger.changed:
                    await asyncio.wait_for(logger.changed.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        else:
            await asyncio.sleep(0.2)


def _read_at(path: str, ino: int, offset: int, size: int) -> bytes | None:
    """Up to ``size`` bytes at ``offset`` of the file at ``path`` if it is still inode ``ino``
    (None if a rotation renamed it away meanwhile)."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_ino != ino:
                return None
            f.seek(offset)
            return f.read(size)
    except FileNotFoundError:
        return None


def _rest_of_rotated(path: str, ino: int, offset: int) -> list[dict]:
    """Entries past ``offset`` in the file that was just rotated to ``path`` (if it is that file)."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_ino != ino:
                return []
            f.seek(offset)
            data = f.read()
    except OSError:
        return []
    out = []
    for line in data.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out

"""Docker-style JSON progress messages for pull and push streams.

Turns pouch.registry ``Progress`` events into the ``{"status", "progressDetail", "progress",
"id"}`` objects that the Docker CLI (and pouch's CLI) render, throttling byte-count updates so a
fast local download does not flood the stream.
"""
from __future__ import annotations

import time
from typing import Callable

from pouch.registry import Progress, State

Emit = Callable[[dict], None]
THROTTLE_S = 0.1
BAR_WIDTH = 50


def human_size(n: float) -> str:
    """Docker's HumanSize: decimal units, 4 significant digits (``2.225MB``)."""
    units = ["B", "kB", "MB", "GB", "TB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


def progress_bar(current: int, total: int) -> str:
    if total <= 0:
        return human_size(current)
    filled = min(BAR_WIDTH, int(BAR_WIDTH * current / total))
    return f"[{'=' * filled}>{' ' * (BAR_WIDTH - filled)}] {human_size(current):>8}/{human_size(total)}"


def message(status: str, id: str | None = None, current: int | None = None, total: int | None = None) -> dict:
    msg: dict = {"status": status}
    if id is not None:
        msg["progressDetail"] = {}
        if current is not None:
            msg["progressDetail"] = {"current": current, "total": total or 0}
            msg["progress"] = progress_bar(current, total or 0)
        msg["id"] = id
    return msg


def error_message(text: str) -> dict:
    return {"errorDetail": {"message": text}, "error": text}


def short_id(digest: str) -> str:
    return digest.partition(":")[2][:12]


class LayerReporter:
    """Callable for the registry client: per-blob events -> Docker messages (throttled)."""

    STATUS = {
        State.WAITING: "Waiting", State.RETRYING: "Retrying", State.VERIFYING: "Verifying Checksum",
        State.DONE: "Download complete", State.EXISTS: "Already exists", State.PUSHED: "Pushed",
    }

    def __init__(self, emit: Emit, push: bool = False) -> None:
        self.emit = emit
        self.push = push
        self._last: dict[str, float] = {}
        self._state: dict[str, State] = {}

    def __call__(self, ev: Progress) -> None:
        sid = short_id(ev.digest)
        if ev.state in (State.DOWNLOADING, State.PUSHING):
            now = time.monotonic()
            if ev.current < ev.total and now - self._last.get(sid, 0.0) < THROTTLE_S \
                    and self._state.get(sid) == ev.state:
                return
            self._last[sid] = now
            self._state[sid] = ev.state
            self.emit(message(ev.state.value, sid, ev.current, ev.total))
            return
        if self._state.get(sid) == ev.state:
            return
        self._state[sid] = ev.state
        if ev.state == State.MOUNTED:
            self.emit(message("Mounted from another repository", sid))
        elif ev.state == State.EXISTS and self.push:
            self.emit(message("Layer already exists", sid))
        else:
            self.emit(message(self.STATUS.get(ev.state, ev.state.value), sid))

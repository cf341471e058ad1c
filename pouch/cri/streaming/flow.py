"""Backpressure for input read off a WebSocket into the runtime's ``asyncio.StreamReader``.

asyncio's StreamReader asks its transport to pause once more than 2*limit bytes are unread and
to resume when read down; a :class:`ReadGate` stands in for that transport, and the WebSocket
read loop waits at the gate before taking the next message.
"""
from __future__ import annotations

import asyncio

READ_LIMIT = 512 * 1024


class ReadGate:
    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    def pause_reading(self) -> None:
        self._open.clear()

    def resume_reading(self) -> None:
        self._open.set()

    async def wait(self) -> None:
        await self._open.wait()


def gated_reader(gate: ReadGate) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=READ_LIMIT)
    reader.set_transport(gate)
    return reader

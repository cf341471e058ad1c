"""Exec routes: create, start (hijacked unless detached), inspect, resize."""
from __future__ import annotations

import asyncio

from aiohttp import web

from pouch.errtypes import Conflict

from ..mgr.exec import ExecManager
from .app import json_response, qint, read_json
from .hijack import DetachScanner, detach_sequence, hijack


def routes(execs: ExecManager) -> list[tuple[str, str, object]]:
    async def create(request: web.Request):
        body = await read_json(request)
        e = execs.create(request.match_info["id"], body)
        return json_response({"Id": e.id}, 201)

    async def start(request: web.Request):
        e = execs.get(request.match_info["id"])
        body = await read_json(request, required=False)
        if body.get("Detach"):
            await execs.start(e)
            return web.Response(status=200)
        tty = bool(e.config.get("Tty"))
        q: asyncio.Queue = asyncio.Queue()
        e.attached.add(q)
        keys = detach_sequence(e.config.get("DetachKeys") or None)
        h = await hijack(request, multiplexed=not tty)
        pump = None
        try:
            await execs.start(e)
        except Exception as err:
            if e.exit_code is None:  # failed before the process existed: "cannot invoke"
                e.exit_code = 126
            msg = getattr(err, "message", str(err))
            h.write("stderr" if not tty else "stdout", (msg + "\n").encode())
            h.close()
            return web.Response(status=200)
        if e.config.get("AttachStdin"):
            pump = asyncio.ensure_future(_pump(execs, e, h, keys))
        try:
            while True:
                item = await q.get()
                if item is None:
                    break
                stream, data = item
                if (stream == "stdout" and e.config.get("AttachStdout", True)) or \
                        (stream == "stderr" and e.config.get("AttachStderr", True)):
                    h.write(stream, data)
                    await h.drain()
        finally:
            e.attached.discard(q)
            if pump and not pump.done():
                pump.cancel()
            h.close()
        return web.Response(status=200)

    async def inspect(request: web.Request):
        return json_response(execs.get(request.match_info["id"]).inspect())

    async def resize(request: web.Request):
        e = execs.get(request.match_info["id"])
        if not e.running:
            raise Conflict(f"exec {e.id} is not running")
        await execs.resize(e, qint(request, "h", 0), qint(request, "w", 0))
        return web.Response(status=200)

    return [
        ("POST", "/containers/{id}/exec", create),
        ("POST", "/exec/{id}/start", start),
        ("GET", "/exec/{id}/json", inspect),
        ("POST", "/exec/{id}/resize", resize),
    ]


async def _pump(execs: ExecManager, e, h, keys: bytes) -> None:
    scanner = DetachScanner(keys)
    while True:
        data = await h.input.get()
        if data is None:
            await execs.close_stdin(e)
            return
        data, detached = scanner.feed(data)
        if detached:
            h.close()
            return
        if data and e.io is not None:
            await e.io.write_stdin(data)

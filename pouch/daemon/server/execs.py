"""Exec routes: create, start (hijacked unless detached), inspect, resize (ExecManager calls)."""
from __future__ import annotations

from aiohttp import web

from ..mgr.exec import ExecManager
from .app import json_response, qint, read_json
from .hijack import hijack


def routes(execs: ExecManager) -> list[tuple[str, str, object]]:
    async def create(request: web.Request):
        body = await read_json(request)
        e = execs.create(request.match_info["id"], body)
        return json_response({"Id": e.id}, 201)

    async def start(request: web.Request):
        eid = request.match_info["id"]
        execs.get(eid)  # 404 before the body is read
        body = await read_json(request, required=False)
        if body.get("Detach"):
            await execs.start(eid)
        else:
            await execs.start(eid, lambda tty: hijack(request, multiplexed=not tty))
        return web.Response(status=200)

    async def inspect(request: web.Request):
        return json_response(execs.inspect(request.match_info["id"]))

    async def resize(request: web.Request):
        await execs.resize(request.match_info["id"], qint(request, "h", 0), qint(request, "w", 0))
        return web.Response(status=200)

    return [
        ("POST", "/containers/{id}/exec", create),
        ("POST", "/exec/{id}/start", start),
        ("GET", "/exec/{id}/json", inspect),
        ("POST", "/exec/{id}/resize", resize),
    ]

"""System routes: ping, version, info, events, disk usage, the consistency check."""
from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from pouch.api.version import API_VERSION

from ..events.exchange import EventExchange, matches
from .app import json_response, qfilters, read_json
from .face import face


def routes(system, events: EventExchange, reconciler=None, daemon_update=None) -> list[tuple[str, str, object]]:
    async def ping(request: web.Request):
        return web.Response(text="OK", headers={"Api-Version": API_VERSION, "Docker-Experimental": "false",
                                                "Cache-Control": "no-cache", "Pragma": "no-cache"})

    async def version(request: web.Request):
        return json_response(face(request).version(await system.version()))

    async def info(request: web.Request):
        return json_response(face(request).info(await system.info()))

    async def events_(request: web.Request):
        since = _ts(request.query.get("since"))
        until = _ts(request.query.get("until"))
        filters = qfilters(request)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        q = events.subscribe() if not until or until > time.time_ns() else None
        try:
            await resp.prepare(request)
            if since is not None:
                for ev in events.history(since, until):
                    if matches(ev, filters):
                        await resp.write(json.dumps(ev).encode() + b"\n")
            while q is not None:
                timeout = None if until is None else max(0.0, (until - time.time_ns()) / 1e9)
                try:
                    ev = await asyncio.wait_for(q.get(), timeout)
                except asyncio.TimeoutError:
                    break
                if matches(ev, filters):
                    await resp.write(json.dumps(ev).encode() + b"\n")
        finally:
            if q is not None:
                events.unsubscribe(q)
        await resp.write_eof()
        return resp

    async def remount_lxcfs(request: web.Request):
        done = await system.remount_lxcfs()
        return json_response({"Remounted": done})

    async def df(request: web.Request):
        return json_response(await system.disk_usage())

    async def consistency(request: web.Request):
        # ids: containers removed meanwhile whose leftovers (cgroups, shims) count as this daemon's
        known = {i for i in (request.query.get("ids") or "").split(",") if i}
        found = await reconciler.check(known) if reconciler is not None else []
        return json_response({"Violations": [v.to_dict() for v in found]})

    async def update_daemon(request: web.Request):
        daemon_update.update(await read_json(request))
        return web.Response(status=200)

    return [
        ("GET", "/system/consistency", consistency),
        ("POST", "/daemon/update", update_daemon),
        ("POST", "/remount-lxcfs", remount_lxcfs),
        ("GET", "/_ping", ping),
        ("HEAD", "/_ping", ping),
        ("GET", "/version", version),
        ("GET", "/info", info),
        ("GET", "/system/df", df),
        ("GET", "/events", events_),
    ]


def _ts(v: str | None) -> int | None:
    from pouch.errtypes import InvalidArgument
    if not v:
        return None
    try:
        return int(float(v) * 1_000_000_000)
    except ValueError:
        raise InvalidArgument(f"invalid timestamp {v!r}") from None

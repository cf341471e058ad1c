"""``/containers/{id}/archive`` (HEAD, GET, PUT): what ``cp`` uses, and ``/export`` (see mgr/archive.py)."""
from __future__ import annotations

from aiohttp import web

from ..mgr.archive import ContainerArchive, stat_header
from ..mgr.container import ContainerManager
from .app import qbool

STAT_HEADER = "X-Docker-Container-Path-Stat"


def routes(mgr: ContainerManager, archive: ContainerArchive) -> list[tuple[str, str, object]]:
    async def head(request: web.Request):
        c = mgr.get(request.match_info["id"])
        st = await archive.stat(c, request.query.get("path", ""))
        return web.Response(status=200, headers={STAT_HEADER: stat_header(st)})

    async def get(request: web.Request):
        c = mgr.get(request.match_info["id"])
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})

        async def send_headers(st: dict):
            resp.headers[STAT_HEADER] = stat_header(st)
            await resp.prepare(request)
            return resp.write

        await archive.get(c, request.query.get("path", ""), send_headers)
        await resp.write_eof()
        return resp

    async def put(request: web.Request):
        c = mgr.get(request.match_info["id"])
        await archive.put(c, request.query.get("path", ""), request.content.iter_chunked(1 << 20),
                          qbool(request, "noOverwriteDirNonDir"), qbool(request, "copyUIDGID"))
        return web.Response(status=200)

    async def export(request: web.Request):
        c = mgr.get(request.match_info["id"])
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})

        async def send_headers():
            await resp.prepare(request)
            return resp.write

        await archive.export(c, send_headers)
        await resp.write_eof()
        return resp

    return [
        ("GET", "/containers/{id}/export", export),
        ("HEAD", "/containers/{id}/archive", head),
        ("GET", "/containers/{id}/archive", get),
        ("PUT", "/containers/{id}/archive", put),
    ]

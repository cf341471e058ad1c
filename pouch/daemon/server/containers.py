"""Container routes (the container bridge): parse the request, call one ContainerManager method,
serialize its answer (JSON, a log stream, or a hijacked connection for attach)."""
from __future__ import annotations

import asyncio
import json

from aiohttp import web

from pouch.errtypes import InvalidArgument

from ..logger import jsonfile
from ..mgr.container import ContainerManager
from ..mgr.container_model import summary_json
from .app import json_response, qbool, qfilters, qint, read_json
from .face import face
from .hijack import frame, hijack
from .validate import check_create_body


# A stop/restart answers within t seconds plus the SIGKILL grace: no request waits for ever.
STOP_TIMEOUT_MAX = 3600
CRI_LABEL = "io.kubernetes.cri.type"  # `ps --filter label=io.kubernetes.cri.type[=...]` lists CRI pods too


def routes(mgr: ContainerManager, stats, cri_containers=None) -> list[tuple[str, str, object]]:
    """``cri_containers``: a callable listing the CRI's containers (namespace k8s.io), shown by
    GET /containers/json only when a label filter names io.kubernetes.cri.type."""
    async def create(request: web.Request):
        body = await read_json(request)
        check_create_body(body)
        c = await mgr.create(body, request.query.get("name"))
        return json_response(face(request).container_created(c), 201)

    async def list_(request: web.Request):
        filters, show_all, limit = qfilters(request), qbool(request, "all"), qint(request, "limit", -1)
        found = mgr.list(filters, all=show_all, limit=limit)
        if cri_containers is not None and any(
                f.split("=", 1)[0] == CRI_LABEL for f in filters.get("label", [])):
            found = sorted(found + cri_containers(filters, all=show_all, limit=limit),
                           key=lambda c: c.meta["Created"], reverse=True)
            found = found[:limit] if limit and limit > 0 else found
        view = face(request).container_summary
        return web.Response(text="[" + ", ".join(summary_json(c, view) for c in found) + "]",
                            content_type="application/json")

    async def inspect(request: web.Request):
        return json_response(face(request).container_inspect(mgr.get(request.match_info["id"]).inspect()))

    async def start(request: web.Request):
        if request.query.get("checkpoint"):  # Pouch: restore from a CRIU checkpoint
            from .checkpoints import start_from_checkpoint
            await start_from_checkpoint(mgr.checkpoints, mgr, request.match_info["id"],
                                        request.query["checkpoint"], request.query.get("checkpoint-dir")
                                        or request.query.get("checkpointdir"))
            return web.Response(status=204)
        await mgr.start(request.match_info["id"])
        return web.Response(status=204)

    async def stop(request: web.Request):
        await mgr.stop(request.match_info["id"], qint(request, "t", lo=0, hi=STOP_TIMEOUT_MAX))
        return web.Response(status=204)

    async def restart(request: web.Request):
        await mgr.restart(request.match_info["id"], qint(request, "t", lo=0, hi=STOP_TIMEOUT_MAX))
        return web.Response(status=204)

    async def kill(request: web.Request):
        await mgr.kill(request.match_info["id"], request.query.get("signal") or None)
        return web.Response(status=204)

    async def remove(request: web.Request):
        await mgr.remove(request.match_info["id"], qbool(request, "force"), qbool(request, "v"))
        return web.Response(status=204)

    async def wait(request: web.Request):
        c = mgr.get(request.match_info["id"])
        cond = request.query.get("condition", "not-running")
        fut = asyncio.ensure_future(mgr.wait(c.id, cond))
        await asyncio.sleep(0)
        # headers first: the client knows the wait is registered before it starts the container
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            code = await fut
        except asyncio.CancelledError:
            fut.cancel()
            raise
        await resp.write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")
        await resp.write_eof()
        return resp

    async def pause(request: web.Request):
        await mgr.pause(request.match_info["id"])
        return web.Response(status=204)

    async def unpause(request: web.Request):
        await mgr.unpause(request.match_info["id"])
        return web.Response(status=204)

    async def rename(request: web.Request):
        await mgr.rename(request.match_info["id"], request.query.get("name", ""))
        return web.Response(status=204)

    async def update(request: web.Request):
        body = await read_json(request)
        warnings = await mgr.update(request.match_info["id"], body)
        return json_response({"Warnings": warnings})

    async def resize(request: web.Request):
        await mgr.resize(request.match_info["id"], qint(request, "h", 0), qint(request, "w", 0))
        return web.Response(status=200)

    async def top(request: web.Request):
        return json_response(await mgr.top(request.match_info["id"], request.query.get("ps_args") or ""))

    async def logs(request: web.Request):
        tail_s = request.query.get("tail", "all")
        tty, chunks = mgr.logs(request.match_info["id"], stdout=qbool(request, "stdout"),
                               stderr=qbool(request, "stderr"),
                               since=_time_param(request.query.get("since")),
                               until=_time_param(request.query.get("until")),
                               tail=-1 if tail_s in ("all", "") else _int(tail_s, "tail"),
                               timestamps=qbool(request, "timestamps"), follow=qbool(request, "follow"),
                               details=qbool(request, "details"))
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": "application/vnd.docker.raw-stream" if tty
            else "application/vnd.docker.multiplexed-stream"})
        await resp.prepare(request)
        async for stream, data in chunks:
            await resp.write(data if tty else frame(stream, data))
        await resp.write_eof()
        return resp

    async def attach(request: web.Request):
        await mgr.attach(request.match_info["id"], lambda tty: hijack(request, multiplexed=not tty),
                         stdin=qbool(request, "stdin"), stdout=qbool(request, "stdout"),
                         stderr=qbool(request, "stderr"), logs=qbool(request, "logs"),
                         stream=qbool(request, "stream", True), detach_keys=request.query.get("detachKeys"))
        return web.Response(status=200)

    async def stats_(request: web.Request):
        c = mgr.get(request.match_info["id"])
        stream = qbool(request, "stream", True) and not qbool(request, "one-shot")
        if not stream:
            return json_response(await stats.snapshot(c))
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        while c.running:
            await resp.write(json.dumps(await stats.snapshot(c)).encode() + b"\n")
            await asyncio.sleep(1)
        await resp.write_eof()
        return resp

    async def upgrade_(request: web.Request):
        body = await read_json(request)
        if not isinstance(body, dict):
            raise InvalidArgument("upgrade body must be a JSON object")
        await mgr.upgrade(request.match_info["id"], body.get("Image") or "", _str_list(body.get("Cmd"), "Cmd"),
                          _str_list(body.get("Entrypoint"), "Entrypoint"))
        return web.Response(status=200)

    async def changes(request: web.Request):
        return json_response(await mgr.changes(request.match_info["id"]))

    return [
        ("POST", "/containers/create", create),
        ("GET", "/containers/json", list_),
        ("GET", "/containers/{id}/json", inspect),
        ("POST", "/containers/{id}/start", start),
        ("POST", "/containers/{id}/stop", stop),
        ("POST", "/containers/{id}/restart", restart),
        ("POST", "/containers/{id}/kill", kill),
        ("DELETE", "/containers/{id}", remove),
        ("POST", "/containers/{id}/wait", wait),
        ("POST", "/containers/{id}/pause", pause),
        ("POST", "/containers/{id}/unpause", unpause),
        ("POST", "/containers/{id}/rename", rename),
        ("POST", "/containers/{id}/update", update),
        ("POST", "/containers/{id}/resize", resize),
        ("GET", "/containers/{id}/top", top),
        ("GET", "/containers/{id}/changes", changes),
        ("POST", "/containers/{id}/upgrade", upgrade_),
        ("GET", "/containers/{id}/logs", logs),
        ("POST", "/containers/{id}/attach", attach),
        ("GET", "/containers/{id}/stats", stats_),
    ]


def _int(v: str, name: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {v!r}") from None


def _time_param(v: str | None) -> int:
    """Docker's since/until: unix seconds (with fraction) or RFC3339 -> ns (0 = unset)."""
    if not v:
        return 0
    sec, dot, frac = v.partition(".")
    if sec.lstrip("-").isdigit() and (not dot or frac.isdigit()):
        # exact: a float would round "seconds.nanoseconds" by a few hundred ns
        return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
    try:
        return jsonfile.parse_time(v)
    except ValueError:
        raise InvalidArgument(f"invalid time value {v!r}") from None


def _str_list(v, what: str) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidArgument(f"{what} must be a list of strings")
    return v

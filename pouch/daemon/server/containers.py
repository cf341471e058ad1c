"""Container routes (the container bridge): HTTP <-> ContainerManager calls."""
from __future__ import annotations

import asyncio
import json
import os

from aiohttp import web

from pouch.errtypes import Conflict, InvalidArgument

from ..logger import jsonfile
from ..mgr.changes import container_changes
from ..mgr.container import ContainerManager
from ..mgr.upgrade import upgrade
from .app import json_response, qbool, qfilters, qint, read_json
from .hijack import DetachScanner, detach_sequence, frame, hijack
from .validate import check_create_body


def routes(mgr: ContainerManager, stats) -> list[tuple[str, str, object]]:
    async def create(request: web.Request):
        body = await read_json(request)
        check_create_body(body)
        c = await mgr.create(body, request.query.get("name"))
        return json_response({"Id": c.id, "Warnings": c.warnings}, 201)

    async def list_(request: web.Request):
        filters = qfilters(request)
        show_all = qbool(request, "all")
        limit = qint(request, "limit", -1)
        out = []
        for c in mgr.list():
            if not show_all and not c.running and "status" not in filters and limit in (-1, 0, None):
                continue
            if not _match(c, filters):
                continue
            out.append(c.summary())
        if limit and limit > 0:
            out = out[:limit]
        return json_response(out)

    async def inspect(request: web.Request):
        return json_response(mgr.get(request.match_info["id"]).inspect())

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
        await mgr.stop(request.match_info["id"], qint(request, "t"))
        return web.Response(status=204)

    async def restart(request: web.Request):
        await mgr.restart(request.match_info["id"], qint(request, "t"))
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
        c = mgr.get(request.match_info["id"])
        h, w = qint(request, "h", 0), qint(request, "w", 0)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        await mgr.ctrd.task_resize(c.id, w, h)
        return web.Response(status=200)

    async def top(request: web.Request):
        c = mgr.get(request.match_info["id"])
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        pids = set(await mgr.ctrd.task_pids(c.id))
        ps_args = request.query.get("ps_args") or "-ef"
        proc = await asyncio.create_subprocess_exec(
            "ps", *ps_args.split(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode:
            raise InvalidArgument(f"ps: {err.decode().strip()}")
        lines = out.decode().splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise InvalidArgument("Couldn't find PID field in ps output")
        pi = titles.index("PID")
        procs = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > pi and fields[pi].isdigit() and int(fields[pi]) in pids:
                procs.append(fields)
        return json_response({"Titles": titles, "Processes": procs})

    async def logs(request: web.Request):
        c = mgr.get(request.match_info["id"])
        if c.host_config["LogConfig"]["Type"] != "json-file":
            raise InvalidArgument("configured logging driver does not support reading")
        want = {s for s in ("stdout", "stderr") if qbool(request, s)}
        if not want:
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        since = _time_param(request.query.get("since"))
        until = _time_param(request.query.get("until"))
        tail_s = request.query.get("tail", "all")
        tail = -1 if tail_s in ("all", "") else _int(tail_s, "tail")
        ts = qbool(request, "timestamps")
        follow = qbool(request, "follow")
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": "application/vnd.docker.raw-stream" if c.tty
            else "application/vnd.docker.multiplexed-stream"})
        await resp.prepare(request)
        path = c.meta["LogPath"]

        async def emit(e: dict) -> None:
            if e.get("stream") not in want:
                return
            data = e["log"].encode()
            if ts:
                data = e["time"].encode() + b" " + data
            await resp.write(data if c.tty else frame(e["stream"], data))

        entries = await asyncio.to_thread(jsonfile.read_entries, path, since, until, tail)
        for e in entries:
            await emit(e)
        if follow and not until:
            offset = os.path.getsize(path) if os.path.exists(path) else 0
            async for e in jsonfile.follow(path, c.logger, offset, lambda: c.running):
                await emit(e)
        await resp.write_eof()
        return resp

    async def attach(request: web.Request):
        c = mgr.get(request.match_info["id"])
        use_in = qbool(request, "stdin") and bool(c.config.get("OpenStdin"))
        want = {s for s in ("stdout", "stderr") if qbool(request, s)}
        keys = detach_sequence(request.query.get("detachKeys"))
        if qbool(request, "logs") and c.meta.get("LogPath") and os.path.exists(c.meta["LogPath"]):
            backlog = await asyncio.to_thread(jsonfile.read_entries, c.meta["LogPath"])
        else:
            backlog = []
        q = asyncio.Queue()
        if qbool(request, "stream", True):
            c.attached.add(q)
        h = await hijack(request, multiplexed=not c.tty)
        for e in backlog:
            if e["stream"] in want:
                h.write(e["stream"], e["log"].encode())
        pump = asyncio.ensure_future(_stdin_pump(c, h, keys, mgr.ctrd)) if use_in else None
        try:
            if qbool(request, "stream", True):
                while True:
                    waiters = [asyncio.ensure_future(q.get())]
                    if pump:
                        waiters.append(pump)
                    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                    if pump in done and pump.result() == "detach":
                        waiters[0].cancel()
                        break
                    if waiters[0] not in done:
                        waiters[0].cancel()
                        if pump in done:
                            pump = None
                        continue
                    item = waiters[0].result()
                    if item is None:
                        break
                    stream, data = item
                    if stream in want:
                        h.write(stream, data)
                        await h.drain()
        finally:
            c.attached.discard(q)
            if pump and not pump.done():
                pump.cancel()
            h.close()
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
        await upgrade(mgr, request.match_info["id"], body.get("Image") or "", _str_list(body.get("Cmd"), "Cmd"),
                      _str_list(body.get("Entrypoint"), "Entrypoint"))
        return web.Response(status=200)

    async def changes(request: web.Request):
        c = mgr.get(request.match_info["id"])
        return json_response(await container_changes(mgr.ctrd, c.id))

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


async def _stdin_pump(c, h, keys: bytes, ctrd) -> str:
    """Client -> container stdin; returns 'eof' or 'detach'.

    On EOF (StdinOnce) both writers of the stdin FIFO must go: ours, and the
    one the shim keeps open until it is told CloseIO.
    """
    scanner = DetachScanner(keys)
    while True:
        data = await h.input.get()
        if data is None:
            if c.config.get("StdinOnce"):
                await c.started.wait()
                # CloseIO only reaches a task that exists: a client may send
                # stdin and EOF before the container is started (docker run -i)
                for _ in range(3000):
                    if c.running or c.io is None:
                        break
                    await asyncio.sleep(0.01)
                if c.io is not None:
                    c.io.close_stdin()
                    try:
                        await ctrd.task_close_stdin(c.id)
                    except Exception:  # the task may already be gone
                        pass
            return "eof"
        data, detached = scanner.feed(data)
        if detached:
            return "detach"
        if data:
            await c.started.wait()
            if c.io is not None:
                await c.io.write_stdin(data)


def _match(c, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "status":
            ok = c.status in values
        elif key == "name":
            ok = any(v.lstrip("/") in c.name for v in values)
        elif key == "id":
            ok = any(c.id.startswith(v) for v in values)
        elif key == "label":
            labels = c.config.get("Labels") or {}
            ok = all((labels.get(v.split("=", 1)[0]) == v.split("=", 1)[1]) if "=" in v else v in labels
                     for v in values)
        elif key == "ancestor":
            ok = any(v in (c.config.get("Image"), c.meta.get("Image")) or c.meta.get("Image", "")[7:].startswith(v)
                     for v in values)
        elif key == "exited":
            ok = c.status == "exited" and str(c.state.get("ExitCode")) in values
        elif key == "runtime":
            ok = c.host_config.get("Runtime") in values
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
        if not ok:
            return False
    return True


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

"""Checkpoint routes (Pouch): create, list and delete a container's CRIU checkpoints, and
``POST /containers/{id}/start?checkpoint=`` restoring one."""
from __future__ import annotations

from aiohttp import web

from .app import json_response, read_json


def routes(checkpoints, containers) -> list[tuple[str, str, object]]:
    async def create(request: web.Request):
        body = await read_json(request)
        await checkpoints.create(request.match_info["id"], body)
        return web.Response(status=201)

    async def list_(request: web.Request):
        names = await checkpoints.list(request.match_info["id"],
                                       request.query.get("checkpointdir") or request.query.get("dir"))
        return json_response(names)

    async def delete(request: web.Request):
        await checkpoints.delete(request.match_info["id"], request.match_info["name"],
                                 request.query.get("dir") or request.query.get("checkpointdir"))
        return web.Response(status=204)

    return [
        ("POST", "/containers/{id}/checkpoints", create),
        ("GET", "/containers/{id}/checkpoints", list_),
        ("DELETE", "/containers/{id}/checkpoints/{name}", delete),
    ]


async def start_from_checkpoint(checkpoints, containers, ref: str, name: str, checkpoint_dir: str | None):
    """``start --checkpoint NAME``: the container's task restored from that CRIU image."""
    from pouch.errtypes import NotModified
    c = containers.get(ref)
    if c.running:
        raise NotModified("container already started")
    c.restore_checkpoint = await checkpoints.restore_image(c, name, checkpoint_dir)
    try:
        await containers.start(c.id)
    finally:
        c.restore_checkpoint = None

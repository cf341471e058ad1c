"""Volume routes (the volume bridge): create, list, inspect, remove, prune."""
from __future__ import annotations

from aiohttp import web

from pouch.volume.manager import VolumeManager

from .app import json_response, qbool, qfilters, read_json
from .validate import field, str_map


def routes(volumes: VolumeManager) -> list[tuple[str, str, object]]:
    async def create(request: web.Request):
        body = await read_json(request, required=False)
        v = volumes.create(field(body, "Name", str) or None, field(body, "Driver", str) or "local",
                           str_map(body, "DriverOpts"), str_map(body, "Labels"))
        return json_response(volumes.inspect(v.name), 201)

    async def list_(request: web.Request):
        vols = [volumes.inspect(v.name) for v in volumes.list(qfilters(request))]
        return json_response({"Volumes": vols, "Warnings": []})

    async def inspect(request: web.Request):
        return json_response(volumes.inspect(request.match_info["name"]))

    async def remove(request: web.Request):
        volumes.remove(request.match_info["name"], qbool(request, "force"))
        return web.Response(status=204)

    async def prune(request: web.Request):
        names, freed = volumes.prune(qfilters(request))
        return json_response({"VolumesDeleted": names, "SpaceReclaimed": freed})

    return [
        ("POST", "/volumes/create", create),
        ("GET", "/volumes", list_),
        ("POST", "/volumes/prune", prune),
        ("GET", "/volumes/{name}", inspect),
        ("DELETE", "/volumes/{name}", remove),
    ]

"""Network routes (the network bridge): create, list, inspect, remove, prune, connect, disconnect."""
from __future__ import annotations

from aiohttp import web

from pouch.errtypes import InvalidArgument
from pouch.network.manager import NetworkManager

from .app import json_response, qfilters, read_json


def routes(networks: NetworkManager, containers) -> list[tuple[str, str, object]]:
    async def create(request: web.Request):
        body = await read_json(request)
        name = body.get("Name")
        if not name:
            raise InvalidArgument("network name is required")
        ipam = ((body.get("IPAM") or {}).get("Config") or [{}])
        cfg = ipam[0] if ipam else {}
        net = await networks.create(name, body.get("Driver") or "bridge", cfg.get("Subnet") or "",
                                    cfg.get("Gateway") or "", cfg.get("IPRange") or "",
                                    body.get("Options") or {}, body.get("Labels") or {},
                                    bool(body.get("Internal")))
        return json_response({"Id": net.id, "Warning": ""}, 201)

    async def list_(request: web.Request):
        return json_response([networks.inspect(n.id) for n in networks.list(qfilters(request))])

    async def inspect(request: web.Request):
        return json_response(networks.inspect(request.match_info["id"]))

    async def remove(request: web.Request):
        await networks.remove(request.match_info["id"])
        return web.Response(status=204)

    async def prune(request: web.Request):
        return json_response({"NetworksDeleted": await networks.prune(qfilters(request))})

    async def connect(request: web.Request):
        body = await read_json(request)
        ep_cfg = body.get("EndpointConfig") or {}
        await containers.connect(body.get("Container") or "", request.match_info["id"],
                                 list(ep_cfg.get("Aliases") or []),
                                 (ep_cfg.get("IPAMConfig") or {}).get("IPv4Address") or "")
        return web.Response(status=200)

    async def disconnect(request: web.Request):
        body = await read_json(request)
        await containers.disconnect(body.get("Container") or "", request.match_info["id"])
        return web.Response(status=200)

    return [
        ("POST", "/networks/create", create),
        ("GET", "/networks", list_),
        ("POST", "/networks/prune", prune),
        ("GET", "/networks/{id}", inspect),
        ("DELETE", "/networks/{id}", remove),
        ("POST", "/networks/{id}/connect", connect),
        ("POST", "/networks/{id}/disconnect", disconnect),
    ]

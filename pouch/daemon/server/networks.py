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
        ipam_body = body.get("IPAM") or {}
        if not isinstance(ipam_body, dict) or not isinstance(ipam_body.get("Config") or [], list) \
                or not isinstance(ipam_body.get("Options") or {}, dict):
            raise InvalidArgument("IPAM must be an object with a Config list and an Options map")
        v4, v6 = _split_ipam(ipam_body.get("Config") or [])
        net = await networks.create(name, body.get("Driver") or "bridge", v4.get("Subnet") or "",
                                    v4.get("Gateway") or "", v4.get("IPRange") or "",
                                    body.get("Options") or {}, body.get("Labels") or {},
                                    bool(body.get("Internal")), enable_ipv6=bool(body.get("EnableIPv6")),
                                    subnet6=v6.get("Subnet") or "", gateway6=v6.get("Gateway") or "",
                                    ipam_options={str(k): str(v) for k, v in (ipam_body.get("Options") or {}).items()})
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


def _split_ipam(configs: list) -> tuple[dict, dict]:
    """IPAM.Config entries -> (the IPv4 one, the IPv6 one); at most one of each."""
    import ipaddress
    v4: dict = {}
    v6: dict = {}
    for cfg in configs:
        if not isinstance(cfg, dict):
            raise InvalidArgument("IPAM.Config entries must be objects")
        subnet = cfg.get("Subnet") or ""
        try:
            version = ipaddress.ip_network(subnet, strict=False).version if subnet else 4
        except ValueError:
            raise InvalidArgument(f"invalid subnet {subnet!r}") from None
        slot = v6 if version == 6 else v4
        if slot:
            raise InvalidArgument(f"more than one IPv{version} subnet given")
        slot.update(cfg)
    return v4, v6

"""Network routes (the network bridge): create, list, inspect, remove, prune, connect, disconnect."""
from __future__ import annotations

from aiohttp import web

from pouch.errtypes import InvalidArgument
from pouch.network.manager import NetworkManager

from .app import json_response, qfilters, read_json
from .validate import field, str_map


def _container_ref(body: dict) -> str:
    ref = field(body, "Container", str)
    if not ref:
        raise InvalidArgument("Container (a container name or id) is required")
    return ref


def routes(networks: NetworkManager, containers) -> list[tuple[str, str, object]]:
    async def create(request: web.Request):
        body = await read_json(request)
        name = field(body, "Name", str)
        if not name:
            raise InvalidArgument("network name is required")
        ipam_body = field(body, "IPAM", dict, {})
        v4, v6 = _split_ipam(field(ipam_body, "Config", list, [], "IPAM"))
        for cfg in (v4, v6):
            for key in ("Subnet", "Gateway", "IPRange"):
                field(cfg, key, str, "", "IPAM.Config")
        net = await networks.create(name, field(body, "Driver", str) or "bridge", v4.get("Subnet") or "",
                                    v4.get("Gateway") or "", v4.get("IPRange") or "",
                                    str_map(body, "Options"), str_map(body, "Labels"),
                                    bool(field(body, "Internal", bool)),
                                    enable_ipv6=bool(field(body, "EnableIPv6", bool)),
                                    subnet6=v6.get("Subnet") or "", gateway6=v6.get("Gateway") or "",
                                    ipam_options=str_map(ipam_body, "Options", "IPAM"))
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
        ep_cfg = field(body, "EndpointConfig", dict, {})
        aliases = field(ep_cfg, "Aliases", list, [], "EndpointConfig")
        if not all(isinstance(a, str) for a in aliases):
            raise InvalidArgument("invalid EndpointConfig.Aliases: expected a list of strings")
        ip = field(field(ep_cfg, "IPAMConfig", dict, {}, "EndpointConfig"), "IPv4Address", str, "",
                   "EndpointConfig.IPAMConfig")
        await containers.connect(_container_ref(body), request.match_info["id"], list(aliases), ip)
        return web.Response(status=200)

    async def disconnect(request: web.Request):
        body = await read_json(request)
        await containers.disconnect(_container_ref(body), request.match_info["id"])
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

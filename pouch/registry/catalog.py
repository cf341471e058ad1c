"""Listing a repository's tags and searching a registry (``/v1/search`` if offered, else ``_catalog``)."""

from __future__ import annotations

from .errors import NotFound, RegistryError
from .reference import Reference
from .transport import Endpoint, Transport, raise_for_status

PAGE = 1000
MAX_PAGES = 100


async def _paged(transport: Transport, ep: Endpoint, path: str, scope: str, key: str) -> list[str]:
    out: list[str] = []
    url = f"{path}?n={PAGE}"
    for _ in range(MAX_PAGES):
        resp = await transport.request(ep, "GET", url, scope)
        await raise_for_status(resp, path)
        async with resp:
            body = await resp.json(content_type=None)
            nxt = resp.links.get("next", {}).get("url")
        out.extend(body.get(key) or [])
        if not nxt:
            break
        url = str(nxt)
    return out


async def list_tags(transport: Transport, ep: Endpoint, ref: Reference) -> list[str]:
    return await _paged(transport, ep, f"/v2/{ref.path}/tags/list", f"repository:{ref.path}:pull", "tags")


async def search(transport: Transport, ep: Endpoint, term: str, limit: int = 25) -> list[dict]:
    """Docker-style search results: name, description, star_count, is_official, is_automated."""
    resp = await transport.request(ep, "GET", "/v1/search", "", params={"q": term, "n": str(limit)})
    if resp.status == 200:
        async with resp:
            body = await resp.json(content_type=None)
        return list(body.get("results") or [])[:limit]
    resp.release()
    try:
        names = await _paged(transport, ep, "/v2/_catalog", "registry:catalog:*", "repositories")
    except NotFound:
        raise RegistryError(f"{ep.host}: registry offers neither /v1/search nor /v2/_catalog") from None
    hits = [n for n in names if term.lower() in n.lower()]
    return [{"name": n, "description": "", "star_count": 0, "is_official": False, "is_automated": False}
            for n in hits[:limit]]

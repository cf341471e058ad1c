"""GET /metrics: Prometheus text (pouch.daemon.metrics), as PouchContainer serves it."""
from __future__ import annotations

from aiohttp import web


def routes(metrics) -> list[tuple[str, str, object]]:
    async def expose(request: web.Request):
        await metrics.refresh()
        body, ctype = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": ctype})

    return [("GET", "/metrics", expose)]

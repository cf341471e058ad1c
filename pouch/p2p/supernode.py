"""The supernode: schedules piece exchange between peers and keeps a CDN copy of each blob.

HTTP API (JSON):
  POST /tasks                         {"digest", "size", "url", "headers"} -> {"pieceSize", "pieces"};
                                      the first registration starts the CDN download from ``url``
  GET  /tasks/{digest}/pieces/{i}     -> {"sources": [base URLs]}: peers holding piece i first
                                      (shuffled), the supernode itself last; waits until someone has it
  POST /tasks/{digest}/pieces/{i}     {"peer": base URL}: that peer now holds piece i
  GET  /pieces/{digest}/{i}           the piece's bytes from the CDN copy
  GET  /stats                         {"originBytes", "piecesServed", "tasks"}

    python -m pouch.p2p.supernode --listen 127.0.0.1:8002 --cache /var/cache/pouch-supernode
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import random

import aiohttp
from aiohttp import web

from .cache import evict, touch
from .pieces import PIECE_SIZE, piece_count, piece_range

log = logging.getLogger("pouch.p2p.supernode")
WAIT_S = 120


class Task:
    def __init__(self, digest: str, size: int, path: str) -> None:
        self.digest, self.size, self.path = digest, size, path
        self.pieces = piece_count(size)
        self.cdn_has = 0                          # pieces [0, cdn_has) are in the CDN copy
        self.holders: dict[int, set[str]] = {}
        self.changed = asyncio.Condition()
        self.error: str | None = None
        self.download: asyncio.Task | None = None

    def sources(self, i: int, me: str) -> list[str]:
        peers = list(self.holders.get(i, ()))
        random.shuffle(peers)
        return peers + ([me] if i < self.cdn_has else [])

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


class Supernode:
    def __init__(self, cache: str, public_url: str, cache_size: int = 20 << 30) -> None:
        self.cache = cache
        self.cache_size = cache_size
        self.me = public_url.rstrip("/")
        self.tasks: dict[str, Task] = {}
        self.origin_bytes = 0
        self.pieces_served = 0
        self.session: aiohttp.ClientSession | None = None
        os.makedirs(cache, exist_ok=True)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/tasks", self.register)
        app.router.add_get("/tasks/{digest}/pieces/{i}", self.sources)
        app.router.add_post("/tasks/{digest}/pieces/{i}", self.report)
        app.router.add_get("/pieces/{digest}/{i}", self.piece)
        app.router.add_get("/stats", self.stats)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=60))

    async def _stop(self, _app) -> None:
        for t in self.tasks.values():
            if t.download:
                t.download.cancel()
        await self.session.close()

    def _task(self, request: web.Request) -> tuple[Task, int]:
        t = self.tasks.get(request.match_info["digest"])
        if t is None:
            raise web.HTTPNotFound(text="no such task")
        i = int(request.match_info["i"])
        if not 0 <= i < t.pieces:
            raise web.HTTPBadRequest(text=f"piece {i} out of range")
        return t, i

    async def register(self, request: web.Request) -> web.Response:
        body = await request.json()
        digest, size = body["digest"], int(body["size"])
        t = self.tasks.get(digest)
        if t is None or t.error:
            t = Task(digest, size, os.path.join(self.cache, digest.replace(":", "-")))
            self.tasks[digest] = t
            t.download = asyncio.ensure_future(self._cdn(t, body["url"], body.get("headers") or {}))
        return web.json_response({"pieceSize": PIECE_SIZE, "pieces": t.pieces})

    async def _cdn(self, t: Task, url: str, headers: dict) -> None:
        """Download the blob from the registry once, piece by piece, verifying its digest."""
        hasher = hashlib.sha256()
        try:
            async with self.session.get(url, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"registry answered {resp.status} for {t.digest}")
                done = 0
                with open(t.path + ".part", "wb") as f:
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        f.write(chunk)
                        hasher.update(chunk)
                        done += len(chunk)
                        self.origin_bytes += len(chunk)
                        have = t.pieces if done >= t.size else done // PIECE_SIZE
                        if have > t.cdn_has:
                            f.flush()
                            t.cdn_has = have
                            await t.notify()
            if done != t.size or "sha256:" + hasher.hexdigest() != t.digest:
                raise RuntimeError(f"blob {t.digest} from the registry does not match its digest or size")
            os.replace(t.path + ".part", t.path)
            self._evict()
        except Exception as e:
            log.warning("CDN download of %s failed: %s", t.digest, e)
            t.error = str(e)
            t.cdn_has = 0
            await t.notify()

    def _evict(self) -> None:
        """Keep the CDN copies under --cache-size; an evicted blob is fetched again if asked for."""
        for name in evict(self.cache, self.cache_size):
            digest = name.replace("-", ":", 1)
            t = self.tasks.pop(digest, None)
            log.info("evicted %s from the CDN cache", digest)
            if t is not None and t.download and not t.download.done():
                t.download.cancel()

    def _path(self, t: Task) -> str:
        return t.path if os.path.exists(t.path) else t.path + ".part"

    async def sources(self, request: web.Request) -> web.Response:
        t, i = self._task(request)
        async with t.changed:
            await asyncio.wait_for(t.changed.wait_for(lambda: t.sources(i, self.me) or t.error), WAIT_S)
        src = t.sources(i, self.me)
        if not src:
            raise web.HTTPBadGateway(text=t.error or "no source")
        return web.json_response({"sources": src})

    async def report(self, request: web.Request) -> web.Response:
        t, i = self._task(request)
        peer = (await request.json())["peer"].rstrip("/")
        t.holders.setdefault(i, set()).add(peer)
        await t.notify()
        return web.json_response({})

    async def piece(self, request: web.Request) -> web.StreamResponse:
        t, i = self._task(request)
        if i >= t.cdn_has:
            raise web.HTTPNotFound(text="not in the CDN copy yet")
        start, end = piece_range(i, t.size)
        touch(self._path(t))
        with open(self._path(t), "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        self.pieces_served += 1
        return web.Response(body=data, content_type="application/octet-stream")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"originBytes": self.origin_bytes, "piecesServed": self.pieces_served,
                                  "tasks": len(self.tasks)})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="pouch-supernode", description="P2P scheduler and CDN")
    ap.add_argument("--listen", default="127.0.0.1:8002", help="host:port")
    ap.add_argument("--advertise", help="base URL peers use to reach this supernode (default http://LISTEN)")
    ap.add_argument("--cache", default="/var/cache/pouch-supernode")
    ap.add_argument("--cache-size", type=int, default=20 << 30, help="bytes of blobs to keep (LRU)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, _, port = a.listen.rpartition(":")
    node = Supernode(a.cache, a.advertise or f"http://{a.listen}", a.cache_size)
    web.run_app(node.app(), host=host, port=int(port), access_log=None, print=None)


if __name__ == "__main__":
    main()

"""The peer (Dragonfly's dfdaemon): pouchd's registry mirror on each host, sharing pieces.

As a mirror (``/v2/...``, the registry named by ``?ns=host[:port]``): manifests and everything
else but blob GETs are proxied to the registry with the client's headers (so auth challenges and
tokens pass through); a blob GET is answered from the local copy, or assembled piece by piece from
the sources the supernode names (other peers first), streamed to the client as it comes, kept,
and offered back to the supernode.  The whole blob's digest is checked before it is kept.
For other peers: ``GET /pieces/{digest}/{i}``.  ``GET /stats`` counts where pieces came from.

    python -m pouch.p2p.peer --listen 127.0.0.1:65001 --supernode http://sn:8002 \\
        --cache /var/cache/pouch-peer [--insecure-registries host:port]
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os

import aiohttp
from aiohttp import web

from .cache import evict, touch
from .pieces import piece_count, piece_range

log = logging.getLogger("pouch.p2p.peer")
PASS_HEADERS = ("Accept", "Authorization", "Range", "User-Agent")
BACK_HEADERS = ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version",
                "WWW-Authenticate", "Location", "Content-Range")


class Peer:
    def __init__(self, supernode: str, public_url: str, cache: str, insecure: list[str],
                 cache_size: int = 10 << 30) -> None:
        self.supernode = supernode.rstrip("/")
        self.me = public_url.rstrip("/")
        self.cache = cache
        self.insecure = set(insecure)
        self.cache_size = cache_size
        self.have: dict[str, set[int]] = {}     # digest -> pieces held (complete blobs: all)
        self.sizes: dict[str, int] = {}
        self.stats_ = {"piecesFromPeers": 0, "piecesFromSupernode": 0, "piecesServed": 0, "blobsServed": 0}
        self.session: aiohttp.ClientSession | None = None
        os.makedirs(cache, exist_ok=True)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/pieces/{digest}/{i}", self.piece)
        app.router.add_get("/stats", self.stats)
        app.router.add_route("*", "/v2/{tail:.*}", self.mirror)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=120),
                                             auto_decompress=False)

    async def _stop(self, _app) -> None:
        await self.session.close()

    def _path(self, digest: str) -> str:
        return os.path.join(self.cache, digest.replace(":", "-"))

    def _upstream(self, request: web.Request) -> str:
        ns = request.query.get("ns", "")
        if not ns:
            raise web.HTTPBadRequest(text="the registry to mirror is named by ?ns=host[:port]")
        scheme = "http" if ns in self.insecure else "https"
        query = "&".join(f"{k}={v}" for k, v in request.query.items() if k != "ns")
        return f"{scheme}://{ns}{request.path}" + (f"?{query}" if query else "")

    async def mirror(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        parts = tail.split("/")
        if request.method == "GET" and len(parts) >= 3 and parts[-2] == "blobs":
            return await self.blob(request, parts[-1])
        if tail == "":
            return web.json_response({})
        return await self._proxy(request)

    async def _proxy(self, request: web.Request) -> web.Response:
        headers = {h: request.headers[h] for h in PASS_HEADERS if h in request.headers}
        async with self.session.request(request.method, self._upstream(request), headers=headers,
                                        data=await request.read() or None, allow_redirects=True) as up:
            body = await up.read()
            return web.Response(status=up.status, body=body,
                                headers={h: up.headers[h] for h in BACK_HEADERS if h in up.headers})

    async def blob(self, request: web.Request, digest: str) -> web.StreamResponse:
        url = self._upstream(request)
        headers = {h: request.headers[h] for h in ("Authorization",) if h in request.headers}
        path = self._path(digest)
        if os.path.exists(path):
            self.stats_["blobsServed"] += 1
            touch(path)
            return web.FileResponse(path, headers={"Docker-Content-Digest": digest})
        # the registry decides access and size; nothing is downloaded from it here
        async with self.session.head(url, headers=headers, allow_redirects=True) as head:
            if head.status != 200:
                return web.Response(status=head.status, headers={h: head.headers[h] for h in BACK_HEADERS
                                                                 if h in head.headers})
            size = int(head.headers["Content-Length"])
        async with self.session.post(f"{self.supernode}/tasks", json={
                "digest": digest, "size": size, "url": url, "headers": headers}) as r:
            r.raise_for_status()
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream",
                                                       "Content-Length": str(size),
                                                       "Docker-Content-Digest": digest})
        await resp.prepare(request)
        hasher = hashlib.sha256()
        self.sizes[digest] = size
        have = self.have.setdefault(digest, set())
        part = path + ".part"
        with open(part, "wb") as f:
            for i in range(piece_count(size)):
                data = await self._fetch_piece(digest, i, size)
                f.write(data)
                f.flush()  # other peers read the piece from this file
                hasher.update(data)
                have.add(i)
                await self._announce(digest, i)
                await resp.write(data)
        if "sha256:" + hasher.hexdigest() != digest:
            os.unlink(part)
            self.have.pop(digest, None)
            raise RuntimeError(f"blob {digest} assembled from pieces does not match its digest")
        os.replace(part, path)
        for name in evict(self.cache, self.cache_size, keep={os.path.basename(path)}):
            self.have.pop(name.replace("-", ":", 1), None)
        self.stats_["blobsServed"] += 1
        await resp.write_eof()
        return resp

    async def _fetch_piece(self, digest: str, i: int, size: int) -> bytes:
        start, end = piece_range(i, size)
        async with self.session.get(f"{self.supernode}/tasks/{digest}/pieces/{i}") as r:
            r.raise_for_status()
            sources = (await r.json())["sources"]
        for src in sources:
            if src == self.me:
                continue
            try:
                async with self.session.get(f"{src}/pieces/{digest}/{i}") as r:
                    if r.status != 200:
                        continue
                    data = await r.read()
            except aiohttp.ClientError:
                continue
            if len(data) == end - start:
                self.stats_["piecesFromSupernode" if src == self.supernode else "piecesFromPeers"] += 1
                return data
        raise RuntimeError(f"no source could give piece {i} of {digest}")

    async def _announce(self, digest: str, i: int) -> None:
        try:
            async with self.session.post(f"{self.supernode}/tasks/{digest}/pieces/{i}", json={"peer": self.me}):
                pass
        except aiohttp.ClientError as e:
            log.info("could not announce piece %d of %s: %s", i, digest, e)

    async def piece(self, request: web.Request) -> web.Response:
        digest, i = request.match_info["digest"], int(request.match_info["i"])
        path = self._path(digest)
        complete = os.path.exists(path)
        if not complete and i not in self.have.get(digest, ()):
            raise web.HTTPNotFound(text="piece not here")
        size = os.path.getsize(path) if complete else self.sizes[digest]
        start, end = piece_range(i, size)
        with open(path if complete else path + ".part", "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        self.stats_["piecesServed"] += 1
        return web.Response(body=data, content_type="application/octet-stream")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats_)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="pouch-peer", description="P2P peer and registry mirror for pouchd")
    ap.add_argument("--listen", default="127.0.0.1:65001", help="host:port")
    ap.add_argument("--advertise", help="base URL other peers use to reach this one (default http://LISTEN)")
    ap.add_argument("--supernode", required=True, help="base URL of the supernode")
    ap.add_argument("--cache", default="/var/cache/pouch-peer")
    ap.add_argument("--insecure-registries", action="append", default=[], help="host:port reached over plain http")
    ap.add_argument("--cache-size", type=int, default=10 << 30, help="bytes of blobs to keep (LRU)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, _, port = a.listen.rpartition(":")
    peer = Peer(a.supernode, a.advertise or f"http://{a.listen}", a.cache, a.insecure_registries, a.cache_size)
    web.run_app(peer.app(), host=host, port=int(port), access_log=None, print=None)


if __name__ == "__main__":
    main()

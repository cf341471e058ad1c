"""The supernode: tracker, origin seed and metainfo maker for each blob (Uber's Kraken's shape).

HTTP API (JSON, mutual TLS with the cluster CA unless started with --insecure-no-tls):
  POST /blobs                      {"registry", "repository", "digest", "relay"} -> {"torrent": base64
                                   metainfo, "seed": port}; the first request downloads the blob from
                                   the registry (only one named by --registry/--insecure-registry,
                                   with the supernode's own credentials), verifies it and seeds it.
                                   While it downloads, up to --relay callers that asked for a relay
                                   get the blob's bytes instead (application/octet-stream) as they
                                   arrive, check them against the digest and seed them; the others
                                   get white space every 2 s until the metainfo is ready
  POST /blobs/{digest}/peers       {"port"}: the caller (at its connection's address) holds or
                                   fetches the blob -> {"peers": [[host, port], ...]} (entries not
                                   renewed within PEER_TTL seconds expire)
  GET  /stats                      {"originBytes", "blobs", "failures"}

Requests never carry URLs, paths or registry credentials: names are checked (pouch.p2p.names)
and file names built from the checked digest.  The blobs it seeds and their metainfo live under
--cache and are seeded again (re-checked piece by piece) after a restart.

    python -m pouch.p2p.supernode --listen 0.0.0.0:8002 --swarm-listen 0.0.0.0:6881 \\
        --cache /var/cache/pouch-supernode --registry reg.example:5000 \\
        --p2p-ca ca.pem --p2p-cert sn.pem --p2p-key sn-key.pem
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import time

import aiohttp
from aiohttp import web

from pouch.registry.auth import Authenticator
from pouch.registry.credentials import CredentialStore
from pouch.registry.errors import RegistryError

from . import origin
from .cache import evict, touch
from .names import BadName, blob_name, check_registry, check_repository
from .swarm import Swarm, make_torrent
from .tls import ClusterTLS, add_args, from_args

log = logging.getLogger("pouch.p2p.supernode")
PEER_TTL = 60


class Partial:
    """A blob on its way from the registry: its ``.part`` file and how much of it is written."""

    def __init__(self) -> None:
        self.path, self.done, self.relays = "", 0, 0
        self._changed = asyncio.Event()

    def advance(self, path: str, done: int) -> None:
        self.path, self.done = path, done
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, timeout: float = 1) -> None:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass


class Supernode:
    def __init__(self, cache: str, swarm: Swarm, registries: dict[str, str], tls: ClusterTLS | None,
                 auth_config: str | None = None, cache_size: int = 20 << 30, relay_limit: int = 4) -> None:
        self.blobs_dir = os.path.join(cache, "blobs")
        self.meta_dir = os.path.join(cache, "metainfo")
        for d in (self.blobs_dir, self.meta_dir):
            os.makedirs(d, exist_ok=True)
        self.swarm = swarm
        self.registries = registries     # host:port -> "http" | "https"
        self.tls = tls
        self.creds = CredentialStore(auth_config) if auth_config else None
        self.cache_size = cache_size
        self.peers: dict[str, dict[tuple[str, int], float]] = {}   # blob name -> (host, port) -> seen
        self.inflight: dict[str, asyncio.Task] = {}
        self.partial: dict[str, Partial] = {}
        self.relay_limit = relay_limit
        self.stats_ = {"originBytes": 0, "failures": 0, "relays": 0}
        self.session: aiohttp.ClientSession | None = None
        self.auth: Authenticator | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[bad_names])
        app.router.add_post("/blobs", self.register)
        app.router.add_post("/blobs/{digest}/peers", self.announce)
        app.router.add_get("/stats", self.stats)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60),
                                             auto_decompress=False)
        self.auth = Authenticator(self.session, lambda host: self.creds.get(host) if self.creds else None,
                                  lambda url: None)
        self.swarm.start(asyncio.get_running_loop())
        self.restore()

    async def _stop(self, _app) -> None:
        for t in self.inflight.values():
            t.cancel()
        await self.session.close()
        self.swarm.close()

    def restore(self) -> None:
        """Seed again every blob whose metainfo survived (libtorrent re-checks its pieces)."""
        for fn in sorted(os.listdir(self.meta_dir)):
            name = fn.removesuffix(".torrent")
            if not fn.endswith(".torrent") or not os.path.exists(os.path.join(self.blobs_dir, name)):
                continue
            with open(os.path.join(self.meta_dir, fn), "rb") as f:
                self.swarm.add(name, f.read(), self.blobs_dir, seed=True)
            log.info("seeding %s again", name)

    async def register(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not isinstance(body, dict):
            raise BadName("want a JSON object")
        digest = str(body.get("digest", ""))
        name = blob_name(digest)
        repo = check_repository(str(body.get("repository", "")))
        registry = check_registry(str(body.get("registry", "")))
        if registry not in self.registries:
            raise web.HTTPForbidden(text=f"registry {registry} is not one this supernode serves")
        meta = os.path.join(self.meta_dir, name + ".torrent")
        if not (os.path.exists(meta) and os.path.exists(os.path.join(self.blobs_dir, name))):
            task = self.inflight.get(name)
            if task is None:
                self.partial[name] = Partial()
                task = self.inflight[name] = asyncio.ensure_future(self._seed(registry, repo, digest))
                task.add_done_callback(lambda _t: (self.inflight.pop(name, None), self.partial.pop(name, None)))
            part = self.partial.get(name)
            if body.get("relay") is True and part is not None and part.relays < self.relay_limit:
                return await self._relay(request, name, part, task)
            # the metainfo comes once the blob is downloaded and hashed: until then, a space every
            # few seconds (JSON allows leading white space) tells the caller we are still at it
            resp = None
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(task), 2)
                    break
                except TimeoutError:
                    if resp is None:
                        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
                        await resp.prepare(request)
                    await resp.write(b" ")
                except origin.OriginError as e:
                    self.stats_["failures"] += 1
                    if resp is None:
                        raise web.HTTPBadGateway(text=str(e)) from None
                    log.warning("%s: %s", digest, e)
                    return resp  # a body that is no JSON: the caller goes to the registry
            if resp is not None:
                await resp.write(self._answer(name, meta))
                await resp.write_eof()
                return resp
        return web.Response(body=self._answer(name, meta), content_type="application/json")

    def _answer(self, name: str, meta: str) -> bytes:
        touch(os.path.join(self.blobs_dir, name))
        with open(meta, "rb") as f:
            metainfo = f.read()
        self.swarm.add(name, metainfo, self.blobs_dir, seed=True)
        return json.dumps({"torrent": base64.b64encode(metainfo).decode(), "seed": self.swarm.port}).encode()

    async def _relay(self, request: web.Request, name: str, part: Partial, task: asyncio.Task) -> web.StreamResponse:
        """Stream the blob to the caller as it arrives from the registry (the first few callers
        while it downloads; they check its digest and seed it: the swarm does not wait for the
        whole blob to reach the origin before it starts)."""
        part.relays += 1
        self.stats_["relays"] += 1
        try:
            resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            await resp.prepare(request)
            sent, f = 0, None
            try:
                while True:
                    if f is None and part.path:
                        f = self._open(part.path, name)
                    if f is not None and part.done > sent:
                        data = f.read(min(part.done - sent, 1 << 20))
                        if data:
                            await resp.write(data)
                            sent += len(data)
                            continue
                    if task.done():
                        if task.cancelled() or task.exception() is not None:
                            return resp  # short: the caller goes to the registry
                        if f is None:
                            f = self._open("", name)
                            part.done = os.fstat(f.fileno()).st_size
                        if sent >= part.done:
                            break
                        continue
                    await part.wait()
            finally:
                if f is not None:
                    f.close()
            await resp.write_eof()
            return resp
        finally:
            part.relays -= 1

    def _open(self, part: str, name: str):
        """The blob's ``.part`` file, or the blob once renamed into place (closed by the caller)."""
        try:
            return open(part or os.path.join(self.blobs_dir, name), "rb")
        except FileNotFoundError:  # renamed into place: the download is complete
            return open(os.path.join(self.blobs_dir, name), "rb")

    async def _seed(self, registry: str, repo: str, digest: str) -> None:
        """Download the blob from its registry (our own credentials), verify it, make its metainfo."""
        name = blob_name(digest)
        url = f"{self.registries[registry]}://{registry}/v2/{repo}/blobs/{digest}"
        scope = f"repository:{repo}:pull"
        headers = {}
        cached = self.auth.cached_header(f"{self.registries[registry]}://{registry}", registry, scope)
        if cached:
            headers["Authorization"] = cached
        last = [0]
        part = self.partial[name]

        def progress(path: str, done: int) -> None:
            self.stats_["originBytes"] += done - last[0]
            last[0] = done
            part.advance(path, done)

        try:
            path = await origin.download(self.session, url, headers, digest, None, self.blobs_dir, progress)
        except origin.OriginError as e:
            if e.status != 401:
                raise
            async with self.session.head(url) as r:
                challenge = r.headers.get("WWW-Authenticate", "")
            try:
                headers["Authorization"] = await self.auth.answer(
                    f"{self.registries[registry]}://{registry}", registry, scope, challenge)
            except RegistryError as e2:
                raise origin.OriginError(f"the supernode may not read {repo}: {e2}", 401) from None
            path = await origin.download(self.session, url, headers, digest, None, self.blobs_dir, progress)
        part.advance(path, os.path.getsize(path))
        metainfo = await asyncio.get_running_loop().run_in_executor(None, make_torrent, path, self.tls)
        meta = os.path.join(self.meta_dir, name + ".torrent")
        with open(meta + ".tmp", "wb") as f:
            f.write(metainfo)
        os.replace(meta + ".tmp", meta)
        self._evict(keep=name)

    def _evict(self, keep: str) -> None:
        for gone in evict(self.blobs_dir, self.cache_size, keep={keep}):
            self.swarm.remove(gone)
            try:
                os.unlink(os.path.join(self.meta_dir, gone + ".torrent"))
            except FileNotFoundError:
                pass

    async def announce(self, request: web.Request) -> web.Response:
        name = blob_name(request.match_info["digest"])
        body = await request.json()
        port = body.get("port") if isinstance(body, dict) else None
        if not isinstance(port, int) or not 0 < port < 65536:
            raise BadName("want {\"port\": 1..65535}")
        now = time.monotonic()
        peers = self.peers.setdefault(name, {})
        for k in [k for k, seen in peers.items() if now - seen > PEER_TTL]:
            del peers[k]
        me = (request.remote, port)
        peers[me] = now
        return web.json_response({"peers": [list(k) for k in peers if k != me]})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({**self.stats_, "blobs": len(self.swarm.handles)})


@web.middleware
async def bad_names(request: web.Request, handler):
    """Ill-formed names and bodies are the caller's error: 400 with one line."""
    try:
        return await handler(request)
    except BadName as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    except ValueError as e:  # JSON that does not parse
        raise web.HTTPBadRequest(text=f"bad request body: {e}") from None


def registries_from_args(secure: list[str], insecure: list[str]) -> dict[str, str]:
    out = {check_registry(r): "https" for r in secure}
    out.update({check_registry(r): "http" for r in insecure})
    return out


def serve(app: web.Application, listen: str, tls: ClusterTLS | None) -> None:
    host, _, port = listen.rpartition(":")
    web.run_app(app, host=host.strip("[]"), port=int(port), access_log=None, print=None,
                ssl_context=tls.server() if tls else None)


def tls_or_exit(ap: argparse.ArgumentParser, a) -> ClusterTLS | None:
    try:
        tls = from_args(a.p2p_ca, a.p2p_cert, a.p2p_key)
    except ValueError as e:
        ap.error(str(e))
    if tls is None and not a.insecure_no_tls:
        ap.error("give --p2p-ca/--p2p-cert/--p2p-key (mutual TLS), or --insecure-no-tls to accept anyone")
    return tls


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="pouch-supernode", description="P2P tracker, origin seed and metainfo maker")
    ap.add_argument("--listen", default="127.0.0.1:8002", help="host:port of the API")
    ap.add_argument("--swarm-listen", default="0.0.0.0:6881", help="host:port of the seed (BitTorrent)")
    ap.add_argument("--cache", default="/var/cache/pouch-supernode")
    ap.add_argument("--cache-size", type=int, default=20 << 30, help="bytes of blobs to keep (LRU)")
    ap.add_argument("--registry", action="append", default=[], help="host:port of a registry to serve (https)")
    ap.add_argument("--insecure-registry", action="append", default=[], help="host:port of a registry over http")
    ap.add_argument("--auth-config", help="pouch/docker config.json with the supernode's own registry credentials")
    ap.add_argument("--upload-rate", type=int, default=0, help="bytes/s the seed may send (0: unlimited)")
    ap.add_argument("--relay", type=int, default=4,
                    help="peers per blob that get it streamed while the supernode downloads it (0: none)")
    add_args(ap)
    a = ap.parse_args(argv)
    tls = tls_or_exit(ap, a)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    swarm = Swarm(a.swarm_listen, tls, upload_rate=a.upload_rate)
    node = Supernode(a.cache, swarm, registries_from_args(a.registry, a.insecure_registry), tls,
                     a.auth_config, a.cache_size, a.relay)
    serve(node.app(), a.listen, tls)


if __name__ == "__main__":
    main()

"""The peer: pouchd's registry mirror on each host, fetching blobs from the swarm.

As a mirror (``/v2/...``, the registry named by ``?ns=host[:port]``, which must be one this peer
was told to serve): everything but blob GETs is proxied to the registry with the client's headers,
so ``GET /v2/`` answers what the registry answers (a 401 challenge included).  A blob GET first
asks the registry, with the client's own Authorization, whether this client may read the blob
(HEAD): only then is it served, from the local cache (re-verified), or from the swarm: the
supernode gives the blob's metainfo and the peers holding it, libtorrent fetches verified pieces
in order and the client receives them as they arrive.  Any P2P failure (supernode unreachable,
no seed, the time budget spent) sends the download straight to the registry, here in the peer,
with the client's credentials; those never leave this host.  One download per blob at a time;
concurrent requests for it share it.

Listens with mutual TLS (the cluster CA) unless --insecure-no-tls, which is only allowed on a
loopback address.  ``GET /stats`` counts bytes from peers, from the supernode, from the registry,
P2P failures, and the blobs it seeds.

A blob is stored once: the file libtorrent seeds (``swarm/``) is hard-linked as the cached blob
(``blobs/``), and its metainfo is kept (``metainfo/``), so a restarted peer seeds its cache again.
A peer that asks while the supernode is still downloading the blob may get it relayed as it
arrives (checked against the digest, then seeded).  The swarm is given up only when it sends no
byte for --stall-timeout seconds (progress, not a fixed budget, so a loaded swarm keeps going).

    python -m pouch.p2p.peer --listen 127.0.0.1:65001 --supernode https://sn:8002 \\
        --cache /var/cache/pouch-peer --registry reg.example:5000 \\
        --p2p-ca ca.pem --p2p-cert host.pem --p2p-key host-key.pem
"""
from __future__ import annotations

import argparse
import contextlib
import asyncio
import base64
import ipaddress
import logging
import os
import tempfile
import time
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from . import origin
from .cache import evict, touch
from .names import blob_name, check_digest, check_registry, check_repository
from .supernode import bad_names, registries_from_args, serve, tls_or_exit
from .swarm import Swarm
from .tls import ClusterTLS, add_args

log = logging.getLogger("pouch.p2p.peer")
PASS_HEADERS = ("Accept", "Authorization", "Range", "User-Agent")
BACK_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest", "Docker-Distribution-Api-Version",
                "WWW-Authenticate", "Location", "Content-Range")
CHUNK = 1 << 20
CONNECT_GRACE = 10  # seconds a fresh swarm may take to send its first byte (connect, TLS handshake)


class Download:
    """One blob being fetched: readers stream ``path`` up to ``ready`` bytes as it grows."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.path = ""
        self.ready = 0
        self.error: str | None = None
        self.changed = asyncio.Event()

    def advance(self, path: str, ready: int) -> None:
        self.path, self.ready = path, ready
        self.changed.set()
        self.changed = asyncio.Event()

    def fail(self, error: str) -> None:
        self.error = error
        self.changed.set()


class Peer:
    def __init__(self, supernode: str, cache: str, swarm: Swarm, registries: dict[str, str],
                 tls: ClusterTLS | None, cache_size: int = 10 << 30, stall_s: float = 20,
                 budget_s: float = 0, download_rate: int = 0) -> None:
        self.supernode = supernode.rstrip("/")
        self.blobs_dir = os.path.join(cache, "blobs")
        self.swarm_dir = os.path.join(cache, "swarm")
        self.meta_dir = os.path.join(cache, "metainfo")
        for d in (self.blobs_dir, self.swarm_dir, self.meta_dir):
            os.makedirs(d, exist_ok=True)
        self.swarm = swarm
        self.registries = registries
        self.tls = tls
        self.cache_size = cache_size
        self.stall_s, self.budget_s = stall_s, budget_s
        self.download_rate = download_rate
        self.downloads: dict[str, Download] = {}
        self.stats_ = {"bytesFromPeers": 0, "bytesFromSupernode": 0, "bytesFromRegistry": 0,
                       "p2pFailures": 0, "blobsServed": 0, "refused": 0}
        self.session: aiohttp.ClientSession | None = None
        self._announcer: asyncio.Task | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[bad_names])
        app.router.add_get("/stats", self.stats)
        app.router.add_route("*", "/v2/{tail:.*}", self.mirror)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60),
                                             auto_decompress=False)
        self.swarm.start(asyncio.get_running_loop())
        self.restore()
        self._announcer = asyncio.ensure_future(self._announce_loop())

    async def _stop(self, _app) -> None:
        self._announcer.cancel()
        await self.session.close()
        self.swarm.close()

    # -- mirror -------------------------------------------------------------------------------

    def _registry(self, request: web.Request) -> str:
        ns = request.query.get("ns", "")
        if not ns:
            raise web.HTTPBadRequest(text="the registry to mirror is named by ?ns=host[:port]")
        check_registry(ns)
        if ns not in self.registries:
            self.stats_["refused"] += 1
            raise web.HTTPForbidden(text=f"registry {ns} is not one this peer mirrors")
        return ns

    def _upstream(self, request: web.Request, registry: str) -> str:
        query = [(k, v) for k, v in request.query.items() if k != "ns"]
        url = f"{self.registries[registry]}://{registry}{request.rel_url.path}"
        return str(URL(url).with_query(query)) if query else url

    async def mirror(self, request: web.Request) -> web.StreamResponse:
        registry = self._registry(request)
        parts = request.match_info["tail"].split("/")
        if request.method in ("GET", "HEAD") and len(parts) >= 3 and parts[-2] == "blobs":
            digest = parts[-1]
            check_digest(digest)
            repo = check_repository("/".join(parts[:-2]))
            if request.method == "GET":
                return await self.blob(request, registry, repo, digest)
        return await self._proxy(request, registry)

    async def _proxy(self, request: web.Request, registry: str) -> web.Response:
        headers = {h: request.headers[h] for h in PASS_HEADERS if h in request.headers}
        try:
            async with self.session.request(request.method, self._upstream(request, registry), headers=headers,
                                            data=await request.read() or None, allow_redirects=True) as up:
                body = await up.read()
                out = {h: up.headers[h] for h in BACK_HEADERS if h in up.headers and h != "Content-Length"}
                if request.method == "HEAD" and "Content-Length" in up.headers:
                    resp = web.Response(status=up.status, headers=out)
                    resp.content_length = int(up.headers["Content-Length"])
                    return resp
                return web.Response(status=up.status, body=body, headers=out)
        except aiohttp.ClientError as e:
            raise web.HTTPBadGateway(text=f"registry {registry}: {e}") from None

    async def blob(self, request: web.Request, registry: str, repo: str, digest: str) -> web.StreamResponse:
        url = self._upstream(request, registry)
        auth = {"Authorization": request.headers["Authorization"]} if "Authorization" in request.headers else {}
        # the registry decides whether this client may read the blob, cached or not
        try:
            async with self.session.head(url, headers=auth, allow_redirects=True) as head:
                if head.status != 200:
                    self.stats_["refused"] += 1
                    return web.Response(status=head.status, headers={
                        h: head.headers[h] for h in BACK_HEADERS if h in head.headers and h != "Content-Length"})
                size = int(head.headers["Content-Length"])
        except aiohttp.ClientError as e:
            raise web.HTTPBadGateway(text=f"registry {registry}: {e}") from None
        name = blob_name(digest)
        cached = os.path.join(self.blobs_dir, name)
        if name not in self.downloads and os.path.exists(cached):
            ok = await asyncio.get_running_loop().run_in_executor(None, origin.verify_file, cached, digest)
            if ok:
                touch(cached)
                self.stats_["blobsServed"] += 1
                return web.FileResponse(cached, headers={"Docker-Content-Digest": digest,
                                                         "Content-Type": "application/octet-stream"})
            log.warning("cached %s no longer matches its digest: fetching it again", digest)
            self._forget(name)
        dl = self.downloads.get(name)
        if dl is None:
            dl = self.downloads[name] = Download(size)
            task = asyncio.ensure_future(self._fetch(dl, registry, repo, digest, url, auth))
            task.add_done_callback(lambda _t: self.downloads.pop(name, None))
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream",
                                                       "Docker-Content-Digest": digest})
        resp.content_length = size
        await resp.prepare(request)
        sent = 0
        while sent < size:
            while dl.ready <= sent and dl.error is None:
                await dl.changed.wait()
            if dl.error is not None:
                raise ConnectionResetError(dl.error)  # the client sees a short body and retries elsewhere
            with open(dl.path, "rb") as f:
                f.seek(sent)
                data = f.read(min(dl.ready - sent, CHUNK))
            await resp.write(data)
            sent += len(data)
        await resp.write_eof()
        self.stats_["blobsServed"] += 1
        return resp

    # -- fetching -----------------------------------------------------------------------------

    async def _fetch(self, dl: Download, registry: str, repo: str, digest: str, url: str, auth: dict) -> None:
        name = blob_name(digest)
        try:
            try:
                if self.budget_s:
                    await asyncio.wait_for(self._from_swarm(dl, registry, repo, digest), self.budget_s)
                else:
                    await self._from_swarm(dl, registry, repo, digest)
                return
            except Exception as e:  # any P2P failure: back to the registry
                self.stats_["p2pFailures"] += 1
                log.warning("P2P fetch of %s failed (%s: %s): from the registry", digest, type(e).__name__, e)
                self.swarm.remove(name, delete_files=True)
            last = [0]

            def progress(part: str, done: int) -> None:
                self.stats_["bytesFromRegistry"] += done - last[0]
                last[0] = done
                dl.advance(part, done)

            path = await origin.download(self.session, url, auth, digest, dl.size, self.blobs_dir, progress)
            dl.advance(path, dl.size)
            self._evict(name)
        except Exception as e:
            log.warning("fetch of %s failed: %s", digest, e)
            dl.fail(str(e))

    async def _register(self, registry: str, repo: str, digest: str, relay: bool):
        """POST /blobs: the metainfo and the seed's port, or (``relay``, while the supernode is
        still downloading the blob) the open response streaming the blob's bytes."""
        r = await self.session.post(f"{self.supernode}/blobs", ssl=self._ssl(),
                                    json={"registry": registry, "repository": repo, "digest": digest, "relay": relay},
                                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.stall_s, sock_read=self.stall_s))
        if r.status != 200:
            text = (await r.text())[:200]
            r.release()
            raise RuntimeError(f"supernode answered {r.status}: {text}")
        if r.content_type == "application/octet-stream":
            return r
        try:
            body = await r.json()
        finally:
            r.release()
        return base64.b64decode(body["torrent"]), int(body["seed"])

    async def _from_swarm(self, dl: Download, registry: str, repo: str, digest: str) -> None:
        name = blob_name(digest)
        t0 = time.monotonic()
        got = await self._register(registry, repo, digest, relay=True)
        if isinstance(got, aiohttp.ClientResponse):
            await self._from_relay(got, dl, digest)
            got = await self._register(registry, repo, digest, relay=False)
            self._seed(name, got[0], announce=True)
            log.info("%s: relayed from the supernode's download in %.2f s", digest, time.monotonic() - t0)
            return
        metainfo, seed_port = got
        t_meta = time.monotonic()
        seed = (urlsplit(self.supernode).hostname, seed_port)
        h = self.swarm.add(name, metainfo, self.swarm_dir)
        if self.swarm.file_size(h) != dl.size:
            raise RuntimeError(f"metainfo size {self.swarm.file_size(h)} differs from the registry's {dl.size}")
        known = [seed] + await self._announce(digest)
        self.swarm.connect(name, known)
        pieces, i = h.torrent_file().num_pieces(), 0
        hasher = origin.hasher(digest)
        now = last_progress = last_announce = time.monotonic()
        got_from: dict[tuple, int] = {}  # bytes per swarm member (seeds drop each other once done: sampled)
        last_bytes = -1
        done, arrived = self.swarm.done[name], self.swarm.events[name]
        # clients get the verified pieces in order, read back through libtorrent (a finished piece
        # may still be in its write cache) into a .part file beside the torrent's own file; once
        # complete it replaces the torrent's file (same bytes): one copy on disk
        fd, part = tempfile.mkstemp(dir=self.swarm_dir, prefix=name + ".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                while True:
                    while i < pieces and (i in done or h.have_piece(i)):
                        data = await self.swarm.read_piece(name, i)
                        f.write(data)
                        f.flush()
                        hasher.update(data)
                        i += 1
                        if f.tell() < dl.size:  # the last piece waits for the digest check
                            dl.advance(part, f.tell())
                    if i == pieces:
                        break
                    arrived.clear()
                    try:
                        await asyncio.wait_for(arrived.wait(), 0.5)
                    except asyncio.TimeoutError:
                        pass
                    now = time.monotonic()
                    st = h.status()
                    if st.errc.value():
                        raise RuntimeError(f"libtorrent: {st.errc.message()}")
                    # progress is any payload byte arriving, from anyone (not a piece in order): a
                    # swarm that is slow under load keeps going; one silent for stall_s is given up
                    if st.total_payload_download != last_bytes:
                        last_bytes, last_progress = st.total_payload_download, now
                        for p in h.get_peer_info():
                            got_from[tuple(p.ip)] = max(got_from.get(tuple(p.ip), 0), p.total_download)
                    elif now - last_progress > (self.stall_s if last_bytes else max(self.stall_s, CONNECT_GRACE)):
                        # (before the first byte, connecting and TLS handshakes get a longer grace)
                        raise TimeoutError(f"no byte from the swarm for {now - last_progress:.0f} s")
                    if now - last_announce > 3 or (not st.num_peers and now - last_announce > 0.5):
                        known = [seed] + await self._announce(digest)
                        self.swarm.connect(name, known)  # a first connect can come too early: retry
                        last_announce = now
            if i != pieces or hasher.hexdigest() != check_digest(digest)[1]:
                raise RuntimeError("pieces assembled from the swarm do not match the digest")
            path = os.path.join(self.swarm_dir, name)
            os.replace(part, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise
        for p in h.get_peer_info():
            got_from[tuple(p.ip)] = max(got_from.get(tuple(p.ip), 0), p.total_download)
        from_seed = sum(n for ep, n in got_from.items() if ep == seed)
        self.stats_["bytesFromSupernode"] += from_seed
        self.stats_["bytesFromPeers"] += max(0, h.status().total_payload_download - from_seed)
        self._keep(name, metainfo)
        dl.advance(path, dl.size)
        self._evict(name)
        log.info("%s: metainfo in %.2f s, pieces in %.2f s", digest, t_meta - t0, time.monotonic() - t_meta)

    async def _from_relay(self, resp: aiohttp.ClientResponse, dl: Download, digest: str) -> None:
        """The blob as the supernode downloads it, checked against its digest, into the swarm
        directory (so that it can be seeded next)."""
        name = blob_name(digest)
        final = os.path.join(self.swarm_dir, name)
        fd, part = tempfile.mkstemp(dir=self.swarm_dir, prefix=name + ".", suffix=".part")
        h, n, t0 = origin.hasher(digest), 0, time.monotonic()
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    f.write(chunk)
                    f.flush()
                    h.update(chunk)
                    n += len(chunk)
                    self.stats_["bytesFromSupernode"] += len(chunk)
                    if n < dl.size:  # the last bytes wait for the digest check
                        dl.advance(part, n)
                    if self.download_rate:  # --download-rate binds the relay as it binds peers
                        await asyncio.sleep(max(0.0, t0 + n / self.download_rate - time.monotonic()))
            if n != dl.size or h.hexdigest() != check_digest(digest)[1]:
                raise RuntimeError(f"the supernode's relay of {digest} does not match it ({n} bytes)")
            os.replace(part, final)
            dl.advance(final, n)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise
        finally:
            resp.release()

    def _keep(self, name: str, metainfo: bytes) -> None:
        """A complete, verified blob in the swarm directory: it becomes the cached blob too (a
        hard link: one copy on disk) and its metainfo is kept to seed it again after a restart."""
        meta = os.path.join(self.meta_dir, name + ".torrent")
        with open(meta + ".tmp", "wb") as f:
            f.write(metainfo)
        os.replace(meta + ".tmp", meta)
        cached = os.path.join(self.blobs_dir, name)
        try:
            os.unlink(cached)
        except FileNotFoundError:
            pass
        os.link(os.path.join(self.swarm_dir, name), cached)

    def _seed(self, name: str, metainfo: bytes, announce: bool) -> None:
        """Seed a verified blob of the swarm directory."""
        self._keep(name, metainfo)
        self.swarm.add(name, metainfo, self.swarm_dir, seed=True)
        if announce:
            algo, _, hexpart = name.partition("-")
            asyncio.ensure_future(self._announce(f"{algo}:{hexpart}"))

    def restore(self) -> None:
        """After a restart: drop the partial downloads of the last run (one peer per cache) and
        seed again every cached blob whose metainfo we kept."""
        for d in (self.blobs_dir, self.swarm_dir):
            for fn in os.listdir(d):
                if fn.endswith(".part"):
                    os.unlink(os.path.join(d, fn))
        for fn in sorted(os.listdir(self.meta_dir)):
            name = fn.removesuffix(".torrent")
            if not fn.endswith(".torrent") or not os.path.exists(os.path.join(self.swarm_dir, name)):
                continue
            with open(os.path.join(self.meta_dir, fn), "rb") as f:
                self.swarm.add(name, f.read(), self.swarm_dir, seed=True)
            log.info("seeding %s again", name)

    async def _announce(self, digest: str) -> list[tuple[str, int]]:
        try:
            async with self.session.post(f"{self.supernode}/blobs/{digest}/peers", ssl=self._ssl(),
                                         json={"port": self.swarm.port},
                                         timeout=aiohttp.ClientTimeout(total=10)) as r:
                if r.status != 200:
                    return []
                return [(h, p) for h, p in (await r.json())["peers"]]
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            log.info("announcing %s: %s", digest, e)
            return []

    async def _announce_loop(self) -> None:
        """Keep the supernode's peer lists fresh for the blobs we seed."""
        while True:
            for name in list(self.swarm.handles):
                algo, _, hexpart = name.partition("-")
                await self._announce(f"{algo}:{hexpart}")
            await asyncio.sleep(20)

    def _ssl(self):
        return self.tls.client() if self.tls else None

    def _forget(self, name: str) -> None:
        self.swarm.remove(name, delete_files=True)
        for p in (os.path.join(self.blobs_dir, name), os.path.join(self.swarm_dir, name),
                  os.path.join(self.meta_dir, name + ".torrent")):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def _evict(self, keep: str) -> None:
        for gone in evict(self.blobs_dir, self.cache_size, keep={keep} | set(self.downloads)):
            self._forget(gone)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({**self.stats_, "hashFailures": self.swarm.hash_failures,
                                  "seeding": sum(1 for h in self.swarm.handles.values() if h.status().is_seeding)})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="pouch-peer", description="P2P peer and registry mirror for pouchd")
    ap.add_argument("--listen", default="127.0.0.1:65001", help="host:port of the mirror pouchd talks to")
    ap.add_argument("--swarm-listen", default="0.0.0.0:6882", help="host:port for other peers (BitTorrent)")
    ap.add_argument("--supernode", required=True, help="base URL of the supernode (https://host:port)")
    ap.add_argument("--cache", default="/var/cache/pouch-peer")
    ap.add_argument("--cache-size", type=int, default=10 << 30, help="bytes of blobs to keep (LRU)")
    ap.add_argument("--registry", action="append", default=[], help="host:port of a registry to mirror (https)")
    ap.add_argument("--insecure-registries", "--insecure-registry", action="append", default=[],
                    help="host:port of a registry to mirror over plain http")
    ap.add_argument("--upload-rate", type=int, default=0, help="bytes/s to other peers (0: unlimited)")
    ap.add_argument("--download-rate", type=int, default=0, help="bytes/s from other peers (0: unlimited)")
    ap.add_argument("--stall-timeout", type=float, default=20,
                    help="seconds without a byte from the swarm before going to the registry")
    ap.add_argument("--budget", type=float, default=0,
                    help="seconds a blob may take in the swarm however it progresses (0: no limit)")
    add_args(ap)
    a = ap.parse_args(argv)
    tls = tls_or_exit(ap, a)
    host = a.listen.rpartition(":")[0].strip("[]")
    if tls is None and not _loopback(host):
        ap.error("without TLS the mirror listens only on a loopback address")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    swarm = Swarm(a.swarm_listen, tls, upload_rate=a.upload_rate, download_rate=a.download_rate)
    peer = Peer(a.supernode, a.cache, swarm, registries_from_args(a.registry, a.insecure_registries), tls,
                a.cache_size, a.stall_timeout, a.budget, a.download_rate)
    serve(peer.app(), a.listen, tls)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


if __name__ == "__main__":
    main()

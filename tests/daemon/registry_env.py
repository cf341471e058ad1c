"""Helpers for the pull/push integration tests: a pouchd that trusts 127.0.0.0/8 registries and
uses a local registry as docker.io mirror, busybox-based OCI images pushed with skopeo, and
proxies (counting / throttled) that run in a background thread's event loop so tests can call
the blocking ``pouch`` CLI while they serve.
"""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from tests.fixtures.daemon import POUCH, PouchDaemon
from tests.fixtures.images import busybox_archive, busybox_layer
from tests.fixtures.registry import (OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, BuiltImage, RegistryProxy,
                                     RegistryServer, make_layer, missing_tools, skopeo_push,
                                     TEST_PASSWORD, TEST_USER)

USER, PASSWORD = TEST_USER, TEST_PASSWORD


def need_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    missing = missing_tools()
    for tool in ("containerd", "runc"):
        if not __import__("shutil").which(tool):
            missing.append(tool)
    if not os.path.exists("/bin/busybox"):
        missing.append("/bin/busybox (busybox-static)")
    if missing:
        pytest.skip(f"missing: {', '.join(missing)} (apt-get install docker-registry skopeo apache2-utils "
                    f"openssl containerd runc busybox-static)")


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_busybox_image(layout: Path, tag: str, big: int = 0, seed: int = 7, repo: str = "") -> BuiltImage:
    """OCI layout: busybox layer, a layer adding /etc/removed and /data/note.txt, a layer whiting
    out /etc/removed (and, if ``big``, a last layer of ``big`` random incompressible bytes).
    ``repo`` goes into /data/repo.txt, so images of different repositories differ."""
    import random
    blobs = layout / "blobs/sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def put(data: bytes) -> str:
        d = _sha(data)
        (blobs / d[7:]).write_bytes(data)
        return d

    raw_bb = busybox_layer()
    layers = [(gzip.compress(raw_bb, mtime=0), raw_bb),
              make_layer({"etc/": None, "etc/removed": b"gone soon\n", "data/": None,
                          "data/note.txt": f"tag {tag}\n".encode(), "data/repo.txt": repo.encode()}),
              make_layer({"etc/": None, "etc/.wh.removed": b""})]
    if big:
        layers.append(make_layer({"data/": None, "data/random.bin": random.Random(seed).randbytes(big)}))
    descs = [{"mediaType": OCI_LAYER_GZIP, "digest": put(blob), "size": len(blob)} for blob, _ in layers]
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
              "rootfs": {"type": "layers", "diff_ids": [_sha(raw) for _, raw in layers]},
              "config": {"Cmd": ["sh"], "Env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]}}
    cfg = json.dumps(config, sort_keys=True).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": put(cfg), "size": len(cfg)},
                           "layers": descs}, sort_keys=True).encode()
    mdigest = put(manifest)
    top = {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest),
           "annotations": {"org.opencontainers.image.ref.name": tag}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    img = BuiltImage(layout, tag, mdigest, OCI_MANIFEST)
    img.manifests["linux/amd64"] = {"digest": mdigest, "config": _sha(cfg), "layers": [d["digest"] for d in descs]}
    return img


class LoopThread:
    """An asyncio loop in a daemon thread, for servers the blocking tests talk to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class ThrottledProxy(RegistryProxy):
    """Forwards to a registry, sending blob bodies at about ``rate`` bytes/s; records Range headers."""

    def __init__(self, upstream: str, rate: int) -> None:
        super().__init__(upstream)
        self.rate = rate

    async def _handle(self, request):
        from aiohttp import web
        blob = request.method == "GET" and "/blobs/sha256:" in request.path
        if blob:
            self.ranges.append((request.path.rsplit("/", 1)[1], request.headers.get("Range")))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        body = await request.read()
        async with self._session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                         data=body or None, allow_redirects=False) as up:
            out = {k: v for k, v in up.headers.items() if k.lower() not in ("transfer-encoding", "connection")}
            resp = web.StreamResponse(status=up.status, headers=out)
            await resp.prepare(request)
            chunk = 64 * 1024
            async for data in up.content.iter_chunked(chunk):
                await resp.write(data)
                if blob:
                    await asyncio.sleep(len(data) / self.rate)
            await resp.write_eof()
            return resp


class RegistryEnv:
    """A plain registry, an htpasswd registry, and a pouchd trusting both (mirror: the plain one)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.plain = RegistryServer(tmp / "plain").start()
        self.auth = RegistryServer(tmp / "auth", users={USER: PASSWORD}).start()
        self.loop = LoopThread()
        self.daemon = PouchDaemon(extra_args=["--insecure-registries", "127.0.0.0/8",
                                              "--registry-mirror", self.plain.url])
        self.daemon.start()
        r = self.daemon.cli("load", "-i", busybox_archive())
        assert r.returncode == 0, r.stderr
        self._proxies: list = []

    def proxy(self, upstream: str) -> RegistryProxy:
        p = self.loop.run(RegistryProxy(upstream).start())
        self._proxies.append(p)
        return p

    def throttled(self, upstream: str, rate: int) -> ThrottledProxy:
        p = self.loop.run(ThrottledProxy(upstream, rate).start())
        self._proxies.append(p)
        return p

    def push_oci(self, tag: str, repo: str, big: int = 0, seed: int = 7, registry=None) -> BuiltImage:
        reg = registry or self.plain
        img = build_busybox_image(self.tmp / f"layout-{repo.replace('/', '_')}-{tag}", tag, big, seed, repo)
        skopeo_push(img, f"{reg.host}/{repo}:{tag}")
        img.ref = f"{reg.host}/{repo}:{tag}"
        return img

    def cli(self, *args, **kw):
        return self.daemon.cli(*args, **kw)

    def close(self) -> None:
        for p in self._proxies:
            try:
                self.loop.run(p.stop())
            except Exception:
                pass
        self.loop.stop()
        self.daemon.cleanup()
        self.plain.stop()
        self.auth.stop()


def pouch_env(d: PouchDaemon) -> dict:
    return dict(os.environ, POUCH_HOST=d.host)


@pytest.fixture(scope="module")
def renv(tmp_path_factory):
    need_tools()
    env = RegistryEnv(tmp_path_factory.mktemp("regenv"))
    yield env
    env.close()


__all__ = ["renv", "RegistryEnv", "build_busybox_image", "need_tools", "pouch_env", "POUCH", "USER", "PASSWORD"]

"""RegistryClient: the one object the image manager uses to talk to registries.

Pull: ``resolve`` a reference to the platform's manifest, then ``fetch_blob``/``fetch_layers``
into a sink (parallel, with a client-wide concurrency limit; concurrent fetches of one digest
into one sink download once). Push: ``push``. Also ``login``, ``list_tags``, ``search``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp

from .catalog import list_tags as _list_tags, search as _search
from .config import RegistryConfig
from .credentials import Credentials, CredentialStore
from .errors import Unauthorized
from .fetch import download, read_small_blob
from .manifest import Descriptor
from .platform import Platform, parse_platform
from .progress import Progress, ProgressFn, State, noop
from .push import Pusher
from .reference import Reference, parse_reference
from .resolve import ResolvedImage, resolve_at
from .transport import Transport, raise_for_status

USER_AGENT = "pouch/0.1 (python aiohttp)"


@dataclass
class _Inflight:
    task: asyncio.Task | None = None
    listeners: list = field(default_factory=list)

    def emit(self, event: Progress) -> None:
        for fn in list(self.listeners):
            fn(event)


def _ref(ref: Reference | str) -> Reference:
    return ref if isinstance(ref, Reference) else parse_reference(ref, default_tag=False)


class RegistryClient:
    """Async registry client; use ``async with RegistryClient(config) as rc:`` or call ``close()``."""

    def __init__(self, config: RegistryConfig | None = None, credentials: CredentialStore | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.config = config or RegistryConfig()
        self.credentials = credentials or CredentialStore()
        self._own_session = session is None
        self._session = session or aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None, connect=30, sock_read=120))
        self.transport = Transport(self.config, self.credentials, self._session)
        self._downloads = asyncio.Semaphore(self.config.max_concurrent_downloads)
        self._uploads = asyncio.Semaphore(self.config.max_concurrent_uploads)
        self._inflight: dict[tuple, _Inflight] = {}

    async def p2p_stats(self) -> dict | None:
        """The local P2P peer's counters (bytes from peers, the supernode and the registry,
        failures), or None without a peer or when it does not answer."""
        if not self.config.p2p_peer:
            return None
        url = self.config.p2p_peer.rstrip("/") + "/stats"
        try:
            async with self._session.get(url, ssl=self.transport.ssl_for(url),
                                         timeout=aiohttp.ClientTimeout(total=3)) as resp:
                return await resp.json() if resp.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None

    async def close(self) -> None:
        """Cancel downloads still running and close the HTTP session (if we made it)."""
        tasks = [e.task for e in self._inflight.values() if e.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_session:
            await self._session.close()

    async def __aenter__(self) -> "RegistryClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- pull ------------------------------------------------------------------------------------

    async def resolve(self, ref: Reference | str, platform: Platform | str | None = None) -> ResolvedImage:
        """Manifest of ``ref`` for ``platform`` (default: the host's, linux/amd64 here).

        Follows manifest lists / OCI indexes; tries mirrors first where they apply.
        Raises NotFound, NoMatchingPlatform, Unauthorized, DigestMismatch, UnsupportedManifest,
        InsecureRegistryRefused, RegistryUnavailable.
        """
        ref = parse_reference(ref) if isinstance(ref, str) else ref
        plat = platform if isinstance(platform, Platform) else parse_platform(platform)
        endpoints = await self.transport.pull_endpoints(ref.domain)
        return await self.transport.with_fallback(endpoints, lambda ep: resolve_at(self.transport, ep, ref, plat))

    async def fetch_blob(self, repo: Reference | str, desc: Descriptor, sink, progress: ProgressFn = noop) -> None:
        """Stream one blob into ``sink``, verified; no-op if the sink has it.

        Concurrent calls for the same (sink, digest) share one download.
        Raises DigestMismatch (naming the blob), SizeMismatch, NotFound, RegistryUnavailable.
        """
        ref = _ref(repo)
        # no await before joining the queue: calls take download slots in the order they were
        # made (a pull's first layer first, as everything else waits for it); _fetch checks
        # whether the sink has the blob already
        key = (sink, desc.digest)
        entry = self._inflight.get(key)
        if entry is None:
            entry = _Inflight()
            entry.task = asyncio.create_task(self._fetch(ref, desc, sink, entry))
            self._inflight[key] = entry
            entry.task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        else:
            progress(Progress(desc.digest, State.WAITING, 0, desc.size))
        entry.listeners.append(progress)
        try:
            await asyncio.shield(entry.task)
        finally:
            entry.listeners.remove(progress)

    async def _fetch(self, ref: Reference, desc: Descriptor, sink, entry: _Inflight) -> None:
        await asyncio.sleep(0)  # let the creator register its listener first
        if self._downloads.locked():
            entry.emit(Progress(desc.digest, State.WAITING, 0, desc.size))
        async with self._downloads:
            if await sink.has(desc.digest):
                entry.emit(Progress(desc.digest, State.EXISTS, desc.size, desc.size))
                return
            endpoints = await self.transport.pull_endpoints(ref.domain)
            await self.transport.with_fallback(endpoints, lambda ep: download(
                self.transport, ep, ref.path, desc, sink, entry.emit,
                self.config.download_retries, self.config.chunk_size))

    async def fetch_layers(self, repo: Reference | str, descs: list[Descriptor], sink,
                           progress: ProgressFn = noop) -> None:
        """Fetch many blobs in parallel (bounded by ``max_concurrent_downloads``); first error wins."""
        tasks = [asyncio.create_task(self.fetch_blob(repo, d, sink, progress)) for d in descs]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def fetch_blob_bytes(self, repo: Reference | str, desc: Descriptor) -> bytes:
        """A small blob (an image config) in memory, verified."""
        ref = _ref(repo)
        endpoints = await self.transport.pull_endpoints(ref.domain)
        return await self.transport.with_fallback(
            endpoints, lambda ep: read_small_blob(self.transport, ep, ref.path, desc))

    async def pull(self, ref: Reference | str, sink, platform: Platform | str | None = None,
                   progress: ProgressFn = noop) -> ResolvedImage:
        """resolve + config + layers into ``sink`` (manifests too, if the sink has ``put``)."""
        image = await self.resolve(ref, platform)
        if hasattr(sink, "put"):
            if image.index is not None:
                await sink.put(image.index_digest, image.index)
            await sink.put(image.digest, image.manifest)
        await self.fetch_layers(image.ref, [image.config, *image.layers], sink, progress)
        return image

    # -- push ------------------------------------------------------------------------------------

    async def push(self, ref: Reference | str, manifest: bytes, media_type: str, blobs,
                   progress: ProgressFn = noop, mount_from: tuple[str, ...] = ()) -> str:
        """Push ``manifest`` under ``ref``'s tag (or by digest); blobs come from ``blobs.read(digest)``.

        ``mount_from``: repositories on the same registry to mount existing blobs from.
        Returns the manifest digest.
        """
        ref = parse_reference(ref) if isinstance(ref, str) else ref
        ep = await self.transport.origin(ref.domain)
        pusher = Pusher(self.transport, ep, ref, blobs, progress, tuple(mount_from),
                        self.config.upload_chunk_size, self._uploads)
        return await pusher.push(manifest, media_type, ref.tag)

    # -- other -----------------------------------------------------------------------------------

    async def login(self, registry: str, username: str, password: str, save: bool = True) -> str:
        """Check credentials against ``registry``'s ``/v2/``; store them on success. Returns a status line."""
        ep = await self.transport.origin(registry)
        self.transport.auth.forget(ep.base_url)
        self.transport.override_credentials(registry, Credentials(username, password))
        try:
            resp = await self.transport.request(ep, "GET", "/v2/", "")
            await raise_for_status(resp, f"login to {registry}")
            resp.release()
        except Unauthorized:
            raise Unauthorized(f"login to {registry} failed: unauthorized: incorrect username or password") from None
        finally:
            self.transport.override_credentials(registry, None)
            self.transport.auth.forget(ep.base_url)
        if save:
            self.credentials.login(registry, username, password)
        return "Login Succeeded"

    def logout(self, registry: str) -> None:
        self.credentials.logout(registry)
        self.transport.auth.forget(f"https://{registry}")
        self.transport.auth.forget(f"http://{registry}")

    async def list_tags(self, repo: Reference | str) -> list[str]:
        ref = _ref(repo)
        endpoints = await self.transport.pull_endpoints(ref.domain)
        return await self.transport.with_fallback(endpoints, lambda ep: _list_tags(self.transport, ep, ref))

    async def search(self, registry: str, term: str, limit: int = 25) -> list[dict]:
        ep = await self.transport.origin(registry)
        return await _search(self.transport, ep, term, limit)

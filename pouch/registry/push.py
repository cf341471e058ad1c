"""Pushing an image: blobs (exists check, cross-repository mount, monolithic or chunked upload),
then child manifests of an index, then the manifest under the tag.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator
from urllib.parse import urljoin

from yarl import URL

from .errors import DigestMismatch, RegistryError, UploadFailed
from .manifest import INDEXES, Descriptor, check_supported, parse_image_manifest, parse_index, sha256_digest
from .progress import Progress, ProgressFn, State
from .reference import Reference
from .transport import Endpoint, Transport, raise_for_status


class Pusher:
    """One push to one repository."""

    def __init__(self, transport: Transport, ep: Endpoint, ref: Reference, provider, progress: ProgressFn,
                 mount_from: tuple[str, ...], chunk_size: int | None, semaphore: asyncio.Semaphore) -> None:
        self.t, self.ep, self.ref, self.provider = transport, ep, ref, provider
        self.progress, self.mount_from, self.chunk_size, self.sem = progress, mount_from, chunk_size, semaphore
        self.repo = ref.path
        self.scope = f"repository:{self.repo}:pull,push"

    async def push(self, manifest: bytes, media_type: str, tag: str | None) -> str:
        """Push a manifest and everything it needs; returns the manifest's digest."""
        check_supported(media_type)
        if media_type in INDEXES:
            for entry in parse_index(manifest):
                child = Descriptor.from_json(entry)
                data = b"".join([c async for c in self.provider.read(child.digest)])
                if sha256_digest(data) != child.digest:
                    raise DigestMismatch(child.digest, sha256_digest(data), what="manifest")
                await self.push(data, child.media_type, None)
        else:
            config, layers = parse_image_manifest(manifest)
            await asyncio.gather(*(self._blob(d) for d in [config, *layers]))
        return await self._manifest(manifest, media_type, tag)

    async def _manifest(self, data: bytes, media_type: str, tag: str | None) -> str:
        digest = sha256_digest(data)
        resp = await self.t.request(self.ep, "PUT", f"/v2/{self.repo}/manifests/{tag or digest}", self.scope,
                                    headers={"Content-Type": media_type}, data=data)
        await raise_for_status(resp, f"manifest {self.ref.familiar_name()}:{tag or digest}")
        async with resp:
            echoed = resp.headers.get("Docker-Content-Digest")
        if echoed and echoed != digest:
            raise UploadFailed(f"registry stored manifest as {echoed}, expected {digest}")
        return digest

    async def _blob(self, desc: Descriptor) -> None:
        async with self.sem:
            resp = await self.t.request(self.ep, "HEAD", f"/v2/{self.repo}/blobs/{desc.digest}", self.scope)
            resp.release()
            if resp.status == 200:
                self.progress(Progress(desc.digest, State.EXISTS, desc.size, desc.size))
                return
            location = None
            for source in self.mount_from:
                if source == self.repo:
                    continue
                resp = await self.t.request(
                    self.ep, "POST", f"/v2/{self.repo}/blobs/uploads/", f"{self.scope} repository:{source}:pull",
                    params={"mount": desc.digest, "from": source})
                if resp.status == 201:
                    resp.release()
                    self.progress(Progress(desc.digest, State.MOUNTED, desc.size, desc.size))
                    return
                location = await self._location(resp, desc)
                break
            if location is None:
                resp = await self.t.request(self.ep, "POST", f"/v2/{self.repo}/blobs/uploads/", self.scope)
                location = await self._location(resp, desc)
            await self._upload(desc, location)
            self.progress(Progress(desc.digest, State.PUSHED, desc.size, desc.size))

    async def _location(self, resp, desc: Descriptor) -> str:
        if resp.status != 202:
            await raise_for_status(resp, f"upload of blob {desc.digest}")
            raise UploadFailed(f"upload of blob {desc.digest}: unexpected HTTP {resp.status}")
        location = resp.headers.get("Location")
        url = str(resp.url)
        resp.release()
        if not location:
            raise UploadFailed(f"upload of blob {desc.digest}: registry gave no Location")
        return urljoin(url, location)

    async def _stream(self, desc: Descriptor) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self.provider.read(desc.digest):
            sent += len(chunk)
            self.progress(Progress(desc.digest, State.PUSHING, sent, desc.size))
            yield chunk

    async def _upload(self, desc: Descriptor, location: str) -> None:
        what = f"upload of blob {desc.digest}"
        if self.chunk_size and desc.size > self.chunk_size:
            sent, buf = 0, bytearray()

            async def flush(data: bytes, start: int) -> str:
                r = await self.t.request(self.ep, "PATCH", location, self.scope, data=data, headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{start + len(data) - 1}"})
                return await self._location(r, desc)

            async for chunk in self._stream(desc):
                buf += chunk
                while len(buf) >= self.chunk_size:
                    location = await flush(bytes(buf[:self.chunk_size]), sent)
                    sent += self.chunk_size
                    del buf[:self.chunk_size]
            if buf:
                location = await flush(bytes(buf), sent)
            url, data, length = URL(location).update_query(digest=desc.digest), None, 0
        else:
            url, data, length = URL(location).update_query(digest=desc.digest), self._stream(desc), desc.size
        resp = await self.t.request(self.ep, "PUT", str(url), self.scope, data=data, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(length)})
        if resp.status != 201:
            await raise_for_status(resp, what)
            raise RegistryError(f"{what}: unexpected HTTP {resp.status}")
        resp.release()

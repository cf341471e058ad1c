"""Streaming one blob from an endpoint into a sink: sha256 while streaming, Range resume.

A dropped connection is retried with ``Range: bytes=N-`` from what the sink already holds;
a server that answers 200 instead of 206 makes us start over. Bytes are committed to the sink
only when size and digest match; a mismatch discards them and names the blob.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import aiohttp

from .errors import DigestMismatch, InsecureRegistryRefused, RegistryError, RegistryUnavailable, SizeMismatch
from .manifest import Descriptor
from .progress import Progress, ProgressFn, State
from .transport import RETRYABLE, Endpoint, Transport, raise_for_status

log = logging.getLogger(__name__)


def _hasher(digest: str):
    algo = digest.partition(":")[0]
    try:
        return hashlib.new(algo)
    except ValueError:
        raise RegistryError(f"blob {digest}: unsupported digest algorithm {algo}") from None


async def _seed_from_partial(sink, desc: Descriptor, hasher) -> int:
    """Hash what the sink kept of an earlier attempt; return how many bytes it holds (0: start over)."""
    if not hasattr(sink, "read_partial"):
        return 0
    offset = await sink.offset(desc.digest)
    if offset <= 0 or offset > desc.size:
        return 0
    seen = 0
    async for chunk in sink.read_partial(desc.digest):
        hasher.update(chunk)
        seen += len(chunk)
    return seen if seen == offset else 0


async def _kept_offset(sink, desc: Descriptor) -> int:
    """Bytes a verifying sink kept of an earlier attempt (it re-checks them itself at commit)."""
    offset = await sink.offset(desc.digest)
    return offset if 0 < offset <= desc.size else 0


def _range_start(resp: aiohttp.ClientResponse) -> int | None:
    value = resp.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


async def download(transport: Transport, ep: Endpoint, repo: str, desc: Descriptor, sink,
                   progress: ProgressFn, retries: int, chunk_size: int) -> None:
    """Fetch ``desc`` from ``ep`` into ``sink``; raises DigestMismatch / SizeMismatch / RegistryError."""
    digest, size = desc.digest, desc.size
    # a sink that verifies digests itself (containerd's content store does, on commit) spares
    # us hashing every byte a second time
    own_check = not getattr(sink, "verifies_digest", False)
    new_hasher = (lambda: _hasher(digest)) if own_check else (lambda: None)
    hasher = new_hasher()
    done = await (_seed_from_partial(sink, desc, hasher) if own_check else _kept_offset(sink, desc))
    if done == 0:
        hasher = new_hasher()
    writer = await sink.open(digest, size, done)
    scope = f"repository:{repo}:pull"
    failures = 0
    try:
        while done < size or size == 0:
            headers = {"Range": f"bytes={done}-"} if done else {}
            try:
                resp = await transport.request(ep, "GET", f"/v2/{repo}/blobs/{digest}", scope, headers=headers)
                if resp.status not in (200, 206):
                    await raise_for_status(resp, f"blob {digest}")
                async with resp:
                    if done and (resp.status == 200 or _range_start(resp) != done):
                        log.info("blob %s: registry ignored Range, restarting", digest)
                        await writer.abort()
                        writer, done, hasher = await sink.open(digest, size, 0), 0, new_hasher()
                    progress(Progress(digest, State.DOWNLOADING, done, size))
                    async for chunk in resp.content.iter_chunked(chunk_size):
                        if hasher is not None:
                            hasher.update(chunk)
                        await writer.write(chunk)
                        done += len(chunk)
                        if done > size:
                            raise SizeMismatch(digest, size, done)
                        progress(Progress(digest, State.DOWNLOADING, done, size))
                if done < size:
                    raise aiohttp.ClientPayloadError(f"stream ended at {done} of {size} bytes")
                break
            except InsecureRegistryRefused:
                raise
            except RETRYABLE as exc:
                failures += 1
                if failures > retries:
                    raise RegistryUnavailable(f"blob {digest}: download failed after {failures} tries: {exc}") from None
                log.info("blob %s: connection lost at %d/%d (%s), resuming", digest, done, size, exc)
                progress(Progress(digest, State.RETRYING, done, size))
                await asyncio.sleep(min(0.05 * 2 ** failures, 2.0))
        progress(Progress(digest, State.VERIFYING, done, size))
        if done != size:
            raise SizeMismatch(digest, size, done)
        if hasher is not None:
            actual = f"{digest.partition(':')[0]}:{hasher.hexdigest()}"
            if actual != digest:
                raise DigestMismatch(digest, actual)
        await writer.commit()  # a verifying sink raises DigestMismatch here
    except (DigestMismatch, SizeMismatch):
        await writer.abort()
        raise
    except BaseException:
        await writer.close()  # keep the partial bytes for a later resume
        raise
    progress(Progress(digest, State.DONE, size, size))


async def read_small_blob(transport: Transport, ep: Endpoint, repo: str, desc: Descriptor,
                          limit: int = 16 << 20) -> bytes:
    """Whole small blob (an image config) in memory, digest-verified."""
    if desc.size > limit:
        raise RegistryError(f"blob {desc.digest} is {desc.size} bytes, more than {limit} allowed in memory")
    resp = await transport.request(ep, "GET", f"/v2/{repo}/blobs/{desc.digest}", f"repository:{repo}:pull")
    await raise_for_status(resp, f"blob {desc.digest}")
    async with resp:
        data = await resp.content.read(limit + 1)
    if len(data) != desc.size:
        raise SizeMismatch(desc.digest, desc.size, len(data))
    hasher = _hasher(desc.digest)
    hasher.update(data)
    actual = f"{desc.digest.partition(':')[0]}:{hasher.hexdigest()}"
    if actual != desc.digest:
        raise DigestMismatch(desc.digest, actual)
    return data

"""Pulling images from registries into containerd.

``ContentSink`` is pouch.registry's blob sink on top of containerd's content store: each blob
streams into an ingest named ``pouch-<digest>`` (containerd verifies size and digest on commit);
an interrupted download stays as a partial ingest that the next pull resumes from (containerd
re-checks those bytes with the rest at commit, so pouchd hashes nothing itself).  One sink per
daemon, so concurrent pulls of one image download each blob once (the registry client dedups
per sink and digest).

``Puller`` resolves a reference, fetches config and layers in parallel inside a containerd lease,
unpacks each layer as soon as it has arrived (LayerUnpacker: ahead of its parent when the parent
is still being applied), then stores manifest / index blobs and the image record
(ImageManager.store_image).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Callable

import grpc

from pouch.errtypes import AlreadyExists, InvalidArgument, NotFound
from pouch.registry import (Descriptor, Reference, RegistryClient, ResolvedImage, parse_platform,
                            parse_reference)
from pouch.registry import errors as reg_errors

from ..ctrd.client import Ctrd
from ..ctrd.errors import translate
from ..ctrd.pb.api.services.content.v1 import content_pb2 as ct_pb
from ..ctrd.pb.api.services.leases.v1 import leases_pb2 as l_pb
from .image import UNCOMPRESSED_LABEL, Image, ImageManager, chain_ids
from .jsonprogress import LayerReporter, message, short_id

log = logging.getLogger(__name__)
Emit = Callable[[dict], None]


def _noop(_msg: dict) -> None:
    return None


class _IngestWriter:
    """One streaming ``Content.Write`` call fed from a bounded queue (the registry's BlobWriter).

    If containerd says the blob exists already (a concurrent writer committed it first), the
    remaining writes are dropped and commit succeeds.
    """

    def __init__(self, ctrd: Ctrd, ref: str, digest: str, size: int, offset: int, labels: dict) -> None:
        self.ctrd, self.ref, self.digest, self.size = ctrd, ref, digest, size
        self.offset = offset
        self.labels = labels
        self._q: asyncio.Queue = asyncio.Queue(maxsize=16)
        self._call = ctrd.content.Write(self._requests(), metadata=ctrd.md())
        self._drain = asyncio.ensure_future(self._responses())

    async def _requests(self):
        yield ct_pb.WriteContentRequest(action=ct_pb.WriteAction.STAT, ref=self.ref, total=self.size,
                                        expected=self.digest)
        while True:
            req = await self._q.get()
            if req is None:
                return
            yield req

    async def _responses(self) -> None:
        async for _ in self._call:
            pass

    async def _outcome(self) -> None:
        """Wait for the call to end; raise its error (AlreadyExists is success)."""
        try:
            await self._drain
        except grpc.aio.AioRpcError as e:
            err = translate(e)
            if isinstance(err, AlreadyExists):
                return
            m = re.search(r"unexpected commit digest (\S+), expected", err.message)
            if m:
                raise reg_errors.DigestMismatch(self.digest, m.group(1)) from None
            m = re.search(r"unexpected commit size (\d+), expected", err.message)
            if m:
                raise reg_errors.SizeMismatch(self.digest, self.size, int(m.group(1))) from None
            raise err from None

    async def _put(self, req) -> bool:
        """Queue one request; False if the call has ended (blob exists), raise if it failed."""
        if not self._drain.done():
            put = asyncio.ensure_future(self._q.put(req))
            done, _ = await asyncio.wait({put, self._drain}, return_when=asyncio.FIRST_COMPLETED)
            if put in done:
                return True
            put.cancel()
        await self._outcome()
        return False

    async def write(self, data: bytes) -> None:
        # offset 0 on the first write makes containerd truncate a stale partial ingest
        if await self._put(ct_pb.WriteContentRequest(action=ct_pb.WriteAction.WRITE, ref=self.ref,
                                                     offset=self.offset, data=data, total=self.size)):
            self.offset += len(data)

    async def commit(self) -> None:
        if await self._put(ct_pb.WriteContentRequest(
                action=ct_pb.WriteAction.COMMIT, ref=self.ref, total=self.size, offset=self.offset,
                expected=self.digest, labels=self.labels)):
            await self._put(None)
        await self._outcome()

    async def abort(self) -> None:
        self._call.cancel()
        with contextlib.suppress(BaseException):
            await self._drain
        with contextlib.suppress(Exception):
            await self.ctrd.call(self.ctrd.content.Abort, ct_pb.AbortRequest(ref=self.ref))

    async def close(self) -> None:
        """Stop, keeping the partial ingest for a later resume."""
        self._call.cancel()
        with contextlib.suppress(BaseException):
            await self._drain


class ContentSink:
    """pouch.registry sink writing into containerd's content store (shared per daemon)."""

    verifies_digest = True  # containerd checks size and digest at commit (also of resumed bytes)

    def __init__(self, ctrd: Ctrd) -> None:
        self.ctrd = ctrd
        self.labels: dict[str, dict[str, str]] = {}  # labels to set when a blob is committed

    @staticmethod
    def ref(digest: str) -> str:
        return "pouch-" + digest

    async def has(self, digest: str) -> bool:
        return await self.ctrd.content_exists(digest)

    async def offset(self, digest: str) -> int:
        try:
            r = await self.ctrd.call(self.ctrd.content.Status, ct_pb.StatusRequest(ref=self.ref(digest)))
        except NotFound:
            return 0
        return r.status.offset

    async def open(self, digest: str, size: int, offset: int) -> _IngestWriter:
        return _IngestWriter(self.ctrd, self.ref(digest), digest, size, offset, self.labels.get(digest, {}))


@dataclass
class PullResult:
    image: Image
    name: str           # full reference stored (docker.io/library/busybox:latest)
    digest: str         # what the reference resolved to (index or manifest)
    updated: bool       # the name now points at a different image than before


def to_reference(image: str, tag: str | None = None) -> Reference:
    """Docker's fromImage + tag (a tag or a digest) -> a reference; InvalidArgument if bad."""
    try:
        ref = parse_reference(image, default_tag=False)
        if tag:
            ref = ref.with_digest(tag) if ":" in tag else ref.with_tag(tag)
        if ref.digest:
            ref = Reference(ref.domain, ref.path, None, ref.digest)
        elif not ref.tag:
            ref = ref.with_tag("latest")
    except reg_errors.InvalidReference as e:
        raise InvalidArgument(str(e)) from None
    return ref


class Puller:
    """Pulls images into containerd; one per daemon."""

    def __init__(self, images: ImageManager, registry: RegistryClient, sink: ContentSink) -> None:
        self.images = images
        self.ctrd = images.ctrd
        self.registry = registry
        self.sink = sink

    async def resolve(self, ref: Reference, platform: str | None = None) -> ResolvedImage:
        return await self.registry.resolve(ref, _platform(platform))

    async def pull(self, ref: Reference | str, platform: str | None = None, progress: Emit = _noop,
                   resolved: ResolvedImage | None = None) -> PullResult:
        """Pull ``ref`` (resolved already, if given); ``progress`` gets Docker JSON messages."""
        if isinstance(ref, str):
            ref = to_reference(ref)
        if resolved is None:
            resolved = await self.resolve(ref, platform)
        name = str(ref)
        before = self.images.by_name.get(name)
        async with self.ctrd.lease() as lease:
            # into the lease first: content that exists now must not be collected under us
            for dg in {resolved.digest, resolved.config.digest, *(d.digest for d in resolved.layers),
                       *([resolved.index_digest] if resolved.index_digest else [])}:
                await self._hold(lease, dg)
            cfg_bytes, cfg = await self._config(resolved, lease)
            diff_ids = cfg["rootfs"]["diff_ids"]
            layers = resolved.layers
            await self._layers(resolved, diff_ids, lease, progress)
            index = None
            if resolved.index is not None and resolved.platform == _platform(None):
                index = (resolved.index_media_type, resolved.index)
            img = await self.images.store_image(
                cfg_bytes, cfg, resolved.manifest, resolved.media_type,
                [(d.digest, d.size, d.media_type) for d in layers], [name], index=index, event="pull")
        return PullResult(img, name, resolved.top_digest if index else resolved.digest, before != img.id)

    async def _config(self, resolved: ResolvedImage, lease: str) -> tuple[bytes, dict]:
        await self.registry.fetch_blob(resolved.ref, resolved.config, self.sink)
        data = await self.ctrd.read_blob(resolved.config.digest)
        try:
            cfg = json.loads(data)
            diff_ids = cfg["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise reg_errors.RegistryError(f"image config {resolved.config.digest} is invalid: "
                                           f"no rootfs.diff_ids") from None
        if len(diff_ids) != len(resolved.layers):
            raise reg_errors.RegistryError(f"image config {resolved.config.digest} names {len(diff_ids)} "
                                           f"layers, the manifest {len(resolved.layers)}")
        return data, cfg

    async def _layers(self, resolved: ResolvedImage, diff_ids: list[str], lease: str, emit: Emit) -> None:
        """Download all layers in parallel; unpack each as soon as it has arrived.

        A layer whose parent is not committed yet is applied ahead of it (LayerUnpacker), so
        applying overlaps the remaining downloads instead of queueing behind them.
        """
        layers: list[Descriptor] = resolved.layers
        chains = chain_ids(diff_ids)
        if chains and await self.ctrd.snapshot_exists(chains[-1]) and \
                all([await self.sink.has(d.digest) for d in layers]):
            for d in layers:
                emit(message("Already exists", short_id(d.digest)))
            return
        reporter = LayerReporter(emit)
        for d, diff_id in zip(layers, diff_ids):
            self.sink.labels.setdefault(d.digest, {UNCOMPRESSED_LABEL: diff_id})
            emit(message("Pulling fs layer", short_id(d.digest)))
        t0 = time.monotonic()
        fetches = [asyncio.ensure_future(self.registry.fetch_blob(resolved.ref, d, self.sink, reporter))
                   for d in layers]
        committed = [asyncio.Event() for _ in layers]
        unpacker = self.images.unpacker

        async def unpack(i: int) -> None:
            d, diff_id, chain = layers[i], diff_ids[i], chains[i]
            layer = (d.digest, d.size, d.media_type)
            sid = short_id(d.digest)
            await fetches[i]
            t1 = time.monotonic()
            if not await self.ctrd.snapshot_exists(chain):
                emit(message("Extracting", sid))
                ahead = None
                if i and not committed[i - 1].is_set():
                    ahead = await unpacker.apply_ahead(layer, diff_id)
                if i:
                    try:
                        await committed[i - 1].wait()
                    except BaseException:
                        if ahead is not None:
                            await unpacker.drop(ahead)
                        raise
                parent = chains[i - 1] if i else ""
                if ahead is None:
                    await unpacker.unpack_layer(layer, diff_id, chain, parent)
                else:
                    await unpacker.attach(ahead, chain, parent)
                log.debug("pull %s: layer %s downloaded at %.2fs, unpacked %s in %.2fs", resolved.ref, sid,
                          t1 - t0, "ahead" if ahead else "in order", time.monotonic() - t1)
            committed[i].set()
            emit(message("Pull complete", sid))

        unpacks = [asyncio.ensure_future(unpack(i)) for i in range(len(layers))]
        try:
            await asyncio.gather(*unpacks)  # raises the first failure at once
        except BaseException:
            for t in (*fetches, *unpacks):
                t.cancel()
            await asyncio.gather(*fetches, *unpacks, return_exceptions=True)
            raise
        finally:
            for d in layers:
                self.sink.labels.pop(d.digest, None)

    async def _hold(self, lease: str, digest: str) -> None:
        """Put content that may have existed before into this pull's lease (safe from GC)."""
        await self.ctrd.call(self.ctrd.leases.AddResource, l_pb.AddResourceRequest(
            id=lease, resource=l_pb.Resource(id=digest, type="content")))


def _platform(text: str | None):
    try:
        return parse_platform(text or None)
    except reg_errors.InvalidPlatform as e:
        raise InvalidArgument(str(e)) from None

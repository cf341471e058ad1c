"""Pushing images from containerd's content store to a registry.

The registry client reads blobs through ``ContentProvider`` (``Content.Read`` streams).  The
image's platform manifest is pushed as stored, except that uncompressed layers are sent as gzip
copies (``distribution``); a blob that another repository of the same
registry already has (the image carries a name there) is mounted instead of uploaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Callable

from pouch.errtypes import InvalidArgument
from pouch.registry import Reference, RegistryClient, parse_reference
from pouch.registry import errors as reg_errors

from ..ctrd.client import Ctrd
from .distribution import LayerCompressor, distribution_manifest
from .image import ImageManager
from .jsonprogress import LayerReporter, message, short_id

Emit = Callable[[dict], None]


def _noop(_msg: dict) -> None:
    return None


class ContentProvider:
    """pouch.registry BlobProvider over containerd's content store."""

    def __init__(self, ctrd: Ctrd) -> None:
        self.ctrd = ctrd

    async def read(self, digest: str) -> AsyncIterator[bytes]:
        async for chunk in self.ctrd.read_content(digest):
            yield chunk


@dataclass
class PushResult:
    tag: str
    digest: str
    size: int


class Pusher:
    """Pushes local images; one per daemon."""

    def __init__(self, images: ImageManager, registry: RegistryClient) -> None:
        self.images = images
        self.registry = registry
        self.provider = ContentProvider(images.ctrd)
        self.compressor = LayerCompressor(images.ctrd, images.tmp_dir)

    def reference(self, name: str, tag: str | None) -> Reference:
        try:
            ref = parse_reference(name, default_tag=False)
            if tag:
                ref = ref.with_tag(tag)
            elif not ref.tag and not ref.digest:
                ref = ref.with_tag("latest")
        except reg_errors.InvalidReference as e:
            raise InvalidArgument(str(e)) from None
        return ref

    async def push(self, ref: Reference, progress: Emit = _noop) -> PushResult:
        """Push the local image named ``ref`` to its registry under ``ref``'s tag."""
        img = self.images.get(ref.familiar())
        progress(message(f"The push refers to repository [{ref.name}]"))
        manifest, layers = await distribution_manifest(
            img, await self.images.ctrd.read_blob(img.manifest_digest), self.compressor)
        for digest in layers:
            progress(message("Preparing", short_id(digest)))
        mount_from = tuple(sorted({parse_reference(n).path for n in img.names
                                   if parse_reference(n).domain == ref.domain
                                   and parse_reference(n).path != ref.path}))
        reporter = LayerReporter(_only(progress, {short_id(d) for d in layers}), push=True)
        digest = await self.registry.push(ref, manifest, img.manifest_media_type, self.provider,
                                          reporter, mount_from=mount_from)
        tag = ref.tag or digest
        progress(message(f"{tag}: digest: {digest} size: {len(manifest)}"))
        progress({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(manifest)}})
        return PushResult(tag, digest, len(manifest))


def _only(emit: Emit, ids: set[str]) -> Emit:
    """Drop messages about blobs that are not layers (the config)."""
    def out(msg: dict) -> None:
        if msg.get("id") in ids:
            emit(msg)
    return out

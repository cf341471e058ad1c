"""What a push sends: the image's manifest, with uncompressed layers swapped for gzip copies.

Images loaded from docker-save archives (and imports of plain tarballs) keep their layers as
uncompressed tars.  Registries and Docker expect gzip layers, so a push compresses each such
layer once (streamed from the content store, in a thread, into a temporary file, then into the
content store) and keeps the copy: the uncompressed blob gets a ``containerd.io/gc.ref.content``
label naming it, which both finds it for the next push and keeps it alive exactly as long as the
layer.  Compression is deterministic (zlib level 6, gzip header without name or time), so pushes
of one layer from any pouchd send the same digest.  The pushed manifest is the local one with
those layers' descriptors replaced; the config is unchanged.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import zlib

from pouch.image import archive as arc

from ..ctrd.client import Ctrd
from .image import UNCOMPRESSED_LABEL, Image

GZIP_REF_LABEL = "containerd.io/gc.ref.content.gzip"
UNCOMPRESSED_TYPES = {arc.MT_DOCKER_LAYER: arc.MT_DOCKER_LAYER_GZIP, arc.MT_OCI_LAYER: arc.MT_OCI_LAYER_GZIP}


class LayerCompressor:
    """Finds or makes the gzip copy of an uncompressed layer blob (one per daemon)."""

    def __init__(self, ctrd: Ctrd, tmp_dir: str) -> None:
        self.ctrd = ctrd
        self.tmp_dir = tmp_dir
        self._locks: dict[str, asyncio.Lock] = {}

    async def gzip_copy(self, digest: str, diff_id: str) -> tuple[str, int]:
        """(digest, size) of the gzip copy of the uncompressed blob ``digest``."""
        async with self._locks.setdefault(digest, asyncio.Lock()):
            info = await self.ctrd.content_info(digest)
            known = info.labels.get(GZIP_REF_LABEL)
            if known and await self.ctrd.content_exists(known):
                return known, (await self.ctrd.content_info(known)).size
            gz_digest, size, path = await self._compress(digest)
            try:
                async with self.ctrd.lease():  # the copy is unreferenced until the label is set
                    await self.ctrd.write_content(gz_digest, size, _read_file(path),
                                                  labels={UNCOMPRESSED_LABEL: diff_id})
                    await self.ctrd.update_content_labels(digest, {GZIP_REF_LABEL: gz_digest})
            finally:
                os.unlink(path)
            return gz_digest, size

    async def _compress(self, digest: str) -> tuple[str, int, str]:
        fd, path = _mkstemp(self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                comp = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip wrapper, no name, mtime 0
                hasher = hashlib.sha256()
                size = 0

                def put(data: bytes) -> None:
                    nonlocal size
                    if data:
                        hasher.update(data)
                        out.write(data)
                        size += len(data)
                async for chunk in self.ctrd.read_content(digest):
                    await asyncio.to_thread(lambda c=chunk: put(comp.compress(c)))
                put(comp.flush())
        except BaseException:
            os.unlink(path)
            raise
        return "sha256:" + hasher.hexdigest(), size, path


async def distribution_manifest(img: Image, manifest: bytes, compressor: LayerCompressor) -> tuple[bytes, list[str]]:
    """(manifest to push, its layer digests): ``manifest`` itself when every layer is compressed."""
    if not any(l["mediaType"] in UNCOMPRESSED_TYPES for l in img.layers):
        return manifest, [l["digest"] for l in img.layers]
    doc = json.loads(manifest)
    for layer, diff_id in zip(doc["layers"], img.diff_ids):
        if layer["mediaType"] in UNCOMPRESSED_TYPES:
            gz, size = await compressor.gzip_copy(layer["digest"], diff_id)
            layer.update(mediaType=UNCOMPRESSED_TYPES[layer["mediaType"]], digest=gz, size=size)
    return json.dumps(doc, separators=(",", ":")).encode(), [l["digest"] for l in doc["layers"]]


def _mkstemp(tmp_dir: str) -> tuple[int, str]:
    os.makedirs(tmp_dir, exist_ok=True)
    return tempfile.mkstemp(dir=tmp_dir, prefix="push-gzip-")


async def _read_file(path: str, chunk: int = 1 << 20):
    with open(path, "rb") as f:
        while data := await asyncio.to_thread(f.read, chunk):
            yield data

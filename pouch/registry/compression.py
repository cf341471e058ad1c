"""Opening a stored layer blob as an uncompressed tar stream (gzip, zstd or plain).

The registry client only moves bytes; the image manager calls ``open_layer_stream`` to unpack.
gzip comes from the stdlib, zstd from the ``zstandard`` package (PyPI). The media type decides;
for ambiguous or unknown types the first bytes (magic numbers) do.
"""

from __future__ import annotations

import gzip
import os
from typing import BinaryIO

from .errors import RegistryError
from .manifest import DOCKER_LAYER_FOREIGN, DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

_BY_TYPE = {OCI_LAYER_GZIP: "gzip", DOCKER_LAYER_GZIP: "gzip", DOCKER_LAYER_FOREIGN: "gzip",
            OCI_LAYER_ZSTD: "zstd", OCI_LAYER: "none",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd"}


def detect_compression(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def open_layer_stream(path: str | os.PathLike, media_type: str | None = None) -> BinaryIO:
    """A readable binary stream of the layer's uncompressed tar; close it when done.

    The declared media type is trusted only when the magic agrees (Docker's gzip type is
    sometimes used for uncompressed layers); otherwise the magic decides.
    """
    raw = open(path, "rb")
    head = raw.read(4)
    raw.seek(0)
    kind = detect_compression(head)
    declared = _BY_TYPE.get(media_type or "")
    if declared == "zstd" and kind not in ("zstd", "none"):
        raw.close()
        raise RegistryError(f"layer {path}: declared zstd but content is {kind}")
    try:
        if kind == "gzip":
            raw.close()
            return gzip.open(path, "rb")  # type: ignore[return-value]
        if kind == "zstd":
            try:
                import zstandard
            except ImportError:
                raise RegistryError("zstd layers need the 'zstandard' Python package") from None
            return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
    except BaseException:
        raw.close()
        raise
    return raw

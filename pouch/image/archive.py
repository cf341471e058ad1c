"""Image archives: read and write docker-save tarballs and OCI image-layout archives.

Reading yields ``ArchiveImage`` objects (config bytes, layer members, tags)
without loading layers into memory; writing builds a docker-save archive
(with OCI index.json/oci-layout beside it, as Docker 25+ does) from blobs
provided by a callback.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Callable, Iterator

from pouch.errtypes import InvalidArgument

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

MANIFEST_TYPES = (MT_DOCKER_MANIFEST, MT_OCI_MANIFEST)
INDEX_TYPES = (MT_DOCKER_LIST, MT_OCI_INDEX)


@dataclass
class ArchiveLayer:
    member: str          # path inside the archive
    media_type: str
    digest: str = ""     # sha256 of the stored bytes (filled by the reader)
    size: int = 0


@dataclass
class ArchiveImage:
    config: bytes
    layers: list[ArchiveLayer]
    tags: list[str] = field(default_factory=list)


def sha256_stream(f, bufsize: int = 1 << 20) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    while True:
        b = f.read(bufsize)
        if not b:
            break
        h.update(b)
        n += len(b)
    return "sha256:" + h.hexdigest(), n


def _sniff_layer_type(tf: tarfile.TarFile, member: str) -> str:
    f = tf.extractfile(member)
    if f is None:
        raise InvalidArgument(f"archive layer {member} is not a file")
    head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        return MT_DOCKER_LAYER_GZIP
    if head == b"\x28\xb5\x2f\xfd":
        return MT_OCI_LAYER_ZSTD
    return MT_DOCKER_LAYER


def read_archive(tf: tarfile.TarFile) -> list[ArchiveImage]:
    """Parse a docker-save or OCI archive already opened as ``tf``."""
    names = set(tf.getnames())
    if "manifest.json" in names:
        images = _read_docker(tf)
    elif "index.json" in names:
        images = _read_oci(tf)
    else:
        raise InvalidArgument("not an image archive: no manifest.json (docker-save) or index.json (OCI)")
    for img in images:
        for layer in img.layers:
            f = tf.extractfile(layer.member)
            if f is None:
                raise InvalidArgument(f"archive is missing layer {layer.member}")
            layer.digest, layer.size = sha256_stream(f)
    return images


def _json_member(tf: tarfile.TarFile, name: str):
    try:
        f = tf.extractfile(name)
    except KeyError:
        raise InvalidArgument(f"archive is missing {name}") from None
    if f is None:
        raise InvalidArgument(f"archive entry {name} is not a file")
    try:
        return json.loads(f.read())
    except ValueError as e:
        raise InvalidArgument(f"archive entry {name} is not valid JSON: {e}") from None


def _read_docker(tf: tarfile.TarFile) -> list[ArchiveImage]:
    out = []
    for entry in _json_member(tf, "manifest.json"):
        cfg_f = tf.extractfile(entry["Config"])
        if cfg_f is None:
            raise InvalidArgument(f"archive is missing config {entry['Config']}")
        config = cfg_f.read()
        layers = [ArchiveLayer(member=m, media_type=_sniff_layer_type(tf, m)) for m in entry["Layers"]]
        out.append(ArchiveImage(config=config, layers=layers, tags=list(entry.get("RepoTags") or [])))
    return out


def _blob_path(digest: str) -> str:
    algo, hexd = digest.split(":", 1)
    return f"blobs/{algo}/{hexd}"


def _read_oci(tf: tarfile.TarFile) -> list[ArchiveImage]:
    out = []
    index = _json_member(tf, "index.json")
    for desc in index.get("manifests", []):
        tags = []
        ann = desc.get("annotations") or {}
        name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
        if name:
            tags.append(name)
        manifest = _json_member(tf, _blob_path(desc["digest"]))
        if manifest.get("mediaType", desc.get("mediaType")) in INDEX_TYPES or "manifests" in manifest:
            # pick the first linux/amd64 (or first) manifest of a nested index
            subs = manifest.get("manifests", [])
            pick = next((m for m in subs if (m.get("platform") or {}).get("architecture") in ("amd64", None)), None)
            if pick is None:
                continue
            manifest = _json_member(tf, _blob_path(pick["digest"]))
        cfg_f = tf.extractfile(_blob_path(manifest["config"]["digest"]))
        if cfg_f is None:
            raise InvalidArgument("archive is missing an image config")
        layers = [ArchiveLayer(member=_blob_path(l["digest"]), media_type=l["mediaType"])
                  for l in manifest["layers"]]
        out.append(ArchiveImage(config=cfg_f.read(), layers=layers, tags=tags))
    return out


def write_docker_archive(out, images: list[dict], read_blob: Callable[[str], Iterator[bytes]]) -> None:
    """Write a docker-save archive to the binary file ``out``.

    ``images``: dicts with ``config_digest``, ``config`` (bytes), ``layers``
    (list of (digest, size, media_type)) and ``tags``; ``read_blob(digest)``
    yields a blob's bytes.  Layers are stored as they are kept (compressed or
    not), which ``docker load`` and ``pouch load`` both accept.
    """
    tf = tarfile.open(fileobj=out, mode="w|")
    written: set[str] = set()
    manifest = []

    def add_bytes(name: str, data: bytes) -> None:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mode = 0o644
        tf.addfile(ti, io.BytesIO(data))

    for img in images:
        cfg_hex = img["config_digest"].split(":", 1)[1]
        if cfg_hex not in written:
            add_bytes(f"{cfg_hex}.json", img["config"])
            written.add(cfg_hex)
        layer_names = []
        for digest, size, _mt in img["layers"]:
            hexd = digest.split(":", 1)[1]
            name = f"{hexd}/layer.tar"
            if hexd not in written:
                ti = tarfile.TarInfo(name)
                ti.size = size
                ti.mode = 0o644
                tf.addfile(ti, _IterReader(read_blob(digest)))
                written.add(hexd)
            layer_names.append(name)
        manifest.append({"Config": f"{cfg_hex}.json", "RepoTags": img["tags"] or None,
                         "Layers": layer_names})
    add_bytes("manifest.json", json.dumps(manifest).encode())
    repos: dict[str, dict[str, str]] = {}
    for img in images:
        for t in img["tags"]:
            repo, _, tag = t.rpartition(":")
            if repo:
                repos.setdefault(repo, {})[tag] = img["layers"][-1][0].split(":", 1)[1] if img["layers"] else ""
    add_bytes("repositories", json.dumps(repos).encode())
    tf.close()


class _IterReader(io.RawIOBase):
    """A file-like reader over an iterator of byte chunks (for tarfile.addfile)."""

    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = iter(it)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data

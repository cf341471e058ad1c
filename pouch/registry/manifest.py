"""Manifest media types, descriptors, and parsing of image manifests and indexes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from .errors import RegistryError, UnsupportedManifest
from .reference import validate_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

IMAGE_MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
ACCEPT = ", ".join(IMAGE_MANIFESTS + INDEXES)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about a blob or a child manifest."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: dict = field(default_factory=dict, hash=False, compare=False)
    platform: dict | None = field(default=None, hash=False, compare=False)

    @classmethod
    def from_json(cls, obj: dict) -> "Descriptor":
        try:
            return cls(obj.get("mediaType", ""), validate_digest(obj["digest"]), int(obj["size"]),
                       tuple(obj.get("urls") or ()), obj.get("annotations") or {}, obj.get("platform"))
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"malformed descriptor {obj!r}: {exc}") from None

    def to_json(self) -> dict:
        out = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform:
            out["platform"] = self.platform
        return out


def load_json(data: bytes, what: str) -> dict:
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise RegistryError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RegistryError(f"{what} is not a JSON object")
    return obj


def detect_media_type(data: bytes, content_type: str | None) -> str:
    """The manifest's media type: its ``mediaType`` field, else the Content-Type header, else guessed."""
    obj = load_json(data, "manifest")
    declared = obj.get("mediaType")
    if declared:
        return declared
    ctype = (content_type or "").split(";")[0].strip()
    if ctype in IMAGE_MANIFESTS + INDEXES:
        return ctype
    if obj.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1
    if "manifests" in obj:
        return OCI_INDEX
    if "config" in obj and "layers" in obj:
        return OCI_MANIFEST
    raise UnsupportedManifest(f"cannot tell the media type of manifest (Content-Type {ctype!r})")


def parse_image_manifest(data: bytes) -> tuple[Descriptor, list[Descriptor]]:
    """Config and layer descriptors of a schema2 or OCI image manifest."""
    obj = load_json(data, "manifest")
    if obj.get("schemaVersion") != 2:
        raise UnsupportedManifest(f"unsupported manifest schemaVersion {obj.get('schemaVersion')!r}")
    config = Descriptor.from_json(obj.get("config") or {})
    layers = [Descriptor.from_json(layer) for layer in obj.get("layers") or []]
    return config, layers


def parse_index(data: bytes) -> list[dict]:
    """The ``manifests`` entries of a manifest list / OCI index (raw JSON objects)."""
    obj = load_json(data, "manifest list")
    entries = obj.get("manifests")
    if not isinstance(entries, list):
        raise RegistryError("manifest list has no manifests array")
    return entries


def check_supported(media_type: str) -> None:
    if media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise UnsupportedManifest("Docker image manifest schema 1 is not supported; push the image with schema 2")
    if media_type not in IMAGE_MANIFESTS + INDEXES:
        raise UnsupportedManifest(f"unsupported manifest media type {media_type!r}")

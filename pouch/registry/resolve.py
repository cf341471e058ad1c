"""Resolving a reference to one image manifest: tag -> manifest (list) -> platform's manifest.

Handles Docker schema2 and OCI manifests and manifest lists / OCI indexes; every manifest's
sha256 is checked against the digest asked for and against ``Docker-Content-Digest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import DigestMismatch, NoMatchingPlatform, RegistryError
from .manifest import (ACCEPT, INDEXES, Descriptor, check_supported, detect_media_type, parse_image_manifest,
                       parse_index, sha256_digest)
from .platform import Platform, choose
from .reference import Reference
from .transport import Endpoint, Transport, raise_for_status

MANIFEST_LIMIT = 4 << 20


@dataclass(frozen=True)
class ResolvedImage:
    """What a pull needs: the platform's manifest, its config and layers, and where they came from."""

    ref: Reference
    digest: str                 # digest of the image manifest below
    media_type: str
    manifest: bytes
    config: Descriptor
    layers: list[Descriptor]
    platform: Platform
    index_digest: str | None = None   # set when ref pointed at a manifest list / OCI index
    index_media_type: str | None = None
    index: bytes | None = field(default=None, repr=False)

    @property
    def top_digest(self) -> str:
        """The digest the reference resolves to (the index if any): what ``RepoDigests`` shows."""
        return self.index_digest or self.digest

    @property
    def repo_digest(self) -> str:
        return f"{self.ref.familiar_name()}@{self.top_digest}"


async def get_manifest(transport: Transport, ep: Endpoint, repo: str, obj: str) -> tuple[bytes, str, str]:
    """Fetch one manifest by tag or digest; returns (bytes, media type, verified digest)."""
    resp = await transport.request(ep, "GET", f"/v2/{repo}/manifests/{obj}", f"repository:{repo}:pull",
                                   headers={"Accept": ACCEPT})
    await raise_for_status(resp, f"manifest {repo}:{obj}" if ":" not in obj else f"manifest {repo}@{obj}")
    async with resp:
        data = await resp.content.read(MANIFEST_LIMIT + 1)
        ctype = resp.headers.get("Content-Type")
        header_digest = resp.headers.get("Docker-Content-Digest")
    if len(data) > MANIFEST_LIMIT:
        raise RegistryError(f"manifest {repo}:{obj} larger than {MANIFEST_LIMIT} bytes")
    digest = sha256_digest(data)
    if obj.startswith("sha256:") and digest != obj:
        raise DigestMismatch(obj, digest, what="manifest")
    if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
        raise DigestMismatch(header_digest, digest, what="manifest")
    media_type = detect_media_type(data, ctype)
    check_supported(media_type)
    return data, media_type, digest


async def resolve_at(transport: Transport, ep: Endpoint, ref: Reference, platform: Platform) -> ResolvedImage:
    data, media_type, digest = await get_manifest(transport, ep, ref.path, ref.object)
    index = index_type = index_digest = None
    if media_type in INDEXES:
        entries = parse_index(data)
        entry = choose(entries, platform)
        if entry is None:
            have = sorted({"/".join(filter(None, (p.get("os"), p.get("architecture"), p.get("variant"))))
                           for p in (e.get("platform") or {} for e in entries)} - {""})
            raise NoMatchingPlatform(f"{ref.familiar()}: no manifest for platform {platform} "
                                     f"(available: {', '.join(have) or 'none'})")
        index, index_type, index_digest = data, media_type, digest
        child = Descriptor.from_json(entry)
        data, media_type, digest = await get_manifest(transport, ep, ref.path, child.digest)
        if media_type in INDEXES:
            raise RegistryError(f"{ref.familiar()}: nested manifest lists are not supported")
    config, layers = parse_image_manifest(data)
    return ResolvedImage(ref, digest, media_type, data, config, layers, platform,
                         index_digest, index_type, index)

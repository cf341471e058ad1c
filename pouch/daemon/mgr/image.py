"""The image manager: images kept in containerd (content + image records + snapshots).

containerd is the source of truth: an image is a containerd image record
named by its full reference (``docker.io/library/busybox:latest``) pointing
at a manifest in the content store.  This manager keeps an in-memory index
by image id (the config digest), ingests archives (docker-save, OCI, rootfs
tarballs), unpacks layers into overlayfs snapshots through containerd's diff
service, and answers lookups by name, id prefix or digest.
"""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass, field

from pouch.errtypes import Conflict, InUse, InvalidArgument, NotFound, Unavailable
from pouch.image import archive as arc
from pouch.registry.reference import parse_reference

from ..ctrd.client import Ctrd, descriptor
from ..events.exchange import EventExchange
from .unpack import LayerUnpacker

log = logging.getLogger(__name__)

GC_SNAPSHOT_LABEL = "containerd.io/gc.ref.snapshot.{}"  # .format(snapshotter)
UNCOMPRESSED_LABEL = "containerd.io/uncompressed"


@dataclass
class Image:
    id: str                          # config digest
    config: dict
    manifest_digest: str
    manifest_media_type: str
    layers: list[dict]               # {"digest","size","mediaType"}
    names: set[str] = field(default_factory=set)   # full references
    created_ns: int = 0
    index_digest: str = ""           # the manifest list / OCI index the image was pulled by, if any

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    @property
    def chain_id(self) -> str:
        return chain_ids(self.diff_ids)[-1] if self.diff_ids else ""

    @property
    def size(self) -> int:
        return sum(l["size"] for l in self.layers)

    @property
    def repo_tags(self) -> list[str]:
        return sorted(parse_reference(n).familiar() for n in self.names if "@" not in n)

    @property
    def repo_digests(self) -> list[str]:
        out = set()
        for n in self.names:
            r = parse_reference(n)
            out.add(f"{r.familiar_name()}@{self.index_digest or self.manifest_digest}")
        return sorted(out)


def created_seconds(stamp: str | None) -> int:
    """An image config's (or history entry's) RFC 3339 ``created`` as Unix seconds; 0 if unreadable."""
    from .container_model import parse_rfc3339
    try:
        return int(parse_rfc3339(stamp or ""))
    except ValueError:
        return 0


def image_summary(img: Image, containers: int) -> dict:
    """One entry of ``GET /images/json`` (and of ``/system/df``'s images)."""
    cfg = img.config.get("config") or {}
    return {"Id": img.id, "ParentId": "", "RepoTags": img.repo_tags or [], "RepoDigests": img.repo_digests,
            "Created": created_seconds(img.config.get("created")), "Size": img.size, "VirtualSize": img.size, "SharedSize": -1,
            "Labels": cfg.get("Labels") or {}, "Containers": containers}


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def full_name(name: str) -> str:
    """Normalise a user's image name to the full reference containerd stores."""
    return str(parse_reference(name))


class ImageManager:
    def __init__(self, ctrd: Ctrd, events: EventExchange, tmp_dir: str) -> None:
        self.ctrd = ctrd
        self.events = events
        self.tmp_dir = tmp_dir
        self.by_id: dict[str, Image] = {}
        self.by_name: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self.unpacker = LayerUnpacker(ctrd)
        os.makedirs(tmp_dir, exist_ok=True)

    # -- index ------------------------------------------------------------
    async def restore(self) -> None:
        """Rebuild the index from containerd's image records."""
        for rec in await self.ctrd.image_list():
            try:
                img = await self._read_image(rec.target.digest, rec.target.media_type)
            except Exception as e:  # a broken record must not stop the daemon
                log.warning("skipping image %s: %s", rec.name, e)
                continue
            img.created_ns = rec.created_at.seconds * 1_000_000_000 + rec.created_at.nanos
            self._index(img, rec.name)

    def _index(self, img: Image, name: str | None) -> Image:
        cur = self.by_id.get(img.id)
        if cur is None:
            self.by_id[img.id] = cur = img
        if name:
            old = self.by_name.get(name)
            if old and old != img.id and old in self.by_id:
                self.by_id[old].names.discard(name)
            cur.names.add(name)
            self.by_name[name] = img.id
        return cur

    async def _read_image(self, manifest_digest: str, media_type: str) -> Image:
        manifest = json.loads(await self.ctrd.read_blob(manifest_digest))
        mt = manifest.get("mediaType", media_type)
        index_digest = ""
        if mt in arc.INDEX_TYPES or "manifests" in manifest:
            index_digest = manifest_digest
            pick = _pick_platform(manifest.get("manifests", []))
            manifest_digest, mt = pick["digest"], pick.get("mediaType", arc.MT_OCI_MANIFEST)
            manifest = json.loads(await self.ctrd.read_blob(manifest_digest))
        cfg_digest = manifest["config"]["digest"]
        config = json.loads(await self.ctrd.read_blob(cfg_digest))
        return Image(id=cfg_digest, config=config, manifest_digest=manifest_digest,
                     manifest_media_type=mt, layers=[dict(digest=l["digest"], size=l["size"],
                                                          mediaType=l["mediaType"])
                                                     for l in manifest["layers"]],
                     index_digest=index_digest)

    def get(self, ref: str) -> Image:
        """Find an image by name, full id, short id prefix or name@digest."""
        if not ref:
            raise InvalidArgument("image name must not be empty")
        hexref = ref[7:] if ref.startswith("sha256:") else ref
        if all(c in "0123456789abcdef" for c in hexref) and len(hexref) >= 4 \
                and (ref.startswith("sha256:") or len(hexref) >= 12 or ":" not in ref):
            hits = [i for i in self.by_id if i[7:].startswith(hexref)]
            if len(hits) == 1:
                return self.by_id[hits[0]]
            if len(hits) > 1 and len(hexref) < 64:
                raise InvalidArgument(f"image id prefix {ref} is ambiguous")
        try:
            r = parse_reference(ref)
        except Exception:
            raise NotFound(f"No such image: {ref}", "image", ref) from None
        if r.digest:
            for img in self.by_id.values():
                if r.digest in (img.manifest_digest, img.index_digest) and any(n.startswith(r.name + ":") or n.startswith(r.name + "@")
                                                           for n in img.names):
                    return img
            raise NotFound(f"No such image: {ref}", "image", ref)
        iid = self.by_name.get(str(r))
        if iid is None:
            raise NotFound(f"No such image: {ref}", "image", ref)
        return self.by_id[iid]

    def list(self) -> list[Image]:
        return list(self.by_id.values())

    # -- ingest -------------------------------------------------------------
    async def load_archive(self, path: str, quiet: bool = True, name: str | None = None) -> list[str]:
        """Load a docker-save or OCI archive; returns 'Loaded image: x' lines.  ``name`` (Pouch's
        ``load -i FILE NAME``) names the archive's images that carry no name of their own."""
        if name:
            try:
                name = full_name(name)
            except Exception as e:
                raise InvalidArgument(f"invalid image name {name!r}: {e}") from None
        try:
            tf = tarfile.open(path, mode="r:*")
        except tarfile.TarError as e:
            raise InvalidArgument(f"invalid image archive: {e}") from None
        lines = []
        with tf:
            images = await asyncio.to_thread(arc.read_archive, tf)
            for ai in images:
                layers = [(l.digest, l.size, l.media_type, _member_reader(tf, l.member))
                          for l in ai.layers]
                names = [full_name(t) for t in ai.tags] or ([name] if name else [])
                img = await self.ingest(ai.config, layers, names)
                if names:
                    lines += [f"Loaded image: {parse_reference(n).familiar()}" for n in names]
                else:
                    lines.append(f"Loaded image ID: {img.id}")
        return lines

    async def import_rootfs(self, path: str, repo_tag: str | None, changes: dict | None = None,
                            message: str = "") -> Image:
        """Make a one-layer image from a rootfs tarball (optionally gzip-compressed)."""
        compressed, diff_id, digest, size = await asyncio.to_thread(_hash_rootfs, path)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        config = {"architecture": "amd64", "os": "linux", "created": now,
                  "config": dict(changes or {}),
                  "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                  "history": [{"created": now, "comment": message or "Imported from tarball"}]}
        mt = arc.MT_DOCKER_LAYER_GZIP if compressed else arc.MT_DOCKER_LAYER
        names = [full_name(repo_tag)] if repo_tag else []
        return await self.ingest(json.dumps(config).encode(), [(digest, size, mt, _file_reader(path))], names)

    async def ingest(self, config: bytes, layers: list[tuple], names: list[str]) -> Image:
        """Store config + layers + a schema2 manifest in containerd, unpack, and name the image.

        ``layers``: (digest, size, media_type, reader) where reader() yields byte chunks.
        """
        try:
            cfg = json.loads(config)
            diff_ids = cfg["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise InvalidArgument("image config is invalid: missing rootfs.diff_ids") from None
        if len(diff_ids) != len(layers):
            raise InvalidArgument(f"image config names {len(diff_ids)} layers, archive has {len(layers)}")
        cfg_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        manifest = {
            "schemaVersion": 2, "mediaType": arc.MT_DOCKER_MANIFEST,
            "config": {"mediaType": arc.MT_DOCKER_CONFIG, "digest": cfg_digest, "size": len(config)},
            "layers": [{"mediaType": mt, "digest": d, "size": s} for d, s, mt, _ in layers],
        }
        mbytes = json.dumps(manifest, separators=(",", ":")).encode()
        async with self._lock, self.ctrd.lease():
            for (d, s, mt, reader), diff_id in zip(layers, diff_ids):
                if not await self.ctrd.content_exists(d):
                    await self.ctrd.write_content(d, s, _aiter_thread(reader),
                                                  labels={UNCOMPRESSED_LABEL: diff_id})
            return await self.store_image(config, cfg, mbytes, arc.MT_DOCKER_MANIFEST,
                                          [(d, s, mt) for d, s, mt, _ in layers], names)

    async def store_image(self, config: bytes, cfg: dict, manifest: bytes, manifest_media_type: str,
                          layers: list[tuple[str, int, str]], names: list[str], *,
                          index: tuple[str, bytes] | None = None, event: str = "load") -> Image:
        """Make an image whose layer blobs are in the content store: config, manifest (and index)
        blobs with GC labels, layers unpacked into snapshots, one image record per name, indexed.

        Call inside ``ctrd.lease()``.  ``index``: (media type, bytes) of the manifest list the
        image was pulled by; the records then point at it.  Unnamed images get a record named
        by their id so they stay alive (dangling).
        """
        diff_ids = cfg["rootfs"]["diff_ids"]
        cfg_digest = _sha256(config)
        m_digest = _sha256(manifest)
        chains = chain_ids(diff_ids)
        await self.put_blob(cfg_digest, config, {GC_SNAPSHOT_LABEL.format(self.ctrd.snapshotter): chains[-1]} if chains else {})
        m_labels = {"containerd.io/gc.ref.content.config": cfg_digest}
        m_labels.update({f"containerd.io/gc.ref.content.l.{i}": d for i, (d, *_r) in enumerate(layers)})
        await self.put_blob(m_digest, manifest, m_labels)
        target = descriptor(manifest_media_type, m_digest, len(manifest))
        index_digest = ""
        if index is not None:
            index_digest = _sha256(index[1])
            await self.put_blob(index_digest, index[1], {"containerd.io/gc.ref.content.m.0": m_digest})
            target = descriptor(index[0], index_digest, len(index[1]))
        await self._unpack(layers, diff_ids)
        img = Image(id=cfg_digest, config=cfg, manifest_digest=m_digest,
                    manifest_media_type=manifest_media_type,
                    layers=[dict(digest=d, size=s, mediaType=mt) for d, s, mt in layers],
                    created_ns=time.time_ns(), index_digest=index_digest)
        cur = self.by_id.get(img.id)
        moved = set()
        if cur is not None and (cur.manifest_digest, cur.index_digest) != (m_digest, index_digest):
            # one manifest per image id: the same config arrived by another manifest (a pull of
            # what a push compressed, another registry): every name of the id moves to the new
            # one, so no record keeps the old manifest alive while the index points elsewhere
            moved = set(cur.names) or {cfg_digest}
            cur.manifest_digest, cur.manifest_media_type = m_digest, manifest_media_type
            cur.index_digest, cur.layers = index_digest, img.layers
        for n in {*(names or [cfg_digest]), *moved}:  # unnamed images: a dangling record named by id
            await self.ctrd.image_put(n, target)
        img = self._index(img, None)
        for n in names:
            self._index(img, n)
            self.events.publish("image", event, img.id, {"name": parse_reference(n).familiar()})
        return img

    async def put_blob(self, digest: str, data: bytes, labels: dict[str, str]) -> None:
        """Store a small blob (config, manifest) with ``labels``; if present, add missing labels.

        Concurrent writers of one blob are fine.
        """
        try:
            info = await self.ctrd.content_info(digest)
        except NotFound:
            try:
                await self.ctrd.write_content(digest, len(data), [data], labels=labels)
                return
            except Unavailable:  # another writer holds the ingest ref: it is writing the same bytes
                for _ in range(50):
                    await asyncio.sleep(0.02)
                    if await self.ctrd.content_exists(digest):
                        break
                else:
                    raise
            info = await self.ctrd.content_info(digest)
        missing = {k: v for k, v in labels.items() if info.labels.get(k) != v}
        if missing:
            await self.ctrd.update_content_labels(digest, missing)

    async def _unpack(self, layers: list[tuple[str, int, str]], diff_ids: list[str]) -> None:
        chains = chain_ids(diff_ids)
        if chains and await self.ctrd.snapshot_exists(chains[-1]):
            return
        await self.unpacker.unpack_all(layers, diff_ids, chains)

    async def ensure_unpacked(self, img: Image) -> None:
        if img.chain_id and not await self.ctrd.snapshot_exists(img.chain_id):
            async with self.ctrd.lease():
                await self._unpack([(l["digest"], l["size"], l["mediaType"]) for l in img.layers], img.diff_ids)

    # -- naming and removal ---------------------------------------------------
    async def tag(self, source: str, target: str, force: bool = False) -> Image:
        """Pouch's AddTag: no digest in the target, no digest algorithm as its name, and no
        moving a name that already names another image (unless ``force``)."""
        img = self.get(source)
        ref = parse_reference(target)
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
        if ref.path.rsplit("/", 1)[-1] in ("sha256", "sha384", "sha512"):
            raise InvalidArgument(f"refusing to create an reference using digest algorithm as name: {target}")
        name = str(ref)
        other = self.by_name.get(name)
        if other and other != img.id and other in self.by_id and not force:
            raise InvalidArgument(f"the tag reference ({ref.familiar()}) has been used as reference of image "
                                  f"{other[7:19]}: remove it first, or tag with force")
        target_desc = descriptor(img.manifest_media_type, img.manifest_digest, 0)
        rec_size = len(await self.ctrd.read_blob(img.manifest_digest))
        target_desc.size = rec_size
        await self.ctrd.image_put(name, target_desc)
        self._index(img, name)
        self.events.publish("image", "tag", img.id, {"name": parse_reference(name).familiar()})
        return img

    async def remove(self, ref: str, force: bool, users: list[str], collect: bool = True) -> list[dict]:
        """Untag or delete; ``users`` are containers using the image (refused unless force).

        A deleted image's blobs and snapshots are gone from disk when this returns (containerd's
        collector runs before), as with ``docker rmi``; ``collect=False`` leaves that to the caller.
        """
        img = self.get(ref)
        out: list[dict] = []
        by_name = None
        try:
            r = parse_reference(ref)
            if str(r) in img.names:
                by_name = str(r)
        except Exception:
            pass
        if by_name and len(img.names) > 1:
            await self._untag(img, by_name)
            return [{"Untagged": parse_reference(by_name).familiar()}]
        if users and not force:
            raise InUse(f"conflict: unable to remove image {ref} (must force) - image is being used "
                        f"by container {users[0][:12]}")
        if by_name is None and len(img.names) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {img.id[7:19]} (must be forced) - image is "
                           f"referenced in multiple repositories")
        for n in sorted(img.names):
            await self._untag(img, n)
            out.append({"Untagged": parse_reference(n).familiar() if "@" not in n else n})
        try:
            await self.ctrd.image_delete(f"sha256:{img.id[7:]}")
        except NotFound:
            pass
        self.by_id.pop(img.id, None)
        if collect:
            await self.ctrd.collect_garbage()
        out.append({"Deleted": img.id})
        self.events.publish("image", "delete", img.id, {})
        return out

    async def _untag(self, img: Image, name: str) -> None:
        try:
            await self.ctrd.image_delete(name)
        except NotFound:
            pass
        img.names.discard(name)
        self.by_name.pop(name, None)
        self.events.publish("image", "untag", img.id, {"name": name})

    async def save(self, refs: list[str], out) -> None:
        """Write a docker-save archive of ``refs`` to the binary file ``out`` (in a thread)."""
        entries = []
        for ref in refs:
            img = self.get(ref)
            cfg_bytes = await self.ctrd.read_blob(img.id)
            tags = []
            try:
                r = parse_reference(ref)
                if str(r) in img.names:
                    tags = [r.familiar()]
            except Exception:
                pass
            if not tags and not ref.startswith("sha256:"):
                tags = img.repo_tags
            entries.append({"config_digest": img.id, "config": cfg_bytes, "tags": tags,
                            "layers": [(l["digest"], l["size"], l["mediaType"]) for l in img.layers]})
        loop = asyncio.get_running_loop()

        def read_blob(digest):
            agen = self.ctrd.read_content(digest)
            while True:
                fut = asyncio.run_coroutine_threadsafe(_anext(agen), loop)
                chunk = fut.result()
                if chunk is None:
                    return
                yield chunk

        await asyncio.to_thread(arc.write_docker_archive, out, entries, read_blob)

    def tmpfile(self) -> str:
        fd, path = tempfile.mkstemp(dir=self.tmp_dir, prefix="upload-")
        os.close(fd)
        return path

    def inspect(self, img: Image) -> dict:
        cfg = img.config
        c = cfg.get("config") or {}
        return {
            "Id": img.id, "RepoTags": img.repo_tags, "RepoDigests": img.repo_digests,
            "Parent": "", "Comment": (cfg.get("history") or [{}])[-1].get("comment", ""),
            "Created": cfg.get("created", ""), "Container": "", "ContainerConfig": {},
            "DockerVersion": "", "Author": cfg.get("author", ""), "Config": _image_config(c),
            "Architecture": cfg.get("architecture", "amd64"), "Os": cfg.get("os", "linux"),
            "Variant": cfg.get("variant", ""),
            "Size": img.size, "VirtualSize": img.size,
            "GraphDriver": {"Name": self.ctrd.snapshotter, "Data": {}},
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        }


def _image_config(c: dict) -> dict:
    keys = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
            "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes",
            "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal"]
    out = {k: c.get(k) for k in keys}
    out["Hostname"] = out["Hostname"] or ""
    out["WorkingDir"] = out["WorkingDir"] or ""
    out["User"] = out["User"] or ""
    return out


def _pick_platform(manifests: list[dict]) -> dict:
    for m in manifests:
        p = m.get("platform") or {}
        if p.get("os", "linux") == "linux" and p.get("architecture", "amd64") == "amd64":
            return m
    if not manifests:
        raise NotFound("image index has no manifests")
    return manifests[0]


def _chunks(f):
    while True:
        b = f.read(1 << 20)
        if not b:
            return
        yield b


def _member_reader(tf: tarfile.TarFile, member: str):
    return lambda: _chunks(tf.extractfile(member))


def _hash_rootfs(path: str) -> tuple[bool, str, str, int]:
    """A rootfs tarball's (compressed?, diff id, digest, size), checking it is a tar (a thread's job)."""
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    opener = (lambda: gzip.open(path, "rb")) if compressed else (lambda: open(path, "rb"))
    try:
        with opener() as f:
            diff_id, _ = arc.sha256_stream(f)
        with opener() as f:
            tarfile.open(fileobj=f, mode="r|").next()
    except (OSError, tarfile.TarError, EOFError) as e:
        raise InvalidArgument(f"import: not a tar archive: {e}") from None
    if not compressed:
        return compressed, diff_id, diff_id, os.path.getsize(path)
    with open(path, "rb") as f:
        digest, size = arc.sha256_stream(f)
    return compressed, diff_id, digest, size


def _file_reader(path: str):
    def reader():
        with open(path, "rb") as f:
            yield from _chunks(f)
    return reader


async def _aiter_thread(reader):
    """Iterate a blocking chunk generator without blocking the event loop for long."""
    it = reader()
    while True:
        chunk = await asyncio.to_thread(next, it, None)
        if chunk is None:
            return
        yield chunk


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _anext(agen):
    try:
        return await agen.__anext__()
    except StopAsyncIteration:
        return None


def config_changes(changes: list[str]) -> dict:
    """Dockerfile-like --change lines (import, commit): CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE."""
    cfg: dict = {}
    for ch in changes:
        word, _, rest = ch.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        val = json.loads(rest) if rest.startswith("[") else None
        if word in ("CMD", "ENTRYPOINT"):
            cfg["Cmd" if word == "CMD" else "Entrypoint"] = val if val is not None else ["/bin/sh", "-c", rest]
        elif word == "ENV":
            k, _, v = rest.replace("=", " ", 1).partition(" ")
            cfg.setdefault("Env", []).append(f"{k}={v.strip()}")
        elif word == "WORKDIR":
            cfg["WorkingDir"] = rest
        elif word == "USER":
            cfg["User"] = rest
        elif word == "LABEL":
            k, _, v = rest.partition("=")
            cfg.setdefault("Labels", {})[k] = v.strip('"')
        elif word == "EXPOSE":
            cfg.setdefault("ExposedPorts", {})[rest if "/" in rest else rest + "/tcp"] = {}
        else:
            raise InvalidArgument(f"{word} is not a valid change command")
    return cfg

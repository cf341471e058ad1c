"""ImageManager's index and SandboxHooks' network rules against fakes (no root, no containerd)."""
from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest

from pouch.daemon.events.exchange import EventExchange
from pouch.daemon.mgr.image import ImageManager, config_changes
from pouch.daemon.mgr.sandbox import SandboxHooks
from pouch.errtypes import Conflict, InvalidArgument, NotFound

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class FakeContent:
    """containerd's content store and image records, as ImageManager.restore reads them."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.records: list[SimpleNamespace] = []

    def put(self, obj) -> str:
        data = json.dumps(obj).encode()
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[d] = data
        return d

    def image(self, name: str, arch: str = "amd64", layer: str = "a", index: bool = False) -> str:
        cfg = self.put({"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"], "Layer": layer},
                        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer * 64]}})
        man = self.put({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg},
                        "layers": [{"mediaType": "x", "digest": "sha256:" + layer * 64, "size": 1}]})
        target, mt = man, OCI_MANIFEST
        if index:
            other = self.put({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": "sha256:" + "9" * 64},
                              "layers": []})
            target = self.put({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"digest": other, "mediaType": OCI_MANIFEST, "platform": {"architecture": "s390x", "os": "linux"}},
                {"digest": man, "mediaType": OCI_MANIFEST, "platform": {"architecture": "amd64", "os": "linux"}}]})
            mt = OCI_INDEX
        self.records.append(SimpleNamespace(name=name, target=SimpleNamespace(digest=target, media_type=mt),
                                            created_at=SimpleNamespace(seconds=1_700_000_000, nanos=5)))
        return cfg

    async def image_list(self):
        return self.records

    async def read_blob(self, digest: str) -> bytes:
        if digest not in self.blobs:
            raise NotFound(f"content digest {digest}: not found")
        return self.blobs[digest]


async def test_image_index_restored_from_containerd_and_looked_up(tmp_path):
    ctrd = FakeContent()
    a = ctrd.image("docker.io/library/busybox:latest", layer="a")
    ctrd.image("docker.io/library/busybox:1.36", layer="a")  # same config: one image, two names
    b = ctrd.image("docker.io/library/multi:latest", layer="b", index=True)
    ctrd.records.append(SimpleNamespace(name="docker.io/library/broken:1",
                                        target=SimpleNamespace(digest="sha256:" + "0" * 64, media_type=OCI_MANIFEST),
                                        created_at=SimpleNamespace(seconds=0, nanos=0)))
    images = ImageManager(ctrd, EventExchange(), str(tmp_path / "tmp"))
    await images.restore()
    assert len(images.list()) == 2  # the broken record is skipped, not fatal
    img = images.get("busybox")
    assert img.id == a and images.get("busybox:1.36") is img and images.get(a[7:19]) is img
    assert img.names == {"docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"}
    multi = images.get("multi")
    assert multi.id == b and multi.index_digest  # the amd64 entry of the index was picked
    assert images.get(f"multi@{multi.index_digest}") is multi
    with pytest.raises(NotFound):
        images.get("busybox:nope")
    with pytest.raises(InvalidArgument):
        images.get("")


def test_config_changes_parse_dockerfile_lines():
    cfg = config_changes(['CMD ["sh", "-c", "x"]', "ENV A=1", "WORKDIR /w", "EXPOSE 80", "LABEL k=\"v\""])
    assert cfg == {"Cmd": ["sh", "-c", "x"], "Env": ["A=1"], "WorkingDir": "/w",
                   "ExposedPorts": {"80/tcp": {}}, "Labels": {"k": "v"}}
    with pytest.raises(InvalidArgument):
        config_changes(["RUN rm -rf /"])


class FakeNetwork:
    def __init__(self) -> None:
        self.netns: list[str] = []
        self.released: list[str] = []

    async def create_netns(self, cid: str) -> str:
        self.netns.append(cid)
        return f"/run/netns/{cid}"

    async def release(self, cid: str) -> None:
        self.released.append(cid)


def _c(cid: str, mode: str, status: str = "created"):
    meta = {"Id": cid, "Name": cid, "Config": {}, "HostConfig": {"NetworkMode": mode},
            "State": {"Status": status}, "NetworkSettings": {}}
    return SimpleNamespace(id=cid, name=cid, meta=meta, config=meta["Config"], host_config=meta["HostConfig"],
                           running=status in ("running", "paused"))


async def test_sandbox_network_modes_and_the_container_lookup(tmp_path):
    net = FakeNetwork()
    others = {"db": _c("db", "default", "exited"), "web": _c("web", "default", "running")}

    def lookup(ref):
        if ref not in others:
            raise NotFound(f"No such container: {ref}")
        return others[ref]

    hooks = SandboxHooks(net, volumes=None, containers_dir=str(tmp_path), lookup=lookup)
    assert await hooks.before_start(_c("h1", "host")) is None and not net.netns
    none = _c("n1", "none")
    assert await hooks.before_start(none) is None
    assert none.meta["NetworkSettings"]["SandboxKey"] == "/run/netns/n1"
    with pytest.raises(Conflict):
        await hooks.before_start(_c("j1", "container:db"))  # db is not running
    assert await hooks.before_start(_c("j2", "container:web")) is None
    with pytest.raises(NotFound):
        await hooks.before_start(_c("j3", "container:nope"))
    await hooks.after_stop(none)
    await hooks.release_network(none)  # waits for the release the stop began
    assert net.released.count("n1") == 2 and none.meta["NetworkSettings"]["SandboxKey"] == ""

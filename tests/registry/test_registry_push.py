"""Pushing with our own client to a real docker-registry, checked with skopeo and by pulling back."""

from __future__ import annotations

import subprocess

import pytest

from pouch.registry import DirSink, State
from pouch.registry.manifest import OCI_INDEX, OCI_MANIFEST

pytestmark = pytest.mark.integration


def skopeo_digest(ref: str) -> str:
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         check=True, capture_output=True).stdout
    import hashlib

    return "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("chunk", [None, 300 * 1024], ids=["monolithic", "chunked"])
async def test_push_then_pull_back(plain_registry, image, make_client, tmp_path, chunk):
    host = plain_registry.host
    client = make_client(insecure_registries=[host], upload_chunk_size=chunk)
    src = DirSink(image.layout / "blobs")  # an OCI layout's blobs/sha256/<hex> is a DirSink
    manifest = image.blob(image.top_digest)
    repo = f"{host}/pushed/{'mono' if chunk is None else 'chunk'}"
    events = []
    digest = await client.push(f"{repo}:v2", manifest, OCI_MANIFEST, src, progress=events.append)
    assert digest == image.top_digest == skopeo_digest(f"{repo}:v2")
    assert len({e.digest for e in events if e.state == State.PUSHED}) == 4  # config + 3 layers, new repo
    pulled = DirSink(tmp_path / "pulled")
    resolved = await client.pull(f"{repo}:v2", pulled)
    for d in resolved.layers:
        assert pulled.path(d.digest).read_bytes() == image.blob(d.digest)
    assert await client.list_tags(repo) == ["v2"]
    # pushing again finds every blob already there
    events.clear()
    await client.push(f"{repo}:v3", manifest, OCI_MANIFEST, src, progress=events.append)
    assert {e.state for e in events} == {State.EXISTS}
    assert sorted(await client.list_tags(repo)) == ["v2", "v3"]


async def test_push_mounts_from_other_repository(plain_registry, image, make_client):
    host = plain_registry.host
    client = make_client(insecure_registries=[host])
    src = DirSink(image.layout / "blobs")
    events = []
    await client.push(f"{host}/pushed/mounted:v1", image.blob(image.top_digest), OCI_MANIFEST, src,
                      progress=events.append, mount_from=("test/app",))
    states = {e.digest: e.state for e in events}
    assert set(states.values()) == {State.MOUNTED}
    assert len(states) == 4
    assert skopeo_digest(f"{host}/pushed/mounted:v1") == image.top_digest


async def test_push_index(plain_registry, multi_image, make_client):
    host = plain_registry.host
    client = make_client(insecure_registries=[host])
    src = DirSink(multi_image.layout / "blobs")
    digest = await client.push(f"{host}/pushed/multi:v1", multi_image.blob(multi_image.top_digest), OCI_INDEX, src)
    assert digest == multi_image.top_digest
    arm = await client.resolve(f"{host}/pushed/multi:v1", "linux/arm64")
    assert arm.digest == multi_image.manifests["linux/arm64/v8"]["digest"]


async def test_search_uses_catalog(plain_registry, image, make_client):
    client = make_client(insecure_registries=[plain_registry.host])
    hits = await client.search(plain_registry.host, "app")
    assert "test/app" in [h["name"] for h in hits]
    assert all("app" in h["name"] for h in hits)
    assert await client.search(plain_registry.host, "no-such-thing") == []

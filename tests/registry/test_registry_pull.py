"""Pulling from a real docker-registry: resolve, verify, platforms, corruption, resume, dedup."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tarfile

import pytest

from pouch.registry import (DigestMismatch, DirSink, NoMatchingPlatform, NotFound, State, open_layer_stream,
                            parse_reference)

pytestmark = pytest.mark.integration


async def test_pull_resolves_and_stores_verified_blobs(plain_registry, image, make_client, tmp_path):
    client = make_client(insecure_registries=[plain_registry.host])
    sink = DirSink(tmp_path / "blobs")
    events = []
    resolved = await client.pull(image.ref, sink, progress=events.append)

    want = image.manifests["linux/amd64"]
    assert resolved.digest == want["digest"] == image.top_digest
    assert resolved.config.digest == want["config"]
    assert [d.digest for d in resolved.layers] == want["layers"]
    for digest in [want["config"], *want["layers"], want["digest"]]:
        data = sink.path(digest).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
        assert data == image.blob(digest)
    # the whiteout layer unpacks as a tar with the .wh. entry
    with open_layer_stream(sink.path(want["layers"][1]), resolved.layers[1].media_type) as stream:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            assert "etc/.wh.removed" in [m.name for m in tar]
    states = {(e.digest, e.state) for e in events}
    for digest in want["layers"]:
        assert (digest, State.DONE) in states
    big = want["layers"][2]
    progress = [e.current for e in events if e.digest == big and e.state == State.DOWNLOADING]
    assert progress == sorted(progress) and progress[-1] == want["layer_sizes"][2]

    # a second pull finds everything in the sink
    events.clear()
    await client.pull(image.ref, sink, progress=events.append)
    assert {e.state for e in events} == {State.EXISTS}


async def test_pull_by_digest_and_missing_tag(plain_registry, image, make_client, tmp_path):
    client = make_client(insecure_registries=[plain_registry.host])
    by_digest = await client.resolve(f"{plain_registry.host}/test/app@{image.top_digest}")
    assert by_digest.digest == image.top_digest
    with pytest.raises(NotFound):
        await client.resolve(f"{plain_registry.host}/test/app:nope")
    with pytest.raises(NotFound):
        await client.resolve(f"{plain_registry.host}/test/absent:v1")


async def test_manifest_list_picks_platform(plain_registry, multi_image, make_client, tmp_path):
    client = make_client(insecure_registries=[plain_registry.host])
    amd = await client.resolve(multi_image.ref, "linux/amd64")
    arm = await client.resolve(multi_image.ref, "linux/arm64/v8")
    arm_novariant = await client.resolve(multi_image.ref, "linux/arm64")
    assert amd.digest == multi_image.manifests["linux/amd64"]["digest"]
    assert arm.digest == arm_novariant.digest == multi_image.manifests["linux/arm64/v8"]["digest"]
    assert amd.index_digest == arm.index_digest == multi_image.top_digest
    assert amd.digest != arm.digest
    with pytest.raises(NoMatchingPlatform, match="linux/s390x"):
        await client.resolve(multi_image.ref, "linux/s390x")
    sink = DirSink(tmp_path / "b")
    await client.pull(multi_image.ref, sink, platform="linux/arm64")
    assert b'"architecture": "arm64"' in sink.path(multi_image.manifests["linux/arm64/v8"]["config"]).read_bytes()


async def test_corrupted_blob_is_refused_naming_digest(plain_registry, make_client, tmp_path, tmp_path_factory):
    from tests.fixtures.registry import build_oci_layout, skopeo_push

    img = build_oci_layout(tmp_path_factory.mktemp("corrupt") / "layout", "v1", big_layer=4096, seed=99)
    skopeo_push(img, f"{plain_registry.host}/test/corrupt:v1")
    victim = img.manifests["linux/amd64"]["layers"][2]
    path = plain_registry.blob_path(victim)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    client = make_client(insecure_registries=[plain_registry.host])
    sink = DirSink(tmp_path / "b")
    with pytest.raises(DigestMismatch) as info:
        await client.pull(f"{plain_registry.host}/test/corrupt:v1", sink)
    assert victim in str(info.value)
    assert not await sink.has(victim)
    assert await sink.offset(victim) == 0  # the bad bytes were discarded


async def test_resume_after_dropped_connection(plain_registry, image, make_client, proxy_factory, tmp_path):
    proxy = await proxy_factory(plain_registry.url)
    big = image.manifests["linux/amd64"]["layers"][2]
    size = image.manifests["linux/amd64"]["layer_sizes"][2]
    proxy.cut_once.add(big)
    client = make_client(insecure_registries=[proxy.host])
    sink = DirSink(tmp_path / "b")
    events = []
    await client.pull(f"{proxy.host}/test/app:v1", sink, progress=events.append)

    assert sink.path(big).read_bytes() == image.blob(big)
    ranges = [r for d, r in proxy.ranges if d == big]
    assert len(ranges) == 2 and ranges[0] is None
    start = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < start < size and ranges[1] == f"bytes={start}-"
    assert any(e.digest == big and e.state == State.RETRYING for e in events)


async def test_resume_from_partial_left_by_earlier_pull(plain_registry, image, make_client, proxy_factory, tmp_path):
    proxy = await proxy_factory(plain_registry.url)
    big = image.manifests["linux/amd64"]["layers"][2]
    sink = DirSink(tmp_path / "b")
    partial = sink.path(big).with_suffix(".partial")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(image.blob(big)[:1000])
    client = make_client(insecure_registries=[proxy.host])
    await client.pull(f"{proxy.host}/test/app:v1", sink)
    assert sink.path(big).read_bytes() == image.blob(big)
    assert [r for d, r in proxy.ranges if d == big] == ["bytes=1000-"]
    assert not partial.exists()


async def test_concurrent_pulls_download_each_blob_once(plain_registry, image, make_client, proxy_factory,
                                                       tmp_path):
    proxy = await proxy_factory(plain_registry.url)
    client = make_client(insecure_registries=[proxy.host], max_concurrent_downloads=2)
    sink = DirSink(tmp_path / "b")
    ref = f"{proxy.host}/test/app:v1"
    results = await asyncio.gather(*(client.pull(ref, sink) for _ in range(3)))
    assert len({r.digest for r in results}) == 1
    want = image.manifests["linux/amd64"]
    for digest in [want["config"], *want["layers"]]:
        assert proxy.blob_gets.get(digest) == 1, (digest, proxy.blob_gets)
        assert sink.path(digest).read_bytes() == image.blob(digest)


async def test_parsed_reference_familiar_round_trip(plain_registry, image, make_client):
    client = make_client(insecure_registries=[plain_registry.host])
    resolved = await client.resolve(parse_reference(image.ref))
    assert resolved.repo_digest == f"{plain_registry.host}/test/app@{image.top_digest}"
    assert shutil.which("skopeo")

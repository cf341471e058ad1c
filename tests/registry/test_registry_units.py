"""Unit tests: references, platforms, challenges, credentials, config, sinks, layer streams."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile

import pytest
import zstandard

from pouch.registry import (CredentialStore, DirSink, InvalidPlatform, InvalidReference, NotFound, RegistryConfig,
                            open_layer_stream, parse_platform, parse_reference)
from pouch.registry.auth import parse_challenges
from pouch.registry.manifest import OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from pouch.registry.platform import Platform, choose, host_platform

H = "a" * 64


@pytest.mark.parametrize("text,full,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("index.docker.io/user/app:x", "docker.io/user/app:x", "user/app:x"),
    ("127.0.0.1:5000/a/b:tag", "127.0.0.1:5000/a/b:tag", "127.0.0.1:5000/a/b:tag"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    (f"busybox@sha256:{H}", f"docker.io/library/busybox@sha256:{H}", f"busybox@sha256:{H}"),
    (f"reg.io:443/x/y:t@sha256:{H}", f"reg.io:443/x/y:t@sha256:{H}", f"reg.io:443/x/y:t@sha256:{H}"),
])
def test_parse_reference(text, full, familiar):
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_reference_object_prefers_digest():
    ref = parse_reference(f"a:tag@sha256:{H}")
    assert ref.object == f"sha256:{H}" and ref.tag == "tag"
    assert parse_reference("a").object == "latest"


@pytest.mark.parametrize("text", ["", "Busybox", "a/B", "a:", "a@sha256:abc", "a@md5:" + H[:32], ":tag", "a//b",
                                  H, "a:" + "x" * 200, " busybox", "-a/b"])
def test_invalid_references(text):
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert info.value.http_status == 400


def test_uppercase_message():
    with pytest.raises(InvalidReference, match="lowercase"):
        parse_reference("Busybox")


def test_platform_choice():
    entries = [
        {"digest": "amd", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "armv6", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
        {"digest": "armv7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "arm64", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "att", "platform": {"os": "unknown", "architecture": "unknown"}},
    ]
    pick = lambda p: (choose(entries, parse_platform(p)) or {}).get("digest")  # noqa: E731
    assert pick("linux/amd64") == "amd"
    assert pick("linux/x86_64") == "amd"
    assert pick("linux/arm64") == pick("linux/aarch64") == pick("linux/arm64/v8") == "arm64"
    assert pick("linux/arm/v7") == "armv7"
    assert pick("linux/arm/v6") == "armv6"
    assert pick("linux/s390x") is None
    assert parse_platform(None) == host_platform() and host_platform().os == "linux"
    assert parse_platform("linux/arm/7") == Platform("linux", "arm", "v7")
    with pytest.raises(InvalidPlatform):
        parse_platform("linux//v7")


def test_parse_challenges():
    [bearer] = parse_challenges('Bearer realm="https://auth.example/token",service="registry.example",'
                                'scope="repository:a/b:pull,push"')
    assert bearer.scheme == "bearer"
    assert bearer.params == {"realm": "https://auth.example/token", "service": "registry.example",
                             "scope": "repository:a/b:pull,push"}
    both = parse_challenges('Basic realm="x y", Bearer realm="r\\"q"')
    assert [c.scheme for c in both] == ["basic", "bearer"]
    assert both[1].params["realm"] == 'r"q'


def test_credential_store(tmp_path):
    store = CredentialStore(tmp_path / "home" / ".pouch" / "config.json")
    assert store.get("reg.example:5000") is None
    store.login("reg.example:5000", "bob", "p:w")
    store.login("docker.io", "hub", "pw")
    assert store.get("reg.example:5000").password == "p:w"
    assert store.get("index.docker.io").username == "hub"
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    assert "https://index.docker.io/v1/" in store.path.read_text()
    store.logout("reg.example:5000")
    assert store.get("reg.example:5000") is None
    with pytest.raises(NotFound):
        store.logout("reg.example:5000")


def test_insecure_matching():
    cfg = RegistryConfig(insecure_registries=["reg.local:5000", "10.1.0.0/16", "plain.host"])
    assert cfg.is_insecure("reg.local:5000")
    assert not cfg.is_insecure("reg.local:5001")
    assert cfg.is_insecure("10.1.2.3:5000")
    assert not cfg.is_insecure("10.2.0.1:5000")
    assert cfg.is_insecure("plain.host:8080")
    assert not cfg.is_insecure("127.0.0.1:5000")
    with pytest.raises(InvalidReference):
        RegistryConfig(mirrors=["mirror.example"])


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("kind,media_type", [("gzip", OCI_LAYER_GZIP), ("zstd", OCI_LAYER_ZSTD),
                                             ("none", "application/vnd.oci.image.layer.v1.tar"),
                                             ("none", "application/vnd.docker.image.rootfs.diff.tar.gzip")])
def test_open_layer_stream(tmp_path, kind, media_type):
    raw = _tar("hello.txt", b"hi there")
    blob = {"gzip": gzip.compress, "zstd": zstandard.ZstdCompressor().compress, "none": bytes}[kind](raw)
    path = tmp_path / "layer"
    path.write_bytes(blob)
    with open_layer_stream(path, media_type) as stream:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            member = tar.next()
            assert member.name == "hello.txt"
            assert tar.extractfile(member).read() == b"hi there"


async def test_dir_sink_partial_commit_abort(tmp_path):
    sink = DirSink(tmp_path)
    digest = "sha256:" + "b" * 64
    writer = await sink.open(digest, 10, 0)
    await writer.write(b"12345")
    await writer.close()
    assert await sink.offset(digest) == 5 and not await sink.has(digest)
    assert b"".join([c async for c in sink.read_partial(digest)]) == b"12345"
    writer = await sink.open(digest, 10, 5)
    await writer.write(b"67890")
    await writer.commit()
    assert await sink.has(digest) and await sink.offset(digest) == 0
    assert b"".join([c async for c in sink.read(digest)]) == b"1234567890"
    other = "sha256:" + "c" * 64
    writer = await sink.open(other, 3, 0)
    await writer.write(b"abc")
    await writer.abort()
    assert await sink.offset(other) == 0 and not await sink.has(other)
    with pytest.raises(NotFound):
        [c async for c in sink.read(other)]

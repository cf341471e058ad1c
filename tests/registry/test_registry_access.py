"""Access rules against real registries: insecure registries, self-signed TLS, basic and token
auth with login/logout, and mirrors with fallback."""

from __future__ import annotations

import os
import stat

import pytest

from pouch.registry import (DirSink, InsecureRegistryRefused, RegistryUnavailable, State, Unauthorized)
from tests.fixtures.registry import build_oci_layout, skopeo_push

from tests.fixtures.registry import TEST_PASSWORD as PASSWORD, TEST_USER as USER

pytestmark = pytest.mark.integration


async def test_plain_http_registry_refused_unless_listed(plain_registry, image, make_client):
    with pytest.raises(InsecureRegistryRefused, match=plain_registry.host):
        await make_client().resolve(image.ref)
    resolved = await make_client(insecure_registries=[plain_registry.host]).resolve(image.ref)
    assert resolved.digest == image.top_digest
    by_cidr = await make_client(insecure_registries=["127.0.0.0/8"]).resolve(image.ref)
    assert by_cidr.digest == image.top_digest


@pytest.fixture(scope="module")
def tls_image(tls_registry, tmp_path_factory):
    img = build_oci_layout(tmp_path_factory.mktemp("tlsimg") / "layout", "v1", big_layer=8192, seed=21)
    skopeo_push(img, f"{tls_registry.host}/test/tls:v1")
    return img


async def test_self_signed_tls_refused_unless_listed_or_trusted(tls_registry, tls_image, make_client, tmp_path):
    ref = f"{tls_registry.host}/test/tls:v1"
    with pytest.raises(InsecureRegistryRefused, match="TLS"):
        await make_client().resolve(ref)
    listed = make_client(insecure_registries=[tls_registry.host])
    sink = DirSink(tmp_path / "b")
    resolved = await listed.pull(ref, sink)
    assert resolved.digest == tls_image.top_digest
    assert listed.transport.ssl_for(tls_registry.url + "/v2/") is False
    # trusting the CA through certs.d verifies TLS instead of skipping it
    certs = tmp_path / "certs.d" / tls_registry.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(tls_registry.tls.ca_cert.read_bytes())
    trusted = make_client(certs_dir=str(tmp_path / "certs.d"))
    assert (await trusted.resolve(ref)).digest == tls_image.top_digest


@pytest.fixture(scope="module")
def auth_image(auth_registry, tmp_path_factory):
    img = build_oci_layout(tmp_path_factory.mktemp("authimg") / "layout", "v1", big_layer=8192, seed=31)
    skopeo_push(img, f"{auth_registry.host}/test/private:v1", creds=f"{USER}:{PASSWORD}")
    return img


async def test_basic_auth_login_pull_logout(auth_registry, auth_image, make_client, creds, tmp_path):
    ref = f"{auth_registry.host}/test/private:v1"
    client = make_client(insecure_registries=[auth_registry.host])
    with pytest.raises(Unauthorized):
        await client.resolve(ref)
    with pytest.raises(Unauthorized, match="incorrect username or password"):
        await client.login(auth_registry.host, USER, "wrong")
    assert creds.get(auth_registry.host) is None
    assert await client.login(auth_registry.host, USER, PASSWORD) == "Login Succeeded"
    assert stat.S_IMODE(os.stat(creds.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(creds.path.parent).st_mode) == 0o700
    sink = DirSink(tmp_path / "b")
    resolved = await client.pull(ref, sink)
    assert resolved.digest == auth_image.top_digest
    assert all([await sink.has(d.digest) for d in resolved.layers])
    client.logout(auth_registry.host)
    with pytest.raises(Unauthorized):
        await make_client(insecure_registries=[auth_registry.host]).resolve(ref)


async def test_bearer_token_auth(plain_registry, image, make_client, proxy_factory, creds, tmp_path):
    gate = await proxy_factory(plain_registry.url)
    gate.bearer = (USER, PASSWORD)
    ref = f"{gate.host}/test/app:v1"
    client = make_client(insecure_registries=[gate.host])
    with pytest.raises(Unauthorized):
        await client.resolve(ref)
    await client.login(gate.host, USER, PASSWORD)
    sink = DirSink(tmp_path / "b")
    resolved = await make_client(insecure_registries=[gate.host]).pull(ref, sink)
    assert resolved.digest == image.top_digest
    assert sink.path(resolved.layers[2].digest).read_bytes() == image.blob(resolved.layers[2].digest)
    # login asked for one token; the pull asked once for its scope and reused it for every blob
    assert gate.tokens_issued == 1 + 1


async def test_mirror_tried_first(plain_registry, image, multi_image, make_client, proxy_factory, tmp_path_factory, tmp_path):
    from tests.fixtures.registry import RegistryServer

    mirror_reg = RegistryServer(tmp_path_factory.mktemp("mirrorreg")).start()
    try:
        skopeo_push(image, f"{mirror_reg.host}/test/app:v1")
        mirror = await proxy_factory(mirror_reg.url)
        origin = await proxy_factory(plain_registry.url)
        client = make_client(insecure_registries=[origin.host, mirror.host], mirrors=[mirror.url],
                             mirror_all_registries=True)
        sink = DirSink(tmp_path / "b")
        resolved = await client.pull(f"{origin.host}/test/app:v1", sink)
        assert resolved.digest == image.top_digest
        assert sum(mirror.blob_gets.values()) == 4  # config + 3 layers
        assert origin.paths == []

        # a repository the mirror lacks (404 there) comes from the origin
        other = await client.resolve(f"{origin.host}/test/multi:v1")
        assert other.index_digest == multi_image.top_digest
        assert any("/test/multi/" in p for p in mirror.paths) and any("/test/multi/" in p for p in origin.paths)
    finally:
        mirror_reg.stop()


async def test_mirror_down_falls_back_to_origin(plain_registry, image, make_client, proxy_factory, tmp_path):
    from tests.fixtures.registry import free_port

    origin = await proxy_factory(plain_registry.url)
    dead = f"http://127.0.0.1:{free_port()}"
    client = make_client(insecure_registries=[origin.host], mirrors=[dead], mirror_all_registries=True)
    sink = DirSink(tmp_path / "b")
    events = []
    resolved = await client.pull(f"{origin.host}/test/app:v1", sink, progress=events.append)
    assert resolved.digest == image.top_digest
    assert sum(origin.blob_gets.values()) == 4
    assert {e.digest for e in events if e.state == State.DONE} == {resolved.config.digest,
                                                                     *(d.digest for d in resolved.layers)}


async def test_mirrors_only_for_docker_io_by_default(plain_registry, image, make_client, proxy_factory, tmp_path):
    origin = await proxy_factory(plain_registry.url)
    mirror = await proxy_factory(plain_registry.url)
    client = make_client(insecure_registries=[origin.host, mirror.host], mirrors=[mirror.url])
    await client.resolve(f"{origin.host}/test/app:v1")
    assert mirror.paths == [] and origin.paths


async def test_unreachable_registry_is_unavailable(make_client):
    from tests.fixtures.registry import free_port

    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailable, match=host):
        await make_client(insecure_registries=[host]).resolve(f"{host}/a/b:c")

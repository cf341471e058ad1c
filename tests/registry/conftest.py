"""Fixtures for registry tests: real docker-registry processes (plain, TLS, htpasswd) and images
pushed to them with skopeo. The reusable parts live in tests/fixtures/registry.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures.registry import (RegistryProxy, RegistryServer, build_oci_layout, make_self_signed,  # noqa: E402
                                     missing_tools, skopeo_push, TEST_USER, TEST_PASSWORD)

from pouch.registry import CredentialStore, RegistryClient, RegistryConfig  # noqa: E402

USER, PASSWORD = TEST_USER, TEST_PASSWORD


def _need_tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.skip(f"registry test tools missing: {', '.join(missing)} (apt-get install docker-registry skopeo "
                    f"apache2-utils openssl)")


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory):
    _need_tools()
    reg = RegistryServer(tmp_path_factory.mktemp("plainreg")).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory):
    _need_tools()
    root = tmp_path_factory.mktemp("tlsreg")
    reg = RegistryServer(root / "reg", tls=make_self_signed(root / "tls")).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    _need_tools()
    reg = RegistryServer(tmp_path_factory.mktemp("authreg"), users={USER: PASSWORD}).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def image(plain_registry, tmp_path_factory):
    """A one-platform image (3 layers, one with a whiteout) at <plain>/test/app:v1."""
    img = build_oci_layout(tmp_path_factory.mktemp("img") / "layout", "v1", seed=11)
    skopeo_push(img, f"{plain_registry.host}/test/app:v1")
    img.ref = f"{plain_registry.host}/test/app:v1"
    return img


@pytest.fixture(scope="session")
def multi_image(plain_registry, tmp_path_factory):
    """An OCI index with linux/amd64 and linux/arm64/v8 at <plain>/test/multi:v1."""
    img = build_oci_layout(tmp_path_factory.mktemp("multi") / "layout", "v1",
                           platforms=("linux/amd64", "linux/arm64/v8"), big_layer=64 << 10, seed=12)
    skopeo_push(img, f"{plain_registry.host}/test/multi:v1")
    img.ref = f"{plain_registry.host}/test/multi:v1"
    return img


@pytest.fixture
def creds(tmp_path) -> CredentialStore:
    return CredentialStore(tmp_path / "pouch" / "config.json")


@pytest.fixture
async def make_client(creds):
    """Factory: make_client(insecure=[...], mirrors=[...], ...) -> RegistryClient, closed after the test."""
    made = []

    def make(**kw) -> RegistryClient:
        c = RegistryClient(RegistryConfig(**kw), credentials=creds)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


@pytest.fixture
async def proxy_factory():
    made = []

    async def make(upstream: str) -> RegistryProxy:
        p = await RegistryProxy(upstream).start()
        made.append(p)
        return p

    yield make
    for p in made:
        await p.stop()

"""Moby compatibility: the real `docker` CLI and the `docker` Python SDK against pouchd,
and the API version prefix rules."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from tests.daemon.conftest import inspect

pytestmark = pytest.mark.integration

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def docker(d, *args, timeout=60, input=None):
    if not os.path.exists(DOCKER):
        pytest.skip("the docker CLI is not installed (/usr/local/bin/docker)")
    env = dict(os.environ, DOCKER_CONFIG="/tmp/pouch-test-docker-config")
    env.pop("DOCKER_HOST", None)
    return subprocess.run([DOCKER, "-H", d.host, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, input=input)


def test_docker_cli_version_and_images(pouchd):
    r = docker(pouchd, "version")
    assert r.returncode == 0, r.stderr
    assert "API version:      1.41" in r.stdout
    assert "linux/amd64" in r.stdout.split("Server:")[1]
    r = docker(pouchd, "images")
    assert r.returncode == 0, r.stderr
    assert any(l.split()[:2] == ["busybox", "latest"] for l in r.stdout.splitlines())
    r = docker(pouchd, "image", "inspect", "-f", "{{.Id}}", "busybox")
    assert r.stdout.startswith("sha256:")


def test_docker_cli_container_lifecycle(pouchd, box):
    n = box.name()
    r = docker(pouchd, "run", "-d", "--name", n, "-e", "WHO=docker", "busybox", "sh", "-c",
               "echo hello-$WHO; sleep 300")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert inspect(pouchd, n)["Id"] == cid
    r = docker(pouchd, "ps")
    assert r.returncode == 0 and n in r.stdout and cid[:12] in r.stdout
    from tests.daemon.conftest import wait_for
    wait_for(lambda: docker(pouchd, "logs", n).stdout == "hello-docker\n", what="docker logs")
    r = docker(pouchd, "exec", n, "sh", "-c", "echo in-exec; exit 3")
    assert (r.returncode, r.stdout) == (3, "in-exec\n")
    r = docker(pouchd, "exec", "-i", n, "cat", input="piped\n")
    assert r.stdout == "piped\n", r.stderr
    assert docker(pouchd, "inspect", "-f", "{{.State.Status}}", n).stdout.strip() == "running"
    assert docker(pouchd, "stop", "-t", "1", n).returncode == 0
    assert docker(pouchd, "inspect", "-f", "{{.State.Status}}", n).stdout.strip() == "exited"
    assert docker(pouchd, "rm", n).returncode == 0
    assert pouchd.cli("inspect", n).returncode == 1


def test_docker_cli_run_attached(pouchd):
    r = docker(pouchd, "run", "--rm", "busybox", "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    r = docker(pouchd, "run", "--rm", "busybox", "sh", "-c", "echo e >&2; exit 5")
    assert (r.returncode, r.stderr) == (5, "e\n")
    r = docker(pouchd, "run", "--rm", "-i", "busybox", "wc", "-c", input="12345")
    assert r.stdout.strip() == "5", r.stderr


def test_docker_cli_errors(pouchd):
    r = docker(pouchd, "inspect", "no-such-thing-" + uuid.uuid4().hex[:6])
    assert r.returncode != 0 and "No such" in r.stderr
    r = docker(pouchd, "rm", "no-such-thing")
    assert r.returncode != 0 and "No such container" in r.stderr


def test_docker_sdk(pouchd, box):
    docker_sdk = pytest.importorskip("docker", reason="the docker Python SDK is not installed")
    # pinned: an auto-detecting SDK reads the unversioned /version, which is the Pouch face (1.24)
    client = docker_sdk.DockerClient(base_url="unix://" + pouchd.sock, version="1.41")
    try:
        assert client.version()["ApiVersion"] == "1.41"
        assert any("busybox:latest" in i.tags for i in client.images.list())
        n = box.name()
        c = client.containers.run("busybox", ["sh", "-c", "echo sdk-out; sleep 300"], detach=True, name=n)
        assert c.name == n
        c.reload()
        assert c.status == "running"
        from tests.daemon.conftest import wait_for
        wait_for(lambda: c.logs() == b"sdk-out\n", what="sdk logs")
        code, out = c.exec_run(["sh", "-c", "echo from-exec; exit 2"])
        assert (code, out) == (2, b"from-exec\n")
        assert c.id in [x.id for x in client.containers.list()]
        c.stop(timeout=1)
        c.reload()
        assert c.status == "exited"
        c.remove()
        with pytest.raises(docker_sdk.errors.NotFound):
            client.containers.get(n)
        # the attached form: run() returns the output
        assert client.containers.run("busybox", ["echo", "attached"], remove=True) == b"attached\n"
        with pytest.raises(docker_sdk.errors.ContainerError) as ei:
            client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
        assert ei.value.exit_status == 3
    finally:
        client.close()


@pytest.mark.parametrize("prefix", ["/v1.41", "/v1.24", "/v1.30", ""])
def test_api_version_prefixes_ok(pouchd, prefix):
    status, body = pouchd.api("GET", prefix + "/version")
    assert status == 200 and body["ApiVersion"] == ("1.24" if prefix in ("", "/v1.24") else "1.41")
    status, body = pouchd.api("GET", prefix + "/containers/json?all=1")
    assert status == 200 and isinstance(body, list)


@pytest.mark.parametrize("prefix", ["/v1.12", "/v1.99", "/v2.0"])
def test_api_version_out_of_range(pouchd, prefix):
    status, body = pouchd.api("GET", prefix + "/version")
    assert status == 400
    assert "version" in body["message"]

"""`pouch push` / `pouch login` against a real docker-registry, then pulling the image back."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request

import pytest

from tests.daemon.registry_env import PASSWORD, USER, renv  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


def _registry_manifest_digest(reg, repo: str, tag: str) -> str:
    req = urllib.request.Request(f"{reg.url}/v2/{repo}/manifests/{tag}", method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers["Docker-Content-Digest"]


def _auth_refused(err: str) -> bool:
    return "authentication required" in err or "unauthorized" in err.lower()


def test_push_remove_pull_run(renv):
    img = f"{renv.plain.host}/pushed/busybox:v1"
    assert renv.cli("tag", "busybox:latest", img).returncode == 0
    r = renv.cli("push", img)
    assert r.returncode == 0, r.stderr
    assert f"The push refers to repository [{renv.plain.host}/pushed/busybox]" in r.stdout
    assert ": Pushed" in r.stdout
    pushed = _registry_manifest_digest(renv.plain, "pushed/busybox", "v1")
    assert f"v1: digest: {pushed}" in r.stdout

    # pushing again uploads nothing
    r = renv.cli("push", img)
    assert r.returncode == 0 and "Layer already exists" in r.stdout, r.stdout + r.stderr

    assert renv.cli("rmi", img).returncode == 0
    assert img not in renv.cli("images").stdout
    r = renv.cli("pull", img)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {pushed}" in r.stdout
    assert f"Status: Downloaded newer image for {img}" in r.stdout

    lines = [l.split() for l in renv.cli("images", "--digests").stdout.splitlines()]
    row = next(l for l in lines if l[1] == img)
    assert row[2] == pushed

    r = renv.cli("run", "--rm", img, "echo", "ok")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert renv.cli("rmi", img).returncode == 0


def test_push_mounts_blob_from_other_repo(renv):
    a = f"{renv.plain.host}/mount/a:v1"
    b = f"{renv.plain.host}/mount/b:v1"
    assert renv.cli("tag", "busybox:latest", a).returncode == 0
    assert renv.cli("push", a).returncode == 0
    assert renv.cli("tag", "busybox:latest", b).returncode == 0
    r = renv.cli("push", b)
    assert r.returncode == 0, r.stderr
    assert "Mounted from" in r.stdout and ": Pushed" not in r.stdout, r.stdout
    for n in (a, b):
        renv.cli("rmi", n)


def test_push_missing_image_is_one_line(renv):
    r = renv.cli("push", f"{renv.plain.host}/nothere/img:v1")
    assert r.returncode == 1
    assert "does not exist locally" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_login_push_pull_logout_with_auth_registry(renv):
    host = renv.auth.host
    img = f"{host}/private/busybox:v1"
    assert renv.cli("tag", "busybox:latest", img).returncode == 0
    r = renv.cli("push", img)
    assert r.returncode == 1 and _auth_refused(r.stderr), r.stderr

    r = renv.cli("login", "-u", USER, "-p", "wrong-password", host)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "incorrect username or password" in r.stderr

    r = renv.cli("login", "-u", USER, "-p", PASSWORD, host)
    assert r.returncode == 0, r.stderr
    assert "Login Succeeded" in r.stdout
    assert renv.cli("push", img).returncode == 0
    assert renv.cli("rmi", img).returncode == 0
    r = renv.cli("pull", img)
    assert r.returncode == 0, r.stderr
    assert renv.cli("rmi", img).returncode == 0

    r = renv.cli("logout", host)
    assert r.returncode == 0
    r = renv.cli("pull", img)
    assert r.returncode == 1 and _auth_refused(r.stderr), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not shutil.which("/usr/local/bin/docker"), reason="docker CLI not at /usr/local/bin/docker")
def test_docker_cli_pulls_through_pouchd(renv):
    img = f"{renv.plain.host}/dockercli/busybox:latest"
    assert renv.cli("tag", "busybox:latest", img).returncode == 0
    assert renv.cli("push", img).returncode == 0
    assert renv.cli("rmi", img).returncode == 0
    env = dict(os.environ, DOCKER_CONFIG=str(renv.tmp / "dockercfg"))
    r = subprocess.run(["/usr/local/bin/docker", "-H", renv.daemon.host, "pull", img], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "Digest: sha256:" in r.stdout and "Downloaded newer image" in r.stdout
    inspect = json.loads(renv.cli("image", "inspect", img).stdout)
    assert img in inspect[0]["RepoTags"]
    renv.cli("rmi", img)


def test_commit_container_changes_then_push_and_pull(renv):
    name = "commit-src"
    r = renv.cli("run", "--name", name, "busybox:latest", "sh", "-c", "echo committed > /hello.txt; rm /etc/group")
    assert r.returncode == 0, r.stderr
    img = f"{renv.plain.host}/committed/img:v1"
    try:
        r = renv.cli("commit", "-m", "add hello", "-c", "ENV FOO=bar", name, img)
        assert r.returncode == 0, r.stderr
        r = renv.cli("run", "--rm", img, "sh", "-c", "cat /hello.txt; test -e /etc/group || echo nogroup; echo $FOO")
        assert r.stdout.split() == ["committed", "nogroup", "bar"], r.stdout + r.stderr
        assert renv.cli("push", img).returncode == 0
        assert renv.cli("rmi", img).returncode == 0
        assert renv.cli("pull", img).returncode == 0
        r = renv.cli("run", "--rm", img, "cat", "/hello.txt")
        assert r.stdout.strip() == "committed", r.stderr
        hist = json.loads(renv.cli("image", "inspect", img).stdout)[0]
        assert len(hist["RootFS"]["Layers"]) == 2
    finally:
        renv.cli("rm", "-f", name)
        renv.cli("rmi", img)

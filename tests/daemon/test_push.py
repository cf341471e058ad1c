"""`pouch push` / `pouch login` against a real docker-registry, then pulling the image back."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import time
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
    # the pulled manifest (gzip layers) differs from the loaded one but has the same image id:
    # removing the pulled name must leave busybox:latest whole (after containerd's GC has run)
    time.sleep(1.5)
    assert renv.cli("tag", "busybox:latest", img).returncode == 0
    assert renv.cli("run", "--rm", "busybox:latest", "true").returncode == 0
    assert renv.cli("save", "-o", os.devnull, "busybox:latest").returncode == 0
    assert renv.cli("rmi", img).returncode == 0


def _registry_get(reg, path: str, accept: str = "") -> bytes:
    req = urllib.request.Request(f"{reg.url}{path}", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def test_push_of_docker_save_image_sends_gzip_layers(renv):
    """busybox:latest was loaded from a docker-save archive: its layer is stored uncompressed."""
    local = json.loads(renv.cli("image", "inspect", "busybox:latest").stdout)[0]
    img = f"{renv.plain.host}/gz/busybox:v1"
    assert renv.cli("tag", "busybox:latest", img).returncode == 0
    r = renv.cli("push", img)
    assert r.returncode == 0, r.stderr
    manifest = json.loads(_registry_get(renv.plain, "/v2/gz/busybox/manifests/v1",
                                        "application/vnd.docker.distribution.manifest.v2+json"))
    assert manifest["config"]["digest"] == local["Id"]
    diff_ids = local["RootFS"]["Layers"]
    assert [l["mediaType"] for l in manifest["layers"]] == \
        ["application/vnd.docker.image.rootfs.diff.tar.gzip"] * len(diff_ids)
    for layer, diff_id in zip(manifest["layers"], diff_ids):
        blob = _registry_get(renv.plain, f"/v2/gz/busybox/blobs/{layer['digest']}")
        assert blob[:2] == b"\x1f\x8b" and len(blob) == layer["size"]
        raw = gzip.decompress(blob)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id
        assert len(blob) < len(raw) * 0.8, "busybox compresses well"
        assert f"{layer['digest'][7:19]}: Pushed" in r.stdout
    # the gzip copy is kept: pushing to another repository sends the same digests
    r = renv.cli("push", f"{renv.plain.host}/gz/busybox:v1")
    assert r.returncode == 0 and "Layer already exists" in r.stdout, r.stdout + r.stderr
    other = f"{renv.plain.host}/gz/other:v1"
    assert renv.cli("tag", "busybox:latest", other).returncode == 0
    assert renv.cli("push", other).returncode == 0
    again = json.loads(_registry_get(renv.plain, "/v2/gz/other/manifests/v1",
                                     "application/vnd.docker.distribution.manifest.v2+json"))
    assert again["layers"] == manifest["layers"]
    for name in (img, other):
        assert renv.cli("rmi", name).returncode == 0


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


def _container_actions(renv, name: str, since: str) -> list[str]:
    r = renv.cli("events", "--since", since, "--until", str(int(time.time()) + 1), "-f", f"container={name}")
    assert r.returncode == 0, r.stderr
    return [line.split()[2] for line in r.stdout.splitlines() if len(line.split()) > 2]


def test_commit_pauses_a_running_container_unless_told_not_to(renv):
    name = "commit-running"
    assert renv.cli("run", "-d", "--name", name, "busybox:latest", "sh", "-c",
                    "echo live > /state; while true; do sleep 1; done").returncode == 0
    try:
        since = str(int(time.time()) - 1)
        r = renv.cli("commit", name, "committed/running:v1")
        assert r.returncode == 0, r.stderr
        actions = _container_actions(renv, name, since)
        assert actions[-2:] == ["pause", "unpause"], actions
        assert json.loads(renv.cli("inspect", name).stdout)[0]["State"]["Status"] == "running"
        r = renv.cli("run", "--rm", "committed/running:v1", "cat", "/state")
        assert r.stdout.strip() == "live", r.stderr

        since = str(int(time.time()))
        assert renv.cli("commit", "--pause=false", name, "committed/running:v2").returncode == 0
        assert "pause" not in _container_actions(renv, name, since)
    finally:
        renv.cli("rm", "-f", name)
        renv.cli("rmi", "committed/running:v1", "committed/running:v2")

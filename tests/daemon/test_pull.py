"""`pouch pull` from real docker-registry processes: layers with whiteouts, mirrors, retag speed,
concurrent pulls, corrupted blobs, interrupted pulls, bad input, search and prune."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from pouch.client import APIClient
from tests.daemon.registry_env import PASSWORD, POUCH, USER, need_tools, pouch_env, renv  # noqa: F401
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.images import busybox_archive
from tests.fixtures.registry import RegistryServer

pytestmark = pytest.mark.integration


def test_pull_multilayer_with_whiteout_and_run(renv):
    img = renv.push_oci("v1", "oci/whiteout")
    r = renv.cli("pull", img.ref)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {img.top_digest}" in r.stdout
    for layer in img.manifests["linux/amd64"]["layers"]:
        assert f"{layer[7:19]}: Pull complete" in r.stdout
    r = renv.cli("run", "--rm", img.ref, "sh", "-c",
                 "if [ -e /etc/removed ]; then echo present; else echo absent; fi; cat /data/note.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["absent", "tag v1"]
    info = json.loads(renv.cli("image", "inspect", img.ref).stdout)[0]
    assert info["Id"] == img.manifests["linux/amd64"]["config"]
    assert info["RepoDigests"] == [f"{img.ref.rsplit(':', 1)[0]}@{img.top_digest}"]


def test_pull_of_present_layers_is_fast(renv):
    img = renv.push_oci("v1", "oci/fast")
    assert renv.cli("pull", img.ref).returncode == 0
    repo = img.ref.rsplit(":", 1)[0]
    for tag in ("v2", "v3", "v4"):   # the same image under other tags: every layer is present
        subprocess.run(["skopeo", "--policy", str(img.layout.parent / "policy.json"), "copy", "--quiet",
                        "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{img.ref}",
                        f"docker://{repo}:{tag}"], check=True, capture_output=True)
    client = APIClient(host=renv.daemon.host)
    times = []
    for tag in ("v2", "v3", "v4", "v4"):
        t = time.monotonic()
        msgs = list(client.pull(repo, tag))
        times.append(time.monotonic() - t)
        assert not any("error" in m for m in msgs), msgs
        assert msgs[-1]["status"].startswith("Status: ")
    assert f"{repo}:v3" in renv.cli("images").stdout
    assert min(times) < 0.1, f"pulls of an image whose layers are all present took {times} s"


def test_pull_through_mirror(renv):
    # docker.io/library/busybox:mirrored exists only on the mirror (the plain registry)
    assert renv.cli("tag", "busybox:latest", f"{renv.plain.host}/library/busybox:mirrored").returncode == 0
    assert renv.cli("push", f"{renv.plain.host}/library/busybox:mirrored").returncode == 0
    r = renv.cli("pull", "busybox:mirrored")
    assert r.returncode == 0, r.stderr
    assert "busybox:mirrored" in renv.cli("images").stdout
    assert renv.cli("run", "--rm", "busybox:mirrored", "echo", "via-mirror").stdout.strip() == "via-mirror"
    renv.cli("rmi", "busybox:mirrored")
    renv.cli("rmi", f"{renv.plain.host}/library/busybox:mirrored")


def test_concurrent_pulls_fetch_each_blob_once(renv):
    img = renv.push_oci("v1", "oci/concurrent", big=4 << 20, seed=3)
    proxy = renv.proxy(renv.plain.url)
    ref = f"{proxy.host}/oci/concurrent:v1"
    procs = [subprocess.Popen([POUCH, "pull", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=pouch_env(renv.daemon)) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    blobs = [img.manifests["linux/amd64"]["config"], *img.manifests["linux/amd64"]["layers"]]
    counts = {d: proxy.blob_gets.get(d, 0) for d in blobs}
    assert all(n <= 1 for n in counts.values()), counts   # small layers may be present from earlier tests
    assert counts[blobs[0]] == 1 and counts[blobs[-1]] == 1, counts  # config and the new 4 MB layer
    assert renv.cli("run", "--rm", ref, "ls", "/data/random.bin").returncode == 0


def test_twenty_concurrent_runs_of_an_absent_image_fetch_each_blob_once(renv):
    """20 `pouch run` at once of an image not present: each pulls on demand, the registry (seen
    through the counting proxy) serves every blob once, and all 20 containers run."""
    img = renv.push_oci("v1", "oci/twenty", big=4 << 20, seed=41)
    proxy = renv.proxy(renv.plain.url)
    ref = f"{proxy.host}/oci/twenty:v1"
    procs = [subprocess.Popen([POUCH, "run", "--rm", ref, "echo", f"ran{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=pouch_env(renv.daemon)) for i in range(20)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs if o[1]]
    assert sorted(o[0].strip().splitlines()[-1] for o in outs) == sorted(f"ran{i}" for i in range(20))
    blobs = [img.manifests["linux/amd64"]["config"], *img.manifests["linux/amd64"]["layers"]]
    counts = {d: proxy.blob_gets.get(d, 0) for d in blobs}
    assert all(n <= 1 for n in counts.values()), counts
    assert counts[blobs[0]] == 1 and counts[blobs[-1]] == 1, counts


def test_corrupted_blob_fails_naming_digest_and_creates_nothing(renv):
    img = renv.push_oci("v1", "oci/corrupt", seed=21)
    bad = img.manifests["linux/amd64"]["layers"][1]
    path = renv.plain.blob_path(bad)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    before = renv.cli("images", "-q", "--no-trunc").stdout.split()
    r = renv.cli("pull", img.ref)
    assert r.returncode == 1
    assert bad in r.stderr and "digest mismatch" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert renv.cli("images", "-q", "--no-trunc").stdout.split() == before
    assert renv.cli("image", "inspect", img.ref).returncode == 1


def test_bad_reference_is_one_readable_line(renv):
    r = renv.cli("pull", "BAD::ref")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid reference format" in lines[0], r.stderr
    r = renv.cli("pull", f"{renv.plain.host}/no/such:image")
    assert r.returncode == 1 and "manifest unknown" in r.stderr.lower() and len(r.stderr.strip().splitlines()) == 1


def test_search_lists_registry_repositories(renv):
    renv.push_oci("v1", "searchme/app")
    r = renv.cli("search", f"{renv.plain.host}/searchme")
    assert r.returncode == 0, r.stderr
    names = [l.split()[0] for l in r.stdout.splitlines()[1:]]
    assert f"{renv.plain.host}/searchme/app" in names


def _blobs_on_disk(renv, digests: list[str]) -> list[str]:
    root = os.path.join(renv.daemon.home, "containerd/root/io.containerd.content.v1.content/blobs/sha256")
    return [d for d in digests if os.path.exists(os.path.join(root, d[7:]))]


def test_rmi_frees_the_disk_before_it_returns(renv):
    img = renv.push_oci("v1", "oci/rmi", seed=33, big=1 << 20)
    assert renv.cli("pull", img.ref).returncode == 0
    # the layers only this image has (its repository's note, its random data); the busybox
    # and whiteout layers are shared with other tests' images and rightly stay
    layers = [img.manifests["linux/amd64"]["layers"][i] for i in (1, 3)]
    assert len(_blobs_on_disk(renv, layers)) == len(layers)
    r = renv.cli("rmi", img.ref)
    assert r.returncode == 0, r.stderr
    assert not _blobs_on_disk(renv, layers)  # no waiting: docker rmi frees space at once


def test_prune_removes_unused_images_only(renv):
    img = renv.push_oci("v1", "oci/prune", seed=31)
    assert renv.cli("pull", img.ref).returncode == 0
    r = renv.cli("image", "prune", "-f")     # dangling only: nothing of ours
    assert r.returncode == 0 and img.ref not in r.stdout
    assert img.ref in renv.cli("images").stdout
    r = renv.cli("image", "prune", "-a", "-f")
    assert r.returncode == 0, r.stderr
    assert f"untagged: {img.ref}" in r.stdout
    assert img.ref not in renv.cli("images").stdout
    assert not _blobs_on_disk(renv, img.manifests["linux/amd64"]["layers"][1:2]), "prune must free the disk"
    # busybox:latest is unused too, so it went as well: load it back for later tests
    assert renv.cli("load", "-i", busybox_archive()).returncode == 0


def test_interrupted_pull_leaves_no_image_and_resumes(tmp_path):
    need_tools()
    from tests.daemon.registry_env import LoopThread, ThrottledProxy, build_busybox_image
    from tests.fixtures.registry import skopeo_push
    reg = RegistryServer(tmp_path / "reg").start()
    loop = LoopThread()
    d = PouchDaemon(extra_args=["--insecure-registries", "127.0.0.0/8"])
    proxy = None
    try:
        img = build_busybox_image(tmp_path / "layout", "v1", big=6 << 20, seed=5)
        skopeo_push(img, f"{reg.host}/slow/img:v1")
        proxy = loop.run(ThrottledProxy(reg.url, rate=3 << 20).start())
        d.start()
        ref = f"{proxy.host}/slow/img:v1"
        p = subprocess.Popen([POUCH, "pull", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=pouch_env(d))
        big = img.manifests["linux/amd64"]["layers"][-1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(dg == big for dg, _ in proxy.ranges):
            time.sleep(0.05)
        time.sleep(0.8)  # ~2.4 MB of the 6 MB layer arrived
        d.kill9()
        p.wait(30)
        assert p.returncode != 0
        d.start()
        assert ref not in d.cli("images").stdout
        assert d.cli("image", "inspect", ref).returncode == 1
        r = d.cli("pull", ref, timeout=120)
        assert r.returncode == 0, r.stderr
        resumed = [rng for dg, rng in proxy.ranges if dg == big and rng]
        assert resumed and int(resumed[0].split("=")[1].rstrip("-")) > 0, proxy.ranges
        r = d.cli("run", "--rm", ref, "sh", "-c", "wc -c < /data/random.bin")
        assert r.returncode == 0 and r.stdout.strip() == str(6 << 20), r.stdout + r.stderr
    finally:
        if proxy is not None:
            loop.run(proxy.stop())
        loop.stop()
        d.cleanup()
        reg.stop()


def _api_pull(renv, ref: str, auth=None) -> tuple[bool, str]:
    """Pull through the API (X-Registry-Auth when ``auth``); (succeeded, last message)."""
    from pouch.client.errors import APIError
    try:
        msgs = list(APIClient(host=renv.daemon.host).pull(ref, auth=auth))
    except APIError as e:
        return False, str(e)
    err = next((m.get("error") or (m.get("errorDetail") or {}).get("message") for m in msgs
                if m.get("error") or m.get("errorDetail")), None)
    return err is None, err or (msgs[-1].get("status", "") if msgs else "")


def test_registry_credentials_are_per_request(renv):
    """X-Registry-Auth serves only its own request: a pull without credentials, after or during an
    authenticated one, neither uses those credentials nor the token they bought."""
    import threading
    img = renv.push_oci("v1", "private/creds", big=4 << 20, seed=14)
    gate = renv.proxy(renv.plain.url)
    gate.bearer = (USER, PASSWORD)
    ref = f"{gate.host}/private/creds:v1"
    ok, msg = _api_pull(renv, ref, auth={"username": USER, "password": "wrong"})
    assert not ok and "refused the credentials" in msg, msg
    ok, msg = _api_pull(renv, ref, auth={"username": USER, "password": PASSWORD})
    assert ok, msg
    assert renv.cli("rmi", ref).returncode == 0
    # the token of the authenticated pull is cached: an anonymous pull must not get it
    ok, msg = _api_pull(renv, ref)
    assert not ok and ("refused" in msg or "unauthorized" in msg.lower()), msg
    assert renv.cli("inspect", ref).returncode != 0
    # concurrent: anonymous pulls racing authenticated ones all fail, the authenticated ones succeed
    results: dict[str, list] = {"auth": [], "anon": []}

    def go(kind):
        for _ in range(3):
            results[kind].append(_api_pull(renv, ref, {"username": USER, "password": PASSWORD}
                                           if kind == "auth" else None)[0])
    threads = [threading.Thread(target=go, args=(k,)) for k in ("auth", "anon", "anon")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results["auth"] == [True] * 3 and results["anon"] == [False] * 6, results
    renv.cli("rmi", ref)
    del img

"""P2P distribution end to end: a real registry (behind a proxy that counts blob downloads), the
supernode, three hosts' peers and three pouchd.  However many hosts pull, the registry serves each
layer once and peers take pieces from each other; a dead P2P network falls back to the registry."""
from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import _missing_for_daemon
from tests.daemon.registry_env import LoopThread, build_busybox_image
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.registry import RegistryProxy, RegistryServer, free_port, missing_tools, skopeo_push

pytestmark = pytest.mark.integration


def _serve(module: str, *args: str, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *args], stdout=log, stderr=subprocess.STDOUT)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _stats(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url + "/stats", timeout=5).read())


@pytest.fixture(scope="module")
def p2p(tmp_path_factory):
    why = _missing_for_daemon() or ", ".join(missing_tools())
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("p2p")
    reg = RegistryServer(tmp / "registry").start()
    loop = LoopThread()
    counter = loop.run(RegistryProxy(reg.url).start())  # the registry as the hosts see it
    img = build_busybox_image(tmp / "layout", "v1", big=9 << 20, seed=5, repo="p2p/app")  # 3 pieces
    skopeo_push(img, f"{counter.host}/p2p/app:v1")
    logs = open(tmp / "p2p.log", "ab")
    procs, peers, daemons = [], [], []
    try:
        sn_port = free_port()
        sn = f"http://127.0.0.1:{sn_port}"
        procs.append(_serve("pouch.p2p.supernode", "--listen", f"127.0.0.1:{sn_port}", "--cache",
                            str(tmp / "sn-cache"), log=logs))
        _wait_http(sn + "/stats", procs[-1])
        for i in range(3):
            port = free_port()
            procs.append(_serve("pouch.p2p.peer", "--listen", f"127.0.0.1:{port}", "--supernode", sn,
                                "--cache", str(tmp / f"peer{i}"), "--insecure-registries", counter.host, log=logs))
            peers.append(f"http://127.0.0.1:{port}")
            _wait_http(peers[-1] + "/stats", procs[-1])
            d = PouchDaemon(extra_args=["--p2p-peer", peers[-1], "--insecure-registries", "127.0.0.0/8"])
            d.start()
            daemons.append(d)
        yield {"daemons": daemons, "peers": peers, "sn": sn, "procs": procs, "counter": counter, "img": img,
               "ref": f"{counter.host}/p2p/app:v1", "tmp": tmp, "reg": reg}
    finally:
        for d in daemons:
            d.cleanup()
        for p in procs:
            p.terminate()
            p.wait(10)
        loop.run(counter.stop())
        loop.stop()
        reg.stop()


def test_many_hosts_pull_the_registry_serves_each_layer_once(p2p):
    daemons, ref, counter, img = p2p["daemons"], p2p["ref"], p2p["counter"], p2p["img"]
    layers = img.manifests["linux/amd64"]["layers"]
    r = daemons[0].cli("pull", ref, timeout=120)
    assert r.returncode == 0, r.stderr
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda d: d.cli("pull", ref, timeout=120), daemons[1:]))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    for d in daemons:
        r = d.cli("run", "--rm", "--net", "none", ref, "sh", "-c", "echo ran")
        assert r.returncode == 0 and r.stdout == "ran\n", r.stderr
    gets = {d: counter.blob_gets.get(d, 0) for d in layers}
    assert all(n == 1 for n in gets.values()), gets  # three hosts, one download per layer
    stats = [_stats(p) for p in p2p["peers"]]
    assert sum(s["piecesFromPeers"] for s in stats) > 0, stats  # hosts 2 and 3 fed each other / from host 1
    assert sum(s["piecesServed"] for s in stats) == sum(s["piecesFromPeers"] for s in stats)


def test_pulls_fall_back_to_the_registry_when_p2p_is_down(p2p):
    d, counter = p2p["daemons"][0], p2p["counter"]
    assert f"P2P Peer: {p2p['peers'][0]}" in d.cli("info").stdout
    img2 = build_busybox_image(p2p["tmp"] / "layout2", "v2", big=1 << 20, seed=6, repo="p2p/other")
    skopeo_push(img2, f"{counter.host}/p2p/other:v2")
    for p in p2p["procs"]:
        p.terminate()
        p.wait(10)
    r = d.cli("pull", f"{counter.host}/p2p/other:v2", timeout=120)
    assert r.returncode == 0, r.stderr
    assert all(counter.blob_gets.get(x, 0) == 1 for x in img2.manifests["linux/amd64"]["layers"])

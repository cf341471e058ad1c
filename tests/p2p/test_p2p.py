"""P2P distribution end to end: a real registry (behind a proxy that counts blob downloads), the
supernode, hosts' peers and pouchd, all on mutual TLS with a cluster CA.  The registry serves each
layer once however many hosts pull; nothing answers without a cluster certificate; names are
checked before use; a private blob needs the client's own credentials; a corrupt copy, concurrent
pulls and a dead supernode all end with verified blobs."""
from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import re
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import _missing_for_daemon
from tests.daemon.registry_env import LoopThread, build_busybox_image
from tests.fixtures.daemon import PouchDaemon
from tests.fixtures.registry import RegistryProxy, RegistryServer, free_port, missing_tools, skopeo_push

from .conftest import client_ctx, make_ca, request, serve, tls_args, wait_up

pytestmark = pytest.mark.integration


class Cluster:
    def __init__(self, tmp: Path, counter, certs, ca: Path, logs) -> None:
        self.tmp, self.counter, self.certs, self.ca, self.logs = tmp, counter, certs, ca, logs
        self.procs: list = []
        self.sn = ""
        self.sn_proc = None
        self.sn_args: list[str] = []

    def ctx(self, name: str = "h0") -> ssl.SSLContext:
        return client_ctx(self.ca, self.certs[name])

    def start_supernode(self) -> None:
        if not self.sn_args:
            port = free_port()
            self.sn = f"https://127.0.0.1:{port}"
            self.sn_args = ["--listen", f"127.0.0.1:{port}", "--swarm-listen", f"127.0.0.1:{free_port()}",
                            "--cache", str(self.tmp / "sn-cache"), "--insecure-registry", self.counter.host,
                            *tls_args(self.ca, self.certs["sn"])]
        self.sn_proc = serve("pouch.p2p.supernode", *self.sn_args, log=self.logs)
        self.procs.append(self.sn_proc)
        wait_up(self.sn, self.ctx(), self.sn_proc)

    def start_peer(self, name: str, *extra: str, cache: str = "") -> str:
        port = free_port()
        p = serve("pouch.p2p.peer", "--listen", f"127.0.0.1:{port}", "--swarm-listen", f"127.0.0.1:{free_port()}",
                  "--supernode", self.sn, "--cache", str(self.tmp / (cache or f"peer-{name}")),
                  "--insecure-registries", self.counter.host, *tls_args(self.ca, self.certs[name]), *extra,
                  log=self.logs)
        self.procs.append(p)
        url = f"https://127.0.0.1:{port}"
        wait_up(url, self.ctx(name), p)
        return url

    def stats(self, base: str) -> dict:
        return json.loads(request(base, self.ctx(), "GET", "/stats")[1])

    def get_blob(self, peer: str, repo: str, digest: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
        return request(peer, self.ctx(), "GET", f"/v2/{repo}/blobs/{digest}?ns={self.counter.host}", headers=headers)


@pytest.fixture(scope="module")
def p2p(tmp_path_factory):
    why = _missing_for_daemon() or ", ".join(missing_tools())
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("p2p")
    certs = make_ca(tmp / "ca", ["sn", "h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7"])
    rogue = make_ca(tmp / "rogue", ["r0"], cn="someone-else")
    reg = RegistryServer(tmp / "registry").start()
    loop = LoopThread()
    counter = loop.run(RegistryProxy(reg.url).start())  # the registry as the hosts see it
    img = build_busybox_image(tmp / "layout", "v1", big=9 << 20, seed=5, repo="p2p/app")  # 3 pieces
    skopeo_push(img, f"{counter.host}/p2p/app:v1")
    logs = open(tmp / "p2p.log", "ab")
    c = Cluster(tmp, counter, certs, tmp / "ca" / "ca.pem", logs)
    c.rogue, c.img, c.reg, c.loop = rogue, img, reg, loop
    c.ref = f"{counter.host}/p2p/app:v1"
    c.big = img.manifests["linux/amd64"]["layers"][-1]
    daemons = []
    try:
        c.start_supernode()
        c.peers = [c.start_peer(f"h{i}") for i in range(2)]
        for i, peer in enumerate(c.peers):
            d = PouchDaemon(extra_args=["--p2p-peer", peer, *tls_args(c.ca, certs[f"h{i}"]),
                                        "--insecure-registries", "127.0.0.0/8"])
            d.start()
            daemons.append(d)
        c.daemons = daemons
        yield c
    finally:
        for d in daemons:
            d.cleanup()
        for p in c.procs:
            p.terminate()
        for p in c.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:  # a peer still closing its session on a loaded host
                p.kill()
                p.wait(10)
        loop.run(counter.stop())
        loop.stop()
        reg.stop()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_hosts_pull_through_the_swarm_and_the_registry_serves_each_layer_once(p2p):
    layers = p2p.img.manifests["linux/amd64"]["layers"]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda d: d.cli("pull", p2p.ref, timeout=120), p2p.daemons))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    r = p2p.daemons[1].cli("run", "--rm", "--net", "none", p2p.ref, "sh", "-c", "cat /data/repo.txt; echo ran")
    assert r.returncode == 0 and r.stdout.endswith("ran\n"), r.stderr
    gets = {d: p2p.counter.blob_gets.get(d, 0) for d in layers}
    assert all(n == 1 for n in gets.values()), gets  # two hosts, one registry download per layer
    stats = [p2p.stats(p) for p in p2p.peers]
    swarm = sum(s["bytesFromPeers"] + s["bytesFromSupernode"] for s in stats)
    assert swarm >= 2 * (9 << 20), stats  # the big layer reached both hosts through the swarm
    assert all(s["bytesFromRegistry"] == 0 and s["p2pFailures"] == 0 for s in stats), stats
    info = p2p.daemons[0].cli("info").stdout
    assert f"P2P Peer: {p2p.peers[0]}" in info
    s0 = stats[0]
    assert (f"P2P Bytes: from peers {s0['bytesFromPeers']}, from the supernode {s0['bytesFromSupernode']}, "
            f"from the registry 0; P2P failures 0") in info, info
    status, text = p2p.daemons[0].api("GET", "/metrics")
    assert status == 200
    text = text if isinstance(text, str) else text.decode()
    exported = {m.group(1): float(m.group(2)) for m in re.finditer(r'^engine_daemon_p2p_(\w+_total\{\w+="\w+"\}) (\S+)$',
                                                                     text, re.MULTILINE)}
    assert exported.get('bytes_total{source="peers"}') == s0["bytesFromPeers"], (exported, s0)
    assert exported.get('bytes_total{source="supernode"}') == s0["bytesFromSupernode"], (exported, s0)
    assert exported.get('failures_total{kind="p2p"}') == 0, exported


def test_path_shaped_digests_and_unlisted_registries_are_refused(p2p):
    peer, ctx, ns = p2p.peers[0], p2p.ctx(), p2p.counter.host
    for path in ("/pieces/%2Fetc%2Fhostname/0", "/pieces/..%2F..%2F..%2Fetc%2Fhostname/0",
                 f"/v2/p2p/app/blobs/%2Fetc%2Fhostname?ns={ns}", f"/v2/p2p/app/blobs/..%2F..%2Fetc%2Fhostname?ns={ns}",
                 f"/v2/p2p/app/blobs/sha256:..%2F..%2Fetc?ns={ns}", f"/v2/..%2F..%2Fetc/blobs/{p2p.big}?ns={ns}"):
        status, body, _ = request(peer, ctx, "GET", path)
        assert status in (400, 404), (path, status, body[:100])
        assert open("/etc/hostname", "rb").read().strip() not in body
    # an open proxy: a registry the peer was not told to mirror
    status, body, _ = request(peer, ctx, "GET", f"/v2/?ns=127.0.0.1:{free_port()}")
    assert status == 403, body
    # the supernode takes names only: no paths, no URLs to fetch, no registry it does not serve
    outside = p2p.tmp / "written-by-request"
    for body in ({"registry": ns, "repository": "p2p/app", "digest": f"sha256:../../../{outside}"},
                 {"registry": ns, "repository": "../../etc", "digest": p2p.big},
                 {"registry": ns, "repository": "p2p/app", "digest": "md5:" + "0" * 32}):
        status, text, _ = request(p2p.sn, ctx, "POST", "/blobs", body)
        assert status == 400, (body, text)
    status, text, _ = request(p2p.sn, ctx, "POST", "/blobs", {
        "registry": f"127.0.0.1:{free_port()}", "repository": "p2p/app", "digest": p2p.big,
        "url": f"http://{ns}/v2/p2p/app/blobs/{p2p.big}", "headers": {"Authorization": "x"}})
    assert status == 403, text
    status, text, _ = request(p2p.sn, ctx, "POST", "/blobs/%2Fetc%2Fhostname/peers", {"port": 1})
    assert status == 400, text
    assert not outside.exists()


def test_nothing_answers_without_a_cluster_certificate(p2p):
    import libtorrent as lt

    for base in (p2p.peers[0], p2p.sn):
        for ctx in (client_ctx(p2p.ca, None), client_ctx(p2p.ca, p2p.rogue["r0"])):
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                request(base, ctx, "GET", "/stats", timeout=5)
    # a BitTorrent client with a certificate from another CA gets nothing from the seed
    status, body, _ = request(p2p.sn, p2p.ctx(), "POST", "/blobs",
                              {"registry": p2p.counter.host, "repository": "p2p/app", "digest": p2p.big})
    assert status == 200, body
    meta = json.loads(body)
    s = lt.session({"listen_interfaces": f"127.0.0.1:{free_port()}s", "enable_dht": False, "enable_lsd": False,
                    "enable_upnp": False, "enable_natpmp": False})
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(base64.b64decode(meta["torrent"])))
    params.save_path = str(p2p.tmp / "rogue-dl")
    h = s.add_torrent(params)
    h.set_ssl_certificate(*p2p.rogue["r0"], "")
    h.connect_peer(("127.0.0.1", meta["seed"]))
    time.sleep(4)
    assert h.status().total_payload_download == 0 and h.status().num_pieces == 0


def test_a_private_blob_needs_the_clients_own_credentials(p2p):
    peer = p2p.peers[0]  # it holds the big layer from the first test
    p2p.counter.bearer = ("alice", "secret")
    try:
        status, _, headers = request(peer, p2p.ctx(), "GET", f"/v2/?ns={p2p.counter.host}")
        assert status == 401 and "Bearer" in headers.get("WWW-Authenticate", ""), status
        status, body, headers = p2p.get_blob(peer, "p2p/app", p2p.big)
        assert status == 401 and len(body) < 1000, status
        status, body, _ = p2p.get_blob(peer, "p2p/app", p2p.big, {"Authorization": "Bearer forged"})
        assert status == 401
        # alice's pouchd asks the registry's token server itself; the token stays on her host
        req = urllib.request.Request(f"{p2p.counter.url}/token?scope=repository:p2p/app:pull", headers={
            "Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()})
        token = json.loads(urllib.request.urlopen(req, timeout=10).read())["token"]
        status, body, _ = p2p.get_blob(peer, "p2p/app", p2p.big, {"Authorization": f"Bearer {token}"})
        assert status == 200 and _sha(body) == p2p.big
    finally:
        p2p.counter.bearer = None


def test_a_corrupt_copy_is_survived(p2p):
    # host 0 keeps one copy on disk: the file it seeds is the one it serves from its cache
    name = p2p.big.replace(":", "-")
    seeded, cached = p2p.tmp / "peer-h0" / "swarm" / name, p2p.tmp / "peer-h0" / "blobs" / name
    assert os.stat(seeded).st_ino == os.stat(cached).st_ino and os.stat(cached).st_nlink == 2
    # flip a byte in every piece of it
    with open(seeded, "r+b") as f:
        for off in range(100, 9 << 20, 4 << 20):
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))
    gets = p2p.counter.blob_gets.get(p2p.big, 0)
    fresh = p2p.start_peer("h2")
    status, body, _ = p2p.get_blob(fresh, "p2p/app", p2p.big)  # pieces from host 0 fail their hash
    assert status == 200 and _sha(body) == p2p.big
    # (libtorrent counts the pieces from host 0 that failed their hash, and bans host 0)
    status, body, _ = p2p.get_blob(p2p.peers[0], "p2p/app", p2p.big)  # re-verified, fetched again
    assert status == 200 and _sha(body) == p2p.big
    # (normally all from the swarm; a peer starved for 10 s on a loaded machine may go to the registry)
    assert p2p.counter.blob_gets.get(p2p.big, 0) <= gets + 2


def test_concurrent_pulls_of_one_blob_on_one_peer(p2p):
    fresh = p2p.start_peer("h3")
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: p2p.get_blob(fresh, "p2p/app", p2p.big), range(4)))
    assert all(s == 200 and _sha(b) == p2p.big for s, b, _ in results), [s for s, _, _ in results]
    cache = p2p.tmp / "peer-h3" / "blobs"
    assert sorted(os.listdir(cache)) == [p2p.big.replace(":", "-")]  # one copy, no .part left
    assert p2p.stats(fresh)["blobsServed"] == 4


def test_supernode_killed_mid_pull_falls_back_and_its_state_survives_restart(p2p):
    img2 = build_busybox_image(p2p.tmp / "layout2", "v2", big=12 << 20, seed=6, repo="p2p/other")
    skopeo_push(img2, f"{p2p.counter.host}/p2p/other:v2")
    big2 = img2.manifests["linux/amd64"]["layers"][-1]
    slow = p2p.start_peer("h4", "--download-rate", str(2 << 20))  # ~6 s from the swarm
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(p2p.get_blob, slow, "p2p/other", big2)
        deadline = time.monotonic() + 20
        while p2p.stats(slow)["bytesFromPeers"] == 0 and time.monotonic() < deadline:
            if p2p.counter.blob_gets.get(big2):  # the supernode has it: the swarm transfer is under way
                break
            time.sleep(0.1)
        time.sleep(1)
        p2p.sn_proc.kill()
        p2p.sn_proc.wait(10)
        status, body, _ = fut.result(timeout=120)
    assert status == 200 and _sha(body) == big2
    stats = p2p.stats(slow)
    assert stats["p2pFailures"] >= 1 and stats["bytesFromRegistry"] > 0, stats
    assert not [f for f in os.listdir(p2p.tmp / "peer-h4" / "blobs") if f.endswith(".part")]
    # a pull through pouchd with the supernode down: straight to the registry, inside the peer
    r = p2p.daemons[0].cli("pull", f"{p2p.counter.host}/p2p/other:v2", timeout=120)
    assert r.returncode == 0, r.stderr
    # restarted, the supernode seeds what it had without going to the registry again
    gets = p2p.counter.blob_gets.get(p2p.big, 0)
    p2p.start_supernode()
    assert p2p.stats(p2p.sn)["blobs"] >= 1
    fresh = p2p.start_peer("h5")
    status, body, _ = p2p.get_blob(fresh, "p2p/app", p2p.big)
    assert status == 200 and _sha(body) == p2p.big
    assert p2p.counter.blob_gets.get(p2p.big, 0) == gets


def test_a_slow_swarm_that_progresses_is_not_given_up(p2p):
    # 9 MiB at 1 MiB/s with a 2 s stall timeout: no 4 MiB piece completes within 2 s, but bytes
    # keep coming, so the peer stays in the swarm (the registry is not asked again)
    gets = p2p.counter.blob_gets.get(p2p.big, 0)
    slow = p2p.start_peer("h6", "--download-rate", str(1 << 20), "--stall-timeout", "2")
    status, body, _ = p2p.get_blob(slow, "p2p/app", p2p.big)
    assert status == 200 and _sha(body) == p2p.big
    stats = p2p.stats(slow)
    assert stats["p2pFailures"] == 0 and stats["bytesFromRegistry"] == 0, stats
    assert p2p.counter.blob_gets.get(p2p.big, 0) == gets


def test_a_restarted_peer_seeds_its_cache_again(p2p):
    url = p2p.start_peer("h7")
    status, body, _ = p2p.get_blob(url, "p2p/app", p2p.big)
    assert status == 200 and _sha(body) == p2p.big
    proc = p2p.procs[-1]
    proc.terminate()
    proc.wait(10)
    again = p2p.start_peer("h7", cache="peer-h7")
    deadline = time.monotonic() + 30
    while p2p.stats(again)["seeding"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert p2p.stats(again)["seeding"] >= 1
    # and it serves the blob from that one copy without fetching it again
    status, body, _ = p2p.get_blob(again, "p2p/app", p2p.big)
    assert status == 200 and _sha(body) == p2p.big
    s = p2p.stats(again)
    assert s["bytesFromPeers"] + s["bytesFromSupernode"] + s["bytesFromRegistry"] == 0, s

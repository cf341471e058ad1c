"""Benchmark: P2P distribution against direct registry pulls, hosts as network namespaces.

Topology (all created here, names i15*, 10.215.0.0/24, removed at the end): a bridge; a registry
namespace (docker-registry behind a proxy that counts blob GETs, its veth capped by tc at
--link-mbit); a supernode namespace; N host namespaces, each with a P2P peer (mutual TLS, cluster
CA) and a client that pulls the image's blobs (3 at a time, like pouchd) through its peer, or
straight from the registry for the direct runs, and checks every digest.

For N in --hosts: wall time of N simultaneous pulls direct and through P2P, registry egress in
copies of the image, peak RSS of the peers.  Then fault runs (N=--fault-hosts): a flipped piece,
a killed seed, a hung peer (SIGSTOP), a killed supernode; each must end with every surviving host
holding a verified image; the cost is the wall time against the clean P2P run.

    sudo .venv/bin/python bench/p2p.py [--hosts 1,4,8,16] [--layers 5 --layer-mb 40] [--link-mbit 800]

(The client measures distribution, not unpacking: pouchd is not started in the namespaces.)
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PY = str(ROOT / ".venv/bin/python")
NET = "10.215.0"
BR = "i15br"
REG_IP, SN_IP = f"{NET}.2", f"{NET}.3"
REG = f"{REG_IP}:5000"
SN_API, SN_SWARM = f"https://{SN_IP}:8002", f"{SN_IP}:6881"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def host_ip(k: int) -> str:
    return f"{NET}.{10 + k}"


# -- namespaces --------------------------------------------------------------------------------

def add_ns(name: str, ip: str, idx: int) -> None:
    sh("ip", "netns", "add", name)
    sh("ip", "link", "add", f"i15v{idx}", "type", "veth", "peer", "name", f"i15p{idx}")
    sh("ip", "link", "set", f"i15p{idx}", "netns", name)
    sh("ip", "link", "set", f"i15v{idx}", "master", BR, "up")
    ex = ("ip", "netns", "exec", name)
    sh(*ex, "ip", "link", "set", "lo", "up")
    sh(*ex, "ip", "link", "set", f"i15p{idx}", "name", "eth0")
    sh(*ex, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    sh(*ex, "ip", "link", "set", "eth0", "up")


def setup_net(n_hosts: int, link_mbit: int) -> list[str]:
    sh("ip", "link", "add", BR, "type", "bridge")
    sh("ip", "addr", "add", f"{NET}.1/24", "dev", BR)
    sh("ip", "link", "set", BR, "up")
    sh("iptables", "-I", "FORWARD", "-i", BR, "-o", BR, "-j", "ACCEPT")
    add_ns("i15reg", REG_IP, 0)
    add_ns("i15sn", SN_IP, 1)
    # the registry's link: every byte it sends leaves through this veth
    sh("ip", "netns", "exec", "i15reg", "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
       "rate", f"{link_mbit}mbit", "burst", "1mbit", "latency", "50ms")
    names = []
    for k in range(n_hosts):
        add_ns(f"i15h{k}", host_ip(k), 10 + k)
        names.append(f"i15h{k}")
    return names


def teardown_net(n_hosts: int) -> None:
    for name in ["i15reg", "i15sn"] + [f"i15h{k}" for k in range(n_hosts)]:
        sh("ip", "netns", "del", name, check=False)
    sh("ip", "link", "del", BR, check=False)
    sh("iptables", "-D", "FORWARD", "-i", BR, "-o", BR, "-j", "ACCEPT", check=False)


def in_ns(ns: str, *argv: str, log=None) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=log or subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, cwd=ROOT)


# -- roles run inside namespaces ------------------------------------------------------------------

def role_origin(work: Path, layers: int, layer_mb: int) -> None:
    """In the registry namespace: docker-registry, the counting proxy on :5000, the blobs pushed."""

    from tests.daemon.registry_env import LoopThread
    from tests.fixtures.registry import RegistryProxy, RegistryServer

    class Proxy(RegistryProxy):
        async def start(self):
            import aiohttp
            from aiohttp import web
            self._session = aiohttp.ClientSession(auto_decompress=False)
            app = web.Application()
            app.router.add_get("/_counts", lambda r: web.json_response(self.blob_gets))
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            self.port = 5000
            await web.TCPSite(self._runner, "0.0.0.0", 5000).start()
            return self

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # for sigwait below
    reg = RegistryServer(work / "registry").start()
    try:
        serve_origin(reg, work, layers, layer_mb, Proxy, LoopThread)
    finally:
        reg.stop()


def serve_origin(reg, work: Path, layers: int, layer_mb: int, Proxy, LoopThread) -> None:
    import urllib.request

    blobs = []
    for i in range(layers):
        data = os.urandom(layer_mb * 1000 * 1000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        req = urllib.request.Request(f"{reg.url}/v2/bench/app/blobs/uploads/", method="POST")
        loc = urllib.request.urlopen(req).headers["Location"]
        loc = loc if loc.startswith("http") else reg.url + loc
        sep = "&" if "?" in loc else "?"
        urllib.request.urlopen(urllib.request.Request(f"{loc}{sep}digest={digest}", data=data, method="PUT",
                                                      headers={"Content-Type": "application/octet-stream"}))
        blobs.append({"digest": digest, "size": len(data)})
    loop = LoopThread()
    loop.run(Proxy(reg.url).start())
    (work / "blobs.json").write_text(json.dumps(blobs))
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


def role_client(base: str, blobs_file: str, out: str, ca: str, cert: str, key: str, ns_param: str) -> None:
    """Pull the blobs (3 at a time) from ``base`` and check their digests; write timings."""
    import ssl

    import aiohttp

    blobs = json.loads(Path(blobs_file).read_text())
    ctx = None
    if base.startswith("https"):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(cert, key)

    async def run() -> dict:
        sem = asyncio.Semaphore(3)
        ok = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as s:
            async def one(b):
                async with sem:
                    for _attempt in range(3):  # pouchd retries a mirror error at the registry; so do we
                        h = hashlib.sha256()
                        try:
                            url = f"{base}/v2/bench/app/blobs/{b['digest']}{ns_param}"
                            async with s.get(url, ssl=ctx) as r:
                                async for chunk in r.content.iter_chunked(1 << 20):
                                    h.update(chunk)
                            if "sha256:" + h.hexdigest() == b["digest"]:
                                ok.append(b["digest"])
                                return
                        except aiohttp.ClientError:
                            pass
            t0 = time.time()
            await asyncio.gather(*(one(b) for b in blobs))
            return {"start": t0, "end": time.time(), "verified": len(ok), "blobs": len(blobs)}

    Path(out).write_text(json.dumps(asyncio.run(run())))


# -- the benchmark --------------------------------------------------------------------------------

class Bench:
    def __init__(self, work: Path, hosts: list[str], link_mbit: int) -> None:
        self.work, self.hosts, self.link = work, hosts, link_mbit
        self.log = open(work / "bench.log", "ab")
        self.procs: list[subprocess.Popen] = []
        self.sn: subprocess.Popen | None = None
        self.peers: dict[str, subprocess.Popen] = {}
        self.round = 0

    def certs(self) -> None:
        from tests.p2p.conftest import make_ca
        names = ["sn"] + self.hosts
        self.cert = make_ca(self.work / "ca", names, ips=tuple([SN_IP] + [host_ip(k) for k in range(len(self.hosts))]))
        self.ca = str(self.work / "ca" / "ca.pem")

    def tls(self, name: str) -> list[str]:
        return ["--p2p-ca", self.ca, "--p2p-cert", self.cert[name][0], "--p2p-key", self.cert[name][1]]

    def start_origin(self, layers: int, layer_mb: int) -> None:
        p = in_ns("i15reg", PY, __file__, "--role", "origin", "--work", str(self.work), "--layers", str(layers),
                  "--layer-mb", str(layer_mb), log=self.log)
        self.procs.append(p)
        deadline = time.monotonic() + 300
        while not (self.work / "blobs.json").exists():
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("origin did not start; see bench.log")
            time.sleep(0.5)
        self.blobs = json.loads((self.work / "blobs.json").read_text())
        self.image_bytes = sum(b["size"] for b in self.blobs)

    def counts(self) -> dict:
        import urllib.request
        return json.loads(urllib.request.urlopen(f"http://{REG}/_counts", timeout=10).read())

    def egress_copies(self, before: dict) -> float:
        after = self.counts()
        sizes = {b["digest"]: b["size"] for b in self.blobs}
        sent = sum((after.get(d, 0) - before.get(d, 0)) * sizes[d] for d in sizes)
        return sent / self.image_bytes

    def start_p2p(self, n: int) -> None:
        self.round += 1
        r = self.work / f"round{self.round}"
        self.sn = in_ns("i15sn", PY, "-m", "pouch.p2p.supernode", "--listen", f"{SN_IP}:8002",
                        "--swarm-listen", SN_SWARM, "--cache", str(r / "sn"), "--insecure-registry", REG,
                        *self.tls("sn"), log=self.log)
        self.peers = {}
        for k, ns in enumerate(self.hosts[:n]):
            self.peers[ns] = in_ns(ns, PY, "-m", "pouch.p2p.peer", "--listen", "127.0.0.1:65001",
                                   "--swarm-listen", f"{host_ip(k)}:6882", "--supernode", SN_API,
                                   "--cache", str(r / ns), "--insecure-registries", REG, *self.tls(ns), log=self.log)
        for ns in self.peers:
            self.wait_up(ns)

    def wait_up(self, ns: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sf", "--cacert", self.ca, "--cert",
                                self.cert[ns][0], "--key", self.cert[ns][1], "https://127.0.0.1:65001/stats"],
                               capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"peer in {ns} did not come up")

    def stop_p2p(self) -> dict:
        rss = {}
        for ns, p in self.peers.items():
            rss[ns] = peak_rss_mib(p.pid)
        for p in [*self.peers.values(), self.sn]:
            if p is None:
                continue
            for sig in (signal.SIGCONT, signal.SIGTERM):
                for c in [p.pid, *children(p.pid)]:
                    try:
                        os.kill(c, sig)
                    except ProcessLookupError:
                        pass
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                for c in [p.pid, *children(p.pid)]:
                    try:
                        os.kill(c, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                p.wait(5)
        return rss

    def pull(self, n: int, p2p: bool, fault=None) -> dict:
        """N clients at once; returns wall time, verified hosts, egress copies."""
        before = self.counts()
        outs, clients = [], []
        for k, ns in enumerate(self.hosts[:n]):
            out = self.work / f"client-{self.round}-{ns}-{int(p2p)}.json"
            out.unlink(missing_ok=True)
            outs.append(out)
            base, nsq = ("https://127.0.0.1:65001", f"?ns={REG}") if p2p else (f"http://{REG}", "")
            cert = self.cert[ns]
            clients.append(in_ns(ns, PY, __file__, "--role", "client", "--base", base, "--blobs",
                                 str(self.work / "blobs.json"), "--out", str(out), "--ca", self.ca,
                                 "--cert", cert[0], "--key", cert[1], "--ns-param", nsq, log=self.log))
        t0 = time.time()
        skip = set()
        if fault:
            skip = fault(self) or set()
        for ns, c in zip(self.hosts[:n], clients):
            if ns in skip:
                continue
            c.wait(600)
        for ns, c in zip(self.hosts[:n], clients):
            if ns in skip and c.poll() is None:
                c.kill()
                c.wait()
        res = [json.loads(o.read_text()) for ns, o in zip(self.hosts[:n], outs) if ns not in skip and o.exists()]
        verified = sum(1 for r in res if r["verified"] == r["blobs"])
        end = max((r["end"] for r in res), default=time.time())
        return {"wall": end - t0, "verified": verified, "hosts": n - len(skip),
                "egress_copies": round(self.egress_copies(before), 3)}


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    kids = [int(x) for x in out]
    return kids + [g for k in kids for g in children(k)]


def peak_rss_mib(pid: int) -> float:
    """VmHWM of the peer (the python process under ip netns exec)."""
    best = 0
    for p in [pid, *children(pid)]:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return round(best / 1024, 1)


def signal_peer(b: Bench, ns: str, sig: int) -> None:
    p = b.peers[ns]
    for c in [p.pid, *children(p.pid)]:
        try:
            os.kill(c, sig)
        except ProcessLookupError:
            pass


def after(delay: float, fn) -> None:
    threading.Timer(delay, fn).start()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", default="bench")
    ap.add_argument("--work")
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--layer-mb", type=int, default=40)
    ap.add_argument("--hosts", default="1,4,8,16")
    ap.add_argument("--fault-hosts", type=int, default=4)
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs) for profiling")
    ap.add_argument("--link-mbit", type=int, default=800)
    ap.add_argument("--base"), ap.add_argument("--blobs"), ap.add_argument("--out"), ap.add_argument("--ns-param")
    ap.add_argument("--ca"), ap.add_argument("--cert"), ap.add_argument("--key")
    a = ap.parse_args()
    if a.role == "origin":
        role_origin(Path(a.work), a.layers, a.layer_mb)
        return 0
    if a.role == "client":
        role_client(a.base, a.blobs, a.out, a.ca, a.cert, a.key, a.ns_param or "")
        return 0
    from bench.engines import HEADER, row

    sizes = [int(x) for x in a.hosts.split(",")]
    n_max = max(sizes + [a.fault_hosts])
    work = Path(tempfile.mkdtemp(prefix="i15-p2p-bench-"))
    teardown_net(n_max)
    b = None
    try:
        hosts = setup_net(n_max, a.link_mbit)
        b = Bench(work, hosts, a.link_mbit)
        b.certs()
        b.start_origin(a.layers, a.layer_mb)
        print(f"image {a.layers} x {a.layer_mb} MB, registry link {a.link_mbit} Mbit/s (tc tbf); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine: noisy)", flush=True)
        print(f"{'N':>3} {'direct s':>9} {'p2p s':>7} {'ratio':>6} {'egress direct':>14} {'egress p2p':>11} "
              f"{'verified':>9} {'peer RSS MiB (max/mean)':>24}", flush=True)
        clean, rows = {}, []
        for n in sizes:
            d = b.pull(n, p2p=False)
            b.start_p2p(n)
            p = b.pull(n, p2p=True)
            rss = b.stop_p2p()
            clean[n] = p["wall"]
            vals = list(rss.values())
            print(f"{n:>3} {d['wall']:>9.2f} {p['wall']:>7.2f} {p['wall'] / d['wall']:>6.2f} "
                  f"{d['egress_copies']:>14.3f} {p['egress_copies']:>11.3f} {p['verified']:>4}/{p['hosts']:<4} "
                  f"{max(vals):>12.1f}/{sum(vals) / len(vals):.1f}", flush=True)
            rows.append((n, d, p, vals))
        print(HEADER)
        for n, d, p, vals in rows:
            limit = 1.5 if n == 1 else (0.6 if n == 16 else None)
            print(row(f"N={n} wall time, P2P vs direct (s)", p["wall"], d["wall"], "s",
                      f"<= {limit}x direct" if limit else "", p["wall"] <= limit * d["wall"] if limit else None))
            print(row(f"N={n} registry egress (copies of the image)", p["egress_copies"], d["egress_copies"], "copy",
                      "<= 1.05", p["egress_copies"] <= 1.05))
            print(row(f"N={n} peer peak RSS max (MiB)", max(vals), None, "MiB"))
        print(flush=True)
        if a.no_faults:
            return 0
        n = a.fault_hosts
        if n not in clean:
            b.start_p2p(n)
            clean[n] = b.pull(n, p2p=True)["wall"]
            b.stop_p2p()

        def killed_seed(bench: Bench):
            after(1.0, lambda: signal_peer(bench, bench.hosts[0], signal.SIGKILL))
            return {bench.hosts[0]}

        def hung_peer(bench: Bench):
            after(1.0, lambda: signal_peer(bench, bench.hosts[0], signal.SIGSTOP))
            return {bench.hosts[0]}

        def killed_supernode(bench: Bench):
            def kill():
                for c in [bench.sn.pid, *children(bench.sn.pid)]:
                    try:
                        os.kill(c, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            after(1.0, kill)
            return set()

        print(f"faults at N={n} (clean P2P run: {clean[n]:.2f} s)", flush=True)
        # flipped piece: a first host pulls, its copies are corrupted, then all N pull
        b.start_p2p(n)
        first = b.pull(1, p2p=True)
        rdir = b.work / f"round{b.round}" / b.hosts[0]
        seen = set()  # a blob is one file with two names (seeded and cached): flip each file once
        for sub in ("swarm", "blobs"):
            for f in (rdir / sub).iterdir():
                if f.name.endswith(".part") or f.stat().st_ino in seen:
                    continue
                seen.add(f.stat().st_ino)
                with open(f, "r+b") as fh:
                    size = f.stat().st_size
                    for off in range(100, size, 4 << 20):
                        fh.seek(off)
                        c = fh.read(1)
                        fh.seek(off)
                        fh.write(bytes([c[0] ^ 0xFF]))
        r = b.pull(n, p2p=True)
        stats = peer_stats(b, b.hosts[1:n])
        b.stop_p2p()
        report("flipped pieces (host 0's copies)", r, clean[n], f"hash failures {stats['hashFailures']}, "
               f"first pull egress {first['egress_copies']:.3f}")
        for label, fault in (("killed seed (host 0, SIGKILL at 1 s)", killed_seed),
                             ("hung peer (host 0, SIGSTOP at 1 s)", hung_peer),
                             ("killed supernode (SIGKILL at 1 s)", killed_supernode)):
            b.start_p2p(n)
            r = b.pull(n, p2p=True, fault=fault)
            stats = peer_stats(b, [h for h in b.hosts[:n] if h != b.hosts[0] or fault is killed_supernode])
            b.stop_p2p()
            report(label, r, clean[n], f"P2P failures {stats['p2pFailures']}, "
                   f"bytes from registry {stats['bytesFromRegistry'] / 1e6:.0f} MB")
        return 0
    except Exception:
        log = work / "bench.log"
        if log.exists():
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        try:
            for p in (b.procs if b else []):
                p.send_signal(signal.SIGTERM)
                p.wait(20)
            b.stop_p2p()
        except Exception:
            pass
        teardown_net(n_max)
        if a.keep:
            print(f"work directory kept: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


def peer_stats(b: Bench, hosts: list[str]) -> dict:
    total: dict = {}
    for ns in hosts:
        r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sf", "--max-time", "5", "--cacert", b.ca, "--cert",
                            b.cert[ns][0], "--key", b.cert[ns][1], "https://127.0.0.1:65001/stats"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            for k, v in json.loads(r.stdout).items():
                total[k] = total.get(k, 0) + v
    return {k: total.get(k, 0) for k in ("hashFailures", "p2pFailures", "bytesFromRegistry")} | total


def report(label: str, r: dict, clean: float, extra: str) -> None:
    print(f"  {label}: {r['wall']:.2f} s ({r['wall'] - clean:+.2f} s against the clean run), "
          f"{r['verified']}/{r['hosts']} hosts verified, egress {r['egress_copies']:.3f} copies; {extra}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

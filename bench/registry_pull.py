"""Benchmark: cold pull of a 5-layer ~200 MB image from a local registry, pouch vs Docker.

Builds an image of five ~40 MB layers of random (incompressible) data, pushes it to Debian's
docker-registry on 127.0.0.1 with skopeo, then times a cold ``pouch pull`` (pouchd with its own
containerd) and a cold ``docker pull`` (Debian's dockerd, started here with its own data root,
exec root and socket, no iptables, no bridge), and a pull of the same image under another tag
(every layer present; target < 100 ms).  Cold pulls alternate between the engines over
``--rounds`` rounds, each after ``sync``; the ratio is of the medians.  Everything lives in a temp dir and is removed.

    sudo .venv/bin/python bench/registry_pull.py [--layers 5] [--layer-mb 40]

Needs: docker-registry, skopeo, containerd, runc, docker.io (dockerd; ``apt-get install docker.io``).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engines import HEADER, Dockerd, have_docker, row  # noqa: E402
from pouch.client import APIClient  # noqa: E402
from tests.fixtures.daemon import PouchDaemon  # noqa: E402
from tests.fixtures.registry import RegistryServer, missing_tools  # noqa: E402

def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_image(layout: Path, layers: int, layer_mb: int, tag: str) -> None:
    """OCI layout of ``layers`` gzip layers, each one file of random bytes."""
    import io
    import tarfile
    blobs = layout / "blobs/sha256"
    blobs.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def put(data: bytes) -> str:
        d = sha(data)
        (blobs / d[7:]).write_bytes(data)
        return d

    descs, diff_ids = [], []
    for i in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            payload = os.urandom(layer_mb << 20)
            info = tarfile.TarInfo(f"data/layer{i}.bin")
            info.size, info.mode, info.mtime = len(payload), 0o644, 0
            tar.addfile(info, io.BytesIO(payload))
        raw = buf.getvalue()
        blob = gzip.compress(raw, compresslevel=1, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(blob),
                      "size": len(blob)})
        diff_ids.append(sha(raw))
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(cfg), "size": len(cfg)},
                           "layers": descs}).encode()
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
           "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))


def skopeo(tmp: Path, *args: str) -> None:
    policy = tmp / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    subprocess.run(["skopeo", "--policy", str(policy), "copy", "--quiet", "--src-tls-verify=false",
                    "--dest-tls-verify=false", *args], check=True, capture_output=True, env=dict(os.environ, HOME=str(tmp)))


def registry_floor(host: str, repo: str, blobs: Path) -> float:
    """Seconds to GET every layer blob from the registry (3 in parallel, as the pullers do) and drop it."""
    import concurrent.futures
    import urllib.request

    def get(digest: str) -> None:
        with urllib.request.urlopen(f"http://{host}/v2/{repo}/blobs/sha256:{digest}") as r:
            while r.read(1 << 20):
                pass
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        list(ex.map(get, [f.name for f in blobs.iterdir() if f.stat().st_size > 1 << 20]))  # the layers
    return time.monotonic() - t


def timed(fn) -> float:
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def blobs_gone(home: str, digests: list[str], timeout: float = 30.0) -> None:
    """Wait until containerd's garbage collector removed these blobs (the next pull is cold)."""
    root = Path(home, "containerd/root/io.containerd.content.v1.content/blobs/sha256")
    deadline = time.monotonic() + timeout
    while any((root / d).exists() for d in digests):
        if time.monotonic() > deadline:
            raise RuntimeError("pouchd's containerd kept the layers after rmi")
        time.sleep(0.1)


def quiesce() -> None:
    """Flush dirty pages so one pull's write-back does not land in the next pull's time."""
    os.sync()
    time.sleep(0.5)


def median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--layer-mb", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3, help="cold pulls of each engine, alternating (median)")
    ap.add_argument("--skip-docker", action="store_true")
    ap.add_argument("--pouchd-arg", action="append", default=[], help="extra pouchd flag (repeatable)")
    a = ap.parse_args()
    missing = missing_tools() + [t for t in ("containerd", "runc") if not shutil.which(t)]
    if not a.skip_docker and not have_docker():
        missing.append("dockerd (apt-get install docker.io)")
    if missing:
        print("missing:", ", ".join(missing))
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="pouch-bench-"))
    reg = RegistryServer(tmp / "registry").start()
    pouchd = PouchDaemon(extra_args=["--insecure-registries", reg.host, *a.pouchd_arg])
    dockerd = None
    try:
        print(f"building {a.layers} x {a.layer_mb} MB random layers ...", flush=True)
        build_image(tmp / "layout", a.layers, a.layer_mb, "v1")
        ref = f"{reg.host}/bench/big:v1"
        skopeo(tmp, f"oci:{tmp / 'layout'}:v1", f"docker://{ref}")
        skopeo(tmp, f"docker://{ref}", f"docker://{reg.host}/bench/big:v2")
        blobs = tmp / "layout/blobs/sha256"
        size = sum(f.stat().st_size for f in blobs.iterdir())
        layer_digests = [f.name for f in blobs.iterdir() if f.stat().st_size > 1 << 20]
        print(f"image: {size / 1e6:.0f} MB compressed, pushed to {reg.host}", flush=True)
        t_floor = registry_floor(reg.host, "bench/big", blobs)
        print(f"floor: GET of every layer, 3 at a time, bytes discarded: {t_floor:6.2f} s "
              f"({size / 1e6 / t_floor:.0f} MB/s) - no client can pull faster than the registry serves",
              flush=True)

        pouchd.start()
        if not a.skip_docker:
            dockerd = Dockerd(str(tmp / "docker"), ["--insecure-registry", reg.host, "--ip6tables=false",
                                                    "--storage-driver=overlay2"], bridge=False)
            dockerd.start()

        def pouch_cold() -> float:
            quiesce()
            t = time.monotonic()
            r = pouchd.cli("pull", ref, timeout=600)
            took = time.monotonic() - t
            assert r.returncode == 0, r.stderr
            assert pouchd.cli("rmi", ref).returncode == 0
            blobs_gone(pouchd.home, layer_digests)
            return took

        def docker_cold() -> float:
            quiesce()
            t = time.monotonic()
            r = dockerd.docker("pull", ref)
            took = time.monotonic() - t
            assert r.returncode == 0, r.stderr
            assert dockerd.docker("rmi", ref).returncode == 0
            return took

        t_pouch: list[float] = []
        t_docker: list[float] = []
        for i in range(a.rounds):
            # alternate who goes first, so neither always runs right after the other's write-back
            order = [(t_pouch, pouch_cold), (t_docker, docker_cold)] if not a.skip_docker else [(t_pouch, pouch_cold)]
            for times, fn in (order if i % 2 == 0 else order[::-1]):
                times.append(fn())
            line = f"round {i + 1}: pouch {t_pouch[-1]:5.2f} s"
            if t_docker:
                line += f"   docker {t_docker[-1]:5.2f} s   ratio {t_pouch[-1] / t_docker[-1]:.2f}"
            print(line, flush=True)
        mp = median(t_pouch)
        print(f"pouch  cold pull: median {mp:6.2f} s  ({size / 1e6 / mp:.0f} MB/s)", flush=True)

        assert pouchd.cli("pull", ref, timeout=600).returncode == 0
        client = APIClient(host=pouchd.host)
        retag = []
        for _ in range(5):
            t = time.monotonic()
            msgs = list(client.pull(f"{reg.host}/bench/big", "v2"))
            retag.append(time.monotonic() - t)
            assert not any("error" in m for m in msgs), msgs
        print(f"pouch  pull, all layers present (other tag): first {retag[0] * 1000:.0f} ms, "
              f"best {min(retag) * 1000:.0f} ms, median {median(retag) * 1000:.0f} ms", flush=True)

        if dockerd:
            md = median(t_docker)
            version = dockerd.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
            print(f"docker cold pull: median {md:6.2f} s  ({size / 1e6 / md:.0f} MB/s)  [{version}]", flush=True)
            assert dockerd.docker("pull", ref).returncode == 0
            t = time.monotonic()
            assert dockerd.docker("pull", f"{reg.host}/bench/big:v2").returncode == 0
            print(f"docker pull, all layers present: {(time.monotonic() - t) * 1000:.0f} ms (CLI included)")
            print(f"ratio pouch/docker (cold pull, medians of {a.rounds}): {mp / md:.2f}  (target <= 0.70)")
        print()
        print(HEADER)
        md = median(t_docker) if dockerd else None
        print(row(f"cold pull {a.layers} x {a.layer_mb} MB vs docker pull", mp * 1000, md and md * 1000, "ms",
                  "ratio <= 0.70", (mp / md <= 0.70) if md else None))
        print(row("pull with every layer present (median)", median(retag) * 1000, None, "ms", "< 100 ms",
                  median(retag) < 0.100))
    finally:
        if dockerd:
            dockerd.stop()
        pouchd.cleanup()
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

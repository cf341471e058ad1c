"""CRI benchmark: pouchd --enable-cri against containerd 1.6's own CRI plugin, alternating.

Both runtimes get the same local registry (busybox and a catatonit pause image), a CNI
bridge conf of their own (own bridge and subnet) and private root/state/sockets.
Measured (after warm-up, medians of alternated rounds):
- RunPodSandbox + PullImage(present) + CreateContainer + StartContainer of a busybox pod
  (bar: pouchd <= 0.8x containerd's CRI);
- with 100 pods x 2 containers running: ListContainers and ListPodSandbox latency
  (bar: < 30 ms each) and the RSS growth per pod of the daemon (pouchd with its containerd).

    .venv/bin/python bench/cri.py [--rounds 15] [--pods 100]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engines import HEADER, row  # noqa: E402
from tests.cri.conftest import Cri, push_archive  # noqa: E402
from tests.fixtures.daemon import PouchDaemon, lazy_umount_under  # noqa: E402
from tests.fixtures.images import busybox_archive, pause_archive  # noqa: E402
from tests.fixtures.registry import RegistryServer, free_port  # noqa: E402


def cni_conf(d: Path, name: str, bridge: str, subnet: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "10-bench.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": name, "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": str(d / "ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": True}}]}))
    return d


class ContainerdCri:
    """A private containerd 1.6 with its CRI plugin enabled."""

    def __init__(self, base: Path, reg: str, pause: str) -> None:
        self.base = base
        self.sock = str(base / "containerd.sock")
        netd = cni_conf(base / "net.d", "ctrdbench", "cb0bench", "10.251.0.0/16")
        cfg = base / "config.toml"
        cfg.write_text(f"""version = 2
root = "{base}/root"
state = "{base}/state"
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  stream_server_port = "{free_port()}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{netd}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{reg}"]
    endpoint = ["http://{reg}"]
""")
        self.log = open(base / "containerd.log", "wb")
        self.proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"containerd did not start: {(base / 'containerd.log').read_text()[-2000:]}")
            time.sleep(0.1)
        self.pid = self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["ip", "link", "del", "cb0bench"], capture_output=True)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


PHASES = ("RunPodSandbox", "PullImage", "CreateContainer", "StartContainer")


def daemon_rss_kb(pid: int) -> int:
    """RSS of a CRI daemon and of the containerd it runs, if any (pouchd's own; the pods' shims,
    which both engines start alike, are not counted)."""
    total = rss_kb(pid)
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):  # children of every thread (a spawn may run in one)
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
        except OSError:
            pass
    for k in kids:
        try:
            with open(f"/proc/{k}/comm") as f:
                if f.read().strip() == "containerd":
                    total += rss_kb(k)
        except OSError:
            pass
    return total


def start_pod(cri: Cri, image: str, name: str, i: int, phases: dict | None = None) -> tuple[str, list[str]]:
    """Run a pod of ``cri.containers_per_pod`` busybox containers; ``phases`` collects each call's
    seconds under its RPC's name."""
    pb = cri.pb
    cfg = cri.pod_config(f"{name}{i}", uid=f"{name}-uid-{i}")
    spent = phases if phases is not None else {}

    def timed(phase, call, req):
        t = time.perf_counter()
        out = call(req)
        spent.setdefault(phase, []).append(time.perf_counter() - t)
        return out
    pod = timed("RunPodSandbox", cri.rt.RunPodSandbox, pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    timed("PullImage", cri.img.PullImage, pb.PullImageRequest(image=pb.ImageSpec(image=image)))
    cids = []
    for c in range(cri.containers_per_pod):
        cid = timed("CreateContainer", cri.rt.CreateContainer, pb.CreateContainerRequest(
            pod_sandbox_id=pod, sandbox_config=cfg, config=pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name=f"c{c}"), image=pb.ImageSpec(image=image),
                command=["sleep", "100000"]))).container_id
        timed("StartContainer", cri.rt.StartContainer, pb.StartContainerRequest(container_id=cid))
        cids.append(cid)
    return pod, cids


def remove_all(cri: Cri) -> None:
    pb = cri.pb
    for p in cri.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items:
        cri.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=p.id))
        cri.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id))


def list_ms(cri: Cri, n: int = 20) -> tuple[float, float]:
    pb = cri.pb
    tc, tp = [], []
    for _ in range(n):
        t = time.perf_counter()
        cri.rt.ListContainers(pb.ListContainersRequest())
        tc.append(time.perf_counter() - t)
        t = time.perf_counter()
        cri.rt.ListPodSandbox(pb.ListPodSandboxRequest())
        tp.append(time.perf_counter() - t)
    return statistics.median(tc) * 1000, statistics.median(tp) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--pods", type=int, default=100)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pouch-bench-cri-"))
    reg = RegistryServer(base / "registry").start()
    push_archive(busybox_archive(), f"{reg.host}/busybox:latest")
    push_archive(pause_archive(), f"{reg.host}/pouch-pause:latest")
    image, pause = f"{reg.host}/busybox:latest", f"{reg.host}/pouch-pause:latest"
    ctrd = ContainerdCri(base / "containerd", reg.host, pause)
    netd = cni_conf(base / "pouch-net.d", "pouchbench", "pb0bench", "10.252.0.0/16")
    pd = PouchDaemon(base=str(base / "pouchd"), extra_args=[
        "--enable-cri", "--listen-cri", f"unix://{base}/pouchcri.sock", "--sandbox-image", pause,
        "--cni-conf-dir", str(netd), "--insecure-registries", reg.host, "--stream-server-port", str(free_port())])
    os.makedirs(pd.base, exist_ok=True)
    pd.start()
    engines = {"pouchd": Cri(f"{base}/pouchcri.sock"), "containerd": Cri(ctrd.sock)}
    pids = {"pouchd": pd.proc.pid, "containerd": ctrd.pid}
    try:
        for name, cri in list(engines.items()):
            cri.containers_per_pod = 1
            cri.img.PullImage(cri.pb.PullImageRequest(image=cri.pb.ImageSpec(image=image)))
            try:
                start_pod(cri, image, "probe", 0)
                remove_all(cri)
            except Exception as e:  # report what runs; say why the other did not
                print(f"{name}'s CRI cannot run a pod here, measuring without it: {e}")
                remove_all(cri)
                engines.pop(name)
        times = {k: [] for k in engines}
        phases: dict[str, dict] = {k: {} for k in engines}
        for r in range(a.rounds + 2):
            for name, cri in engines.items():
                t = time.perf_counter()
                start_pod(cri, image, "start", r, phases[name] if r >= 2 else None)
                dt = time.perf_counter() - t
                if r >= 2:
                    times[name].append(dt)
                remove_all(cri)
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        print(HEADER)
        pouch_ms, ctrd_ms = med.get("pouchd"), med.get("containerd")
        if pouch_ms is not None:
            print(row("pod: run+pull(present)+create+start", pouch_ms, ctrd_ms, "ms", "<= 0.8x containerd",
                      pouch_ms <= 0.8 * ctrd_ms if ctrd_ms else None))
            for ph in PHASES:
                mine = statistics.median(phases["pouchd"][ph]) * 1000
                theirs = statistics.median(phases["containerd"][ph]) * 1000 if "containerd" in phases else None
                print(row(f"  {ph}", mine, theirs, "ms"))
        scale = {}
        for name, cri in engines.items():
            cri.containers_per_pod = 2
            rss0 = daemon_rss_kb(pids[name])
            for i in range(a.pods):
                start_pod(cri, image, "scale", i)
            rss1 = daemon_rss_kb(pids[name])
            scale[name] = (*list_ms(cri), (rss1 - rss0) / a.pods)
            remove_all(cri)
        if "pouchd" in scale:
            other = scale.get("containerd", (None, None, None))
            lc, lp, rss = scale["pouchd"]
            print(row(f"ListContainers, {a.pods} pods x 2 containers", lc, other[0], "ms", "< 30 ms", lc < 30))
            print(row(f"ListPodSandbox, {a.pods} pods x 2 containers", lp, other[1], "ms", "< 30 ms", lp < 30))
            print(row("RSS growth per pod (pouchd+its containerd)", rss, other[2], "KiB", "reported"))
    finally:
        for cri in engines.values():
            try:
                remove_all(cri)
            except Exception:
                pass
        pd.cleanup()
        subprocess.run(["ip", "link", "del", "pb0bench"], capture_output=True)
        ctrd.stop()
        reg.stop()
        lazy_umount_under(str(base))
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

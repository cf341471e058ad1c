"""Helpers for the network and volume integration tests: a test image with EXPOSE/VOLUME, free
host ports, HTTP from the host's loopback, and leak checks (veth, iptables, IPAM, netns, CNI cache).

Every network a test creates goes through ``user_network`` so it is removed (bridge and rules)
even when the test fails.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import tarfile
import urllib.request

from tests.fixtures.images import CACHE_DIR, _add_dir, _add_file, busybox_layer, image_archive

TEST_IMAGE = "pouchtest/netvol:1"
SEED = b"seeded-by-image\n"
HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"


def netvol_image_archive() -> str:
    """busybox + a layer with /data/seed.txt; config EXPOSE 80/tcp and VOLUME /data."""
    path = os.path.join(CACHE_DIR, "netvol.tar")
    if os.path.exists(path):
        return path
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        _add_dir(tf, "data")
        _add_file(tf, "data/seed.txt", SEED)
    data = image_archive([busybox_layer(), buf.getvalue()],
                         {"ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}}, TEST_IMAGE)
    os.makedirs(CACHE_DIR, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def load_test_image(d) -> str:
    r = d.cli("load", "-i", netvol_image_archive())
    assert r.returncode == 0, r.stderr
    return TEST_IMAGE


def free_port(proto: str = "tcp") -> int:
    typ = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, typ) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str = "/index.html", timeout: float = 3.0) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def http_get_retry(port: int, tries: int = 40) -> str:
    """httpd needs a moment after `run -d` returns."""
    import time
    last: Exception | None = None
    for _ in range(tries):
        try:
            return http_get(port)
        except OSError as e:
            last = e
            time.sleep(0.1)
    raise AssertionError(f"127.0.0.1:{port} never answered: {last}")


def cli_ok(d, *args: str, timeout: float = 60.0) -> str:
    r = d.cli(*args, timeout=timeout)
    assert r.returncode == 0, f"pouch {' '.join(args)}: {r.stderr}"
    return r.stdout


def inspect_json(d, kind: str, ref: str) -> dict:
    out = cli_ok(d, kind, "inspect", ref) if kind else cli_ok(d, "inspect", ref)
    data = json.loads(out)
    return data[0] if isinstance(data, list) else data


def container_ip(d, ref: str, network: str | None = None) -> str:
    c = inspect_json(d, "", ref)
    if network:
        return c["NetworkSettings"]["Networks"][network]["IPAddress"]
    return c["NetworkSettings"]["IPAddress"]


@contextlib.contextmanager
def user_network(d, name: str, *args: str):
    """`network create ARGS NAME`; removed at exit (after the caller removed its containers)."""
    out = cli_ok(d, "network", "create", *args, name)
    net_id = out.strip()
    try:
        yield net_id
    finally:
        for cid in (inspect_json(d, "network", name).get("Containers") or {}) if \
                d.cli("network", "inspect", name).returncode == 0 else {}:
            d.cli("rm", "-f", cid)
        d.cli("network", "rm", name)


def host_ifindexes() -> set[int]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {int(line.split(":", 1)[0]) for line in out.splitlines() if line.strip()}


def peer_ifindex(d, ref: str, ifname: str = "eth0") -> int:
    """Host-side ifindex of the container's veth (the container's iflink)."""
    return int(cli_ok(d, "exec", ref, "cat", f"/sys/class/net/{ifname}/iflink").strip())


def iptables_mentions(ip: str) -> list[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    import re
    pat = re.compile(r"(?<![\d.])" + re.escape(ip) + r"(?![\d])")
    return [line for line in out.splitlines() if pat.search(line)]


def leftovers(d, cid: str, ip: str, network_name: str, host_ifindex: int | None) -> list[str]:
    """What is still held for a removed container (empty list = clean)."""
    out = []
    if host_ifindex is not None and host_ifindex in host_ifindexes():
        out.append(f"host veth ifindex {host_ifindex} still exists")
    out += [f"iptables: {line}" for line in iptables_mentions(ip)]
    ipam = os.path.join(d.home, "network", "ipam", network_name, ip)
    if os.path.exists(ipam):
        out.append(f"IPAM reservation {ipam}")
    ns = os.path.join(d.run_dir, "netns", cid)
    if os.path.exists(ns):
        out.append(f"netns file {ns}")
    cache = os.path.join(d.home, "network", "cni-cache")
    out += [f"CNI cache {fn}" for fn in (os.listdir(cache) if os.path.isdir(cache) else []) if cid in fn]
    return out


def bridge_of(d, network: str) -> str:
    """The host device holding the network's gateway address (its bridge)."""
    gw = inspect_json(d, "network", network)["IPAM"]["Config"][0]["Gateway"]
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f[3].split("/")[0] == gw:
            return f[1]
    raise AssertionError(f"no host device has {network}'s gateway {gw}")

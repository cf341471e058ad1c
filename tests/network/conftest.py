"""Fixtures for network tests: a NetworkManager on a private state dir, netns dir, bridge name and
subnet, torn down (and checked for leaks) after each test."""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid

import pytest

from pouch.network import bridge as bridgedrv
from pouch.network.manager import NetworkManager

CNI_DIR = "/usr/lib/cni"


def _requirements() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for p in ("bridge", "host-local", "portmap"):
        if not os.access(os.path.join(CNI_DIR, p), os.X_OK):
            return f"CNI plugin {CNI_DIR}/{p} missing (apt-get install containernetworking-plugins)"
    for tool in ("iptables", "ip", "nsenter"):
        if not shutil.which(tool):
            return f"{tool} missing"
    if not os.path.exists("/bin/busybox"):
        return "/bin/busybox missing (apt-get install busybox-static)"
    return None


def free_subnet(exclude: list[str] = ()) -> str:
    """A /24 in 192.168.200-249 that no host route or exclude uses."""
    avoid = bridgedrv.host_routes() + [ipaddress.IPv4Network(e) for e in exclude]
    for i in range(200, 250):
        cand = ipaddress.IPv4Network(f"192.168.{i}.0/24")
        if not any(cand.overlaps(a) for a in avoid):
            return str(cand)
    pytest.skip("no free 192.168.2xx.0/24 test subnet on this host")


_session_tags: set[str] = set()  # the tags of this session's test managers (their bridges: ptx<tag>)


@pytest.fixture
async def mgr(tmp_path):
    why = _requirements()
    if why:
        pytest.skip(why)
    tag = uuid.uuid4().hex[:6]
    subnet = free_subnet()
    gw = str(ipaddress.IPv4Network(subnet).network_address + 1)
    nsdir = f"/run/pouch-test/netns-{tag}"
    m = NetworkManager(root=str(tmp_path / "net"), netns_dir=nsdir, default_bridge=f"ptx{tag}",
                       default_subnet=subnet, default_gateway=gw)
    await m.init()
    m.test_tag = tag
    _session_tags.add(tag)
    yield m
    # teardown: whatever the test left (a fresh manager instance may have replaced m's state)
    m2 = NetworkManager(root=m.root, netns_dir=nsdir, default_bridge=f"ptx{tag}",
                        default_subnet=subnet, default_gateway=gw)
    await m2.init()
    for cid in list(m2.sandboxes):
        await m2.release(cid)
    await m2.restore(live=())
    made = {n.bridge for n in m2.list() if n.bridge}  # this test's bridges: only their rules count
    for n in m2.list():
        if not n.builtin:
            await m2.remove(n.id)
    left = await m2.leftovers(gone_bridges=made, owns=lambda cid: tag in cid)
    for n in m2.list():
        if n.driver == "bridge":
            await m2._teardown_network(n)
    subprocess.run(["umount", nsdir], capture_output=True)
    shutil.rmtree(nsdir, ignore_errors=True)
    assert left == [], f"network resources leaked: {left}"
    for n in m2.list():
        assert not os.path.exists(f"/sys/class/net/{n.bridge}") or n.driver != "bridge"


def sh(netns_path: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={netns_path}", "/bin/busybox", *cmd],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def no_leftovers_at_session_end():
    """After all network tests: none of this session's test bridges (ptx<tag>), their netns dirs
    or pouch rules for them is left (other runs' on the same host are theirs to check)."""
    yield
    if os.geteuid() != 0 or not shutil.which("iptables-save") or not _session_tags:
        return
    ours = {f"ptx{t}" for t in _session_tags}
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left = [name for name in (line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
            if name in ours]
    rules = [r for r in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines()
             if any(f"pouch net {b}" in r for b in ours)]
    ns = [d for d in os.listdir("/run/pouch-test") if d.split("-")[-1] in _session_tags] \
        if os.path.isdir("/run/pouch-test") else []
    assert (left, rules, ns) == ([], [], []), "network tests leaked resources"

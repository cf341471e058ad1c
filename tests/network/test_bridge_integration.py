"""Real netns + bridge + veth + iptables: containers played by busybox inside namespaces we create."""
from __future__ import annotations

import asyncio
import os
import subprocess
import statistics
import time
import urllib.request

import pytest

from pouch.network import netns
from pouch.network.errors import CNIError, NetworkConflict, NetworkInUse, InvalidNetworkConfig
from pouch.network.manager import EndpointConfig, NetworkManager
from pouch.network.ports import parse_ports
from pouch.network.store import FilesConfig

from .conftest import free_subnet, sh

pytestmark = pytest.mark.integration


async def test_two_containers_on_user_network_reach_each_other_by_name(mgr, tmp_path):
    net = await mgr.create("app-" + mgr.test_tag, subnet=free_subnet([mgr.default[1]]))
    eps = {}
    for name in ("web", "db"):
        path = await mgr.create_netns(name + mgr.test_tag)
        eps[name] = await mgr.attach(name + mgr.test_tag, path, net.name, EndpointConfig(container_name=name))
        mgr.write_files(name + mgr.test_tag, FilesConfig(dir=str(tmp_path / name), hostname=name))
    web, db = eps["web"], eps["db"]
    assert web.ip != db.ip and web.gateway == net.gateway
    r = sh(web.netns, "ping", "-c", "1", "-W", "2", db.ip)
    assert r.returncode == 0, r.stdout + r.stderr
    # the peer joined after web's files were first written: web's hosts file was rewritten
    hosts = (tmp_path / "web" / "hosts").read_text()
    assert any(line.split()[:2] == [db.ip, "db"] for line in hosts.splitlines()), hosts
    # resolving "db" through web's hosts file gives an address web can ping
    ip = next(line.split()[0] for line in hosts.splitlines() if "db" in line.split()[1:])
    assert sh(web.netns, "ping", "-c", "1", "-W", "2", ip).returncode == 0
    await mgr.release("db" + mgr.test_tag)
    assert "db" not in (tmp_path / "web" / "hosts").read_text().split()
    with pytest.raises(NetworkInUse):
        await mgr.remove(net.name)
    await mgr.release("web" + mgr.test_tag)
    await mgr.remove(net.name)
    assert not os.path.exists(f"/sys/class/net/{net.bridge}")


async def test_published_port_reachable_from_host_loopback(mgr, tmp_path, free_port):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the netns\n")
    cid = "web" + mgr.test_tag
    path = await mgr.create_netns(cid)
    ep = await mgr.attach(cid, path, "bridge", EndpointConfig(ports=parse_ports([f"{free_port}:80"])))
    assert [(b.host_port, b.container_port, b.protocol) for b in ep.ports] == [(free_port, 80, "tcp")]
    srv = subprocess.Popen(["nsenter", f"--net={path}", "/bin/busybox", "httpd", "-f", "-p", "80", "-h", str(www)])
    try:
        body = None
        for _ in range(50):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{free_port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.05)
        assert body == "hello from the netns\n"
        with open(f"/proc/sys/net/ipv4/conf/{ep_bridge(mgr)}/route_localnet") as f:
            assert f.read().strip() == "1"
    finally:
        srv.kill()
        srv.wait()
    await mgr.release(cid)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{free_port}/", timeout=1)


def ep_bridge(m: NetworkManager) -> str:
    return m.get("bridge").bridge


async def test_publish_all_allocates_distinct_free_ports_and_conflicts_are_409(mgr):
    a, b = "pa" + mgr.test_tag, "pb" + mgr.test_tag
    ea = await mgr.attach(a, await mgr.create_netns(a), "bridge",
                          EndpointConfig(ports=parse_ports([], publish_all=True, exposed=["80/tcp", "53/udp"])))
    ports = {(p.container_port, p.protocol): p.host_port for p in ea.ports}
    assert set(ports) == {(80, "tcp"), (53, "udp")} and all(p > 1024 for p in ports.values())
    taken = ports[(80, "tcp")]
    with pytest.raises(NetworkConflict, match="already allocated"):
        await mgr.attach(b, await mgr.create_netns(b), "bridge", EndpointConfig(ports=parse_ports([f"{taken}:80"])))
    assert mgr.endpoints(cid=b) == []


async def test_static_ip_and_conflict(mgr):
    net = await mgr.create("st-" + mgr.test_tag, subnet=free_subnet([mgr.default[1]]))
    want = str(__import__("ipaddress").IPv4Network(net.subnet).network_address + 77)
    a, b = "sa" + mgr.test_tag, "sb" + mgr.test_tag
    ea = await mgr.attach(a, await mgr.create_netns(a), net.name, EndpointConfig(ip=want))
    assert ea.ip == want
    r = sh(ea.netns, "ip", "-4", "addr", "show", "eth0")
    assert want in r.stdout
    pb = await mgr.create_netns(b)
    with pytest.raises(NetworkConflict):
        await mgr.attach(b, pb, net.name, EndpointConfig(ip=want))
    with pytest.raises(InvalidNetworkConfig):
        await mgr.attach(b, pb, net.name, EndpointConfig(ip="10.99.99.99"))


async def test_user_networks_are_isolated_and_internal_has_no_route_out(mgr):
    s1 = free_subnet([mgr.default[1]])
    n1 = await mgr.create("i1-" + mgr.test_tag, subnet=s1)
    n2 = await mgr.create("i2-" + mgr.test_tag, subnet=free_subnet([mgr.default[1], s1]), internal=True)
    a, b = "ia" + mgr.test_tag, "ib" + mgr.test_tag
    ea = await mgr.attach(a, await mgr.create_netns(a), n1.name)
    eb = await mgr.attach(b, await mgr.create_netns(b), n2.name)
    assert sh(ea.netns, "ping", "-c", "1", "-W", "1", ea.gateway).returncode == 0
    assert sh(ea.netns, "ping", "-c", "1", "-W", "1", eb.ip).returncode != 0
    routes = sh(eb.netns, "ip", "route").stdout
    assert "default" not in routes and "default" in sh(ea.netns, "ip", "route").stdout


async def test_restart_restore_keeps_live_and_cleans_gone(mgr):
    live, dead = "live" + mgr.test_tag, "dead" + mgr.test_tag
    el = await mgr.attach(live, await mgr.create_netns(live), "bridge")
    ed = await mgr.attach(dead, await mgr.create_netns(dead), "bridge",
                          EndpointConfig(ports=parse_ports(["127.0.0.1::80"])))
    br = mgr.get("bridge").bridge
    assert len(os.listdir(f"/sys/class/net/{br}/brif")) == 2
    # "daemon restart": a new manager on the same state; `dead` is not running any more
    m2 = NetworkManager(root=mgr.root, netns_dir=mgr.netns_dir, default_bridge=br,
                        default_subnet=mgr.default[1], default_gateway=mgr.default[2])
    await m2.init()
    cleaned = await m2.restore(live=[live])
    assert cleaned == [dead]
    assert len(os.listdir(f"/sys/class/net/{br}/brif")) == 1
    assert not os.path.exists(ed.netns) and netns.exists(el.netns)
    assert await m2.leftovers(live=[live]) == []
    assert f'id: \\"{dead}\\"' not in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    # live's address stays reserved: a newcomer gets another one
    other = "new" + mgr.test_tag
    eo = await m2.attach(other, await m2.create_netns(other), "bridge")
    assert eo.ip != el.ip
    assert sh(el.netns, "ping", "-c", "1", "-W", "2", eo.ip).returncode == 0
    await m2.release(live)
    await m2.release(other)
    assert await m2.leftovers() == []


async def test_cni_error_is_typed_and_leaves_nothing(mgr):
    cid = "bad" + mgr.test_tag
    path = await mgr.create_netns(cid)
    net = await mgr.create("err-" + mgr.test_tag, subnet=free_subnet([mgr.default[1]]))
    net.options["com.docker.network.driver.mtu"] = "99999"  # passes our check only in memory; the kernel refuses it
    with pytest.raises(CNIError) as ei:
        await mgr.attach(cid, path, net.name)
    assert ei.value.plugin == "bridge" and ei.value.msg
    assert mgr.endpoints(cid=cid) == []


async def test_200_endpoints_unique_ips_no_leaks(mgr):
    n = 200
    ids = [f"m{i:03d}{mgr.test_tag}" for i in range(n)]
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(4)

    async def one(cid):
        async with sem:
            return await mgr.attach(cid, await mgr.create_netns(cid), "bridge")
    eps = await asyncio.gather(*(one(c) for c in ids))
    t_attach = time.perf_counter() - t0
    ips = [e.ip for e in eps]
    assert len(set(ips)) == n
    br = mgr.get("bridge").bridge
    assert len(os.listdir(f"/sys/class/net/{br}/brif")) == n
    t0 = time.perf_counter()
    for c in ids:
        await mgr.release(c)
    t_release = time.perf_counter() - t0
    print(f"\n200 endpoints: attach+netns {t_attach * 1000 / n:.1f} ms each (4 parallel), "
          f"release {t_release * 1000 / n:.1f} ms each")
    assert os.listdir(f"/sys/class/net/{br}/brif") == []
    assert await mgr.leftovers() == []
    assert t_attach + t_release < 120  # a sanity bound; bench/network_scale.py has the numbers


async def test_network_setup_overhead_vs_none(mgr):
    """Acceptance: bridge networking adds <= 60 ms to a container's start over --network none
    (medians of paired rounds, so that a stall of the loaded CI machine in one round does not
    decide; bench/network_overhead.py measures the same end to end)."""
    rounds = 10
    t_none, t_bridge, t_release = [], [], []
    for i in range(rounds):
        cid = f"none{i}{mgr.test_tag}"
        t0 = time.perf_counter()
        await mgr.create_netns(cid)
        t_none.append(time.perf_counter() - t0)
        await mgr.release(cid)
        cid = f"br{i}{mgr.test_tag}"
        t0 = time.perf_counter()
        await mgr.attach(cid, await mgr.create_netns(cid), "bridge")
        t1 = time.perf_counter()
        await mgr.release(cid)
        t_bridge.append(t1 - t0)
        t_release.append(time.perf_counter() - t1)
    none, bridge = statistics.median(t_none), statistics.median(t_bridge)
    print(f"\nnone setup {none * 1000:.1f} ms, bridge setup {bridge * 1000:.1f} ms "
          f"(+{(bridge - none) * 1000:.1f} ms), bridge teardown {statistics.median(t_release) * 1000:.1f} ms")
    assert bridge - none <= 0.060


async def test_network_crud_and_errors(mgr):
    from pouch.errtypes import Forbidden
    from pouch.network.errors import NetworkNotFound
    names = {n.name for n in mgr.list()}
    assert {"bridge", "host", "none"} <= names
    b = mgr.inspect("bridge")
    assert b["Driver"] == "bridge" and b["IPAM"]["Config"][0]["Subnet"] == mgr.default[1]
    sub = free_subnet([mgr.default[1]])
    import ipaddress
    s = ipaddress.IPv4Network(sub)
    rng = str(ipaddress.IPv4Network(f"{s.network_address + 128}/25"))
    n = await mgr.create("crud-" + mgr.test_tag, subnet=sub, gateway=str(s.network_address + 254), ip_range=rng,
                         labels={"env": "t"}, options={"com.docker.network.bridge.name": "ptx" + mgr.test_tag + "c"})
    info = mgr.inspect(n.id[:10])
    assert info["Name"] == n.name and info["Labels"] == {"env": "t"} and info["Internal"] is False
    assert info["IPAM"]["Config"] == [{"Subnet": sub, "Gateway": str(s.network_address + 254), "IPRange": rng}]
    cid = "crud" + mgr.test_tag
    ep = await mgr.attach(cid, await mgr.create_netns(cid), n.name)
    assert ipaddress.IPv4Address(ep.ip) in ipaddress.IPv4Network(rng) and ep.gateway == info["IPAM"]["Config"][0]["Gateway"]
    assert os.path.exists(f"/sys/class/net/ptx{mgr.test_tag}c")
    assert list(mgr.inspect(n.name)["Containers"]) == [cid]
    assert [x.name for x in mgr.list({"label": ["env=t"]})] == [n.name]
    with pytest.raises(NetworkConflict):
        await mgr.create("crud-" + mgr.test_tag, subnet=free_subnet([mgr.default[1], sub]))
    with pytest.raises(NetworkConflict, match="overlaps"):
        await mgr.create("other-" + mgr.test_tag, subnet=str(s.network_address) + "/25")
    for bad in ({"subnet": "300.1.0.0/24"}, {"subnet": sub, "gateway": "10.0.0.1"}, {"gateway": "10.0.0.1"},
                {"subnet": sub, "ip_range": "10.0.0.0/24"}):
        with pytest.raises(InvalidNetworkConfig):
            await mgr.create("bad-" + mgr.test_tag, **bad)
    with pytest.raises(InvalidNetworkConfig):
        await mgr.attach(cid, ep.netns, "host")
    with pytest.raises(Forbidden):
        await mgr.remove("bridge")
    with pytest.raises(NetworkInUse, match=cid[:12]):
        await mgr.remove(n.name)
    assert await mgr.prune() == []
    await mgr.detach(cid, n.name)
    assert mgr.inspect(n.name)["Containers"] == {}
    auto = await mgr.create("auto-" + mgr.test_tag)
    assert auto.subnet and not ipaddress.IPv4Network(auto.subnet).overlaps(ipaddress.IPv4Network(sub))
    assert sorted(await mgr.prune()) == sorted([n.name, auto.name])
    assert not os.path.exists(f"/sys/class/net/ptx{mgr.test_tag}c")
    with pytest.raises(NetworkNotFound):
        mgr.get(n.name)

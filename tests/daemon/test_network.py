"""Networking through the real pouchd: bridge/host/none/container modes, user networks with name
resolution, static IPs, connect/disconnect, port publishing to the host's loopback, /etc files,
no leaks after rm, and survival of a pouchd SIGKILL + restart.  Real bridges, veths, iptables, CNI.

User networks get their own subnets (10.251-10.254.x) so tests do not depend on what other
daemons on this machine put on the shared default bridge p0.
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import uuid

import pytest

from tests.daemon.conftest import wait_for
from tests.daemon.nettools import (HTTPD, bridge_of, cli_ok, container_ip, free_port, host_ifindexes, http_get,
                                   http_get_retry, inspect_json, iptables_mentions, leftovers,
                                   load_test_image, peer_ifindex, user_network)

pytestmark = pytest.mark.integration


def _uniq(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def _in_subnet(addr: str, bip: str) -> bool:
    try:
        return ipaddress.ip_address(addr) in ipaddress.ip_interface(bip).network
    except ValueError:
        return False


def _exec(d, ref: str, *cmd: str) -> subprocess.CompletedProcess:
    return d.cli("exec", ref, *cmd)


# -- built-in networks and modes -------------------------------------------------------------

def test_builtin_networks_and_default_bridge(pouchd):
    out = cli_ok(pouchd, "network", "ls")
    names = {line.split()[1] for line in out.splitlines()[1:]}
    assert {"bridge", "host", "none"} <= names
    br = inspect_json(pouchd, "network", "bridge")
    subnet = str(ipaddress.ip_interface(pouchd.bip).network)
    assert br["IPAM"]["Config"][0]["Subnet"] == subnet
    assert br["Options"].get("com.docker.network.bridge.name") == pouchd.bridge
    addrs = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", pouchd.bridge], capture_output=True,
                           text=True).stdout
    assert pouchd.bip in addrs


def test_bridge_container_gets_ip_in_subnet(pouchd, box):
    n = box.run_d("busybox", "sleep", "600")
    ip = container_ip(pouchd, n)
    assert ipaddress.IPv4Address(ip) in ipaddress.ip_interface(pouchd.bip).network
    inside = cli_ok(pouchd, "exec", n, "ip", "-4", "addr", "show", "eth0")
    assert f"inet {ip}/24" in inside
    nets = inspect_json(pouchd, "", n)["NetworkSettings"]["Networks"]
    assert nets["bridge"]["IPAddress"] == ip and nets["bridge"]["Gateway"] == pouchd.bip.split("/")[0]


def test_net_none_has_only_loopback(pouchd):
    out = cli_ok(pouchd, "run", "--rm", "--net", "none", "busybox", "ls", "/sys/class/net")
    assert out.split() == ["lo"]


def test_net_host_shares_host_namespace(pouchd):
    out = cli_ok(pouchd, "run", "--rm", "--net", "host", "busybox", "sh", "-c",
                 "readlink /proc/self/ns/net; ls /sys/class/net")
    lines = out.split()
    assert lines[0] == os.readlink("/proc/self/ns/net")
    assert pouchd.bridge in lines[1:] and "lo" in lines[1:]


def test_net_container_mode_shares_netns(pouchd, box):
    a = box.run_d("busybox", "sleep", "600")
    ip = container_ip(pouchd, a)
    ns_a = cli_ok(pouchd, "exec", a, "readlink", "/proc/self/ns/net").strip()
    out = cli_ok(pouchd, "run", "--rm", "--net", f"container:{a}", "busybox", "sh", "-c",
                 "readlink /proc/self/ns/net; ip -4 addr show eth0")
    assert out.splitlines()[0] == ns_a
    assert f"inet {ip}/" in out


# -- user networks ----------------------------------------------------------------------------

def test_user_network_names_static_ip_connect_disconnect(pouchd, box):
    net = _uniq("n1")
    with user_network(pouchd, net, "--subnet", "10.251.0.0/24", "--gateway", "10.251.0.1"):
        info = inspect_json(pouchd, "network", net)
        assert info["IPAM"]["Config"][0] == {"Subnet": "10.251.0.0/24", "Gateway": "10.251.0.1"}
        a = box.run_d("--net", net, "busybox", "sleep", "600")
        b = box.run_d("--net", net, "--ip", "10.251.0.50", "busybox", "sleep", "600")
        assert container_ip(pouchd, b, net) == "10.251.0.50"
        assert "inet 10.251.0.50/24" in cli_ok(pouchd, "exec", b, "ip", "-4", "addr", "show", "eth0")
        ip_a = container_ip(pouchd, a, net)
        assert ipaddress.IPv4Address(ip_a) in ipaddress.IPv4Network("10.251.0.0/24")
        # a was running when b joined: its bind-mounted /etc/hosts was updated in place
        hosts_a = cli_ok(pouchd, "exec", a, "cat", "/etc/hosts")
        assert any(line.split()[0] == "10.251.0.50" and b in line.split()[1:] for line in hosts_a.splitlines()
                   if line.strip()), hosts_a
        for src, dst, dst_ip in ((a, b, "10.251.0.50"), (b, a, ip_a)):
            r = _exec(pouchd, src, "ping", "-c1", "-W2", dst)
            assert r.returncode == 0 and f"({dst_ip})" in r.stdout, r.stdout + r.stderr

        # the same static ip twice is refused
        r = pouchd.cli("run", "-d", "--name", box.name(), "--net", net, "--ip", "10.251.0.50", "busybox",
                       "sleep", "60")
        assert r.returncode != 0 and "10.251.0.50" in r.stderr

        # connect a running default-bridge container, reach it by name, disconnect it
        c = box.run_d("busybox", "sleep", "600")
        cli_ok(pouchd, "network", "connect", net, c)
        ip_c = container_ip(pouchd, c, net)
        assert "inet " + ip_c in cli_ok(pouchd, "exec", c, "ip", "-4", "addr", "show", "eth1")
        r = _exec(pouchd, a, "ping", "-c1", "-W2", c)
        assert r.returncode == 0 and f"({ip_c})" in r.stdout, r.stdout + r.stderr
        assert net in inspect_json(pouchd, "", c)["NetworkSettings"]["Networks"]
        cli_ok(pouchd, "network", "disconnect", net, c)
        assert _exec(pouchd, c, "ip", "link", "show", "eth1").returncode != 0
        assert net not in inspect_json(pouchd, "", c)["NetworkSettings"]["Networks"]
        assert c not in cli_ok(pouchd, "exec", a, "cat", "/etc/hosts")
        assert _exec(pouchd, a, "ping", "-c1", "-W1", ip_c).returncode != 0

        # rm refused while in use: exit 1, one line naming the network
        r = pouchd.cli("network", "rm", net)
        assert r.returncode == 1
        assert len(r.stderr.strip().splitlines()) == 1 and net in r.stderr
        pouchd.cli("rm", "-f", a, b)
    assert pouchd.cli("network", "inspect", net).returncode != 0


def test_network_prune_keeps_used_networks(pouchd, box):
    used, unused = _uniq("pu"), _uniq("pn")
    with user_network(pouchd, used, "--subnet", "10.252.1.0/24"), \
            user_network(pouchd, unused, "--subnet", "10.252.2.0/24"):
        c = box.run_d("--net", used, "busybox", "sleep", "600")
        cli_ok(pouchd, "run", "--rm", "--net", unused, "busybox", "true")   # brings its bridge up
        bridge = bridge_of(pouchd, unused)
        out = cli_ok(pouchd, "network", "prune", "-f")
        assert unused in out.split() and used not in out.split()
        assert pouchd.cli("network", "inspect", unused).returncode != 0
        assert pouchd.cli("network", "inspect", used).returncode == 0
        assert not os.path.exists(f"/sys/class/net/{bridge}")
        pouchd.cli("rm", "-f", c)


@pytest.fixture
def outside_ns():
    """A network namespace of the test's own, reachable from the host at 10.99.77.2 (veth /30)."""
    tag = uuid.uuid4().hex[:6]
    ns, host_if, ns_if = f"pouchtest-{tag}", f"pto{tag}", f"pti{tag}"
    steps = [["ip", "netns", "add", ns],
             ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
             ["ip", "link", "set", ns_if, "netns", ns],
             ["ip", "addr", "add", "10.99.77.1/30", "dev", host_if],
             ["ip", "link", "set", host_if, "up"],
             ["ip", "-n", ns, "addr", "add", "10.99.77.2/30", "dev", ns_if],
             ["ip", "-n", ns, "link", "set", ns_if, "up"],
             ["ip", "-n", ns, "route", "add", "default", "via", "10.99.77.1"]]
    try:
        for cmd in steps:
            subprocess.run(cmd, check=True, capture_output=True)
        yield "10.99.77.2"
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_internal_network_has_no_way_out(pouchd, box, outside_ns):
    net, open_net = _uniq("ni"), _uniq("no")
    with user_network(pouchd, net, "--internal", "--subnet", "10.253.0.0/24"), \
            user_network(pouchd, open_net, "--subnet", "10.253.1.0/24"):
        assert inspect_json(pouchd, "network", net)["Internal"] is True
        a = box.run_d("--net", net, "busybox", "sleep", "600")
        b = box.run_d("--net", net, "busybox", "sleep", "600")
        assert "default" not in cli_ok(pouchd, "exec", a, "ip", "route")
        assert _exec(pouchd, a, "ping", "-c1", "-W2", b).returncode == 0      # inside: fine
        # control: a container of an ordinary network reaches the outside namespace through the host
        o = box.run_d("--net", open_net, "busybox", "sleep", "600")
        r = _exec(pouchd, o, "ping", "-c1", "-W2", outside_ns)
        assert r.returncode == 0, r.stdout + r.stderr
        # internal: leaving is dropped even with an explicit default route (--cap-add NET_ADMIN)
        c = box.run_d("--net", net, "--cap-add", "NET_ADMIN", "busybox", "sleep", "600")
        cli_ok(pouchd, "exec", c, "ip", "route", "add", "default", "via", "10.253.0.1")
        assert _exec(pouchd, c, "ping", "-c1", "-W1", outside_ns).returncode != 0
        pouchd.cli("rm", "-f", a, b, c, o)


# -- ports --------------------------------------------------------------------------------------

def test_publish_ports_reach_httpd_from_loopback(pouchd, box):
    net = _uniq("np")
    p_lo, p_any, p_udp = free_port(), free_port(), free_port("udp")
    with user_network(pouchd, net, "--subnet", "10.251.9.0/24"):
        n = box.run_d("--net", net, "-p", f"127.0.0.1:{p_lo}:80", "-p", f"{p_any}:80", "-p", f"{p_udp}:81/udp",
                      "busybox", "sh", "-c", HTTPD.format(text="hello-pouch"))
        assert http_get_retry(p_lo).strip() == "hello-pouch"
        assert http_get(p_any).strip() == "hello-pouch"
        port = cli_ok(pouchd, "port", n)
        assert f"80/tcp -> 127.0.0.1:{p_lo}" in port
        assert f"80/tcp -> 0.0.0.0:{p_any}" in port
        assert f"81/udp -> 0.0.0.0:{p_udp}" in port
        # a published host port is not handed out twice
        r = pouchd.cli("run", "-d", "--name", box.name(), "--net", net, "-p", f"{p_any}:80", "busybox",
                       "sleep", "60")
        assert r.returncode != 0 and str(p_any) in r.stderr
        pouchd.cli("rm", "-f", n)
        with pytest.raises(OSError):
            http_get(p_lo, timeout=1)


def test_publish_all_uses_image_expose(pouchd, box):
    image = load_test_image(pouchd)
    net = _uniq("nP")
    with user_network(pouchd, net, "--subnet", "10.251.10.0/24"):
        n = box.run_d("--net", net, "-P", image, "sh", "-c", HTTPD.format(text="exposed"))
        out = cli_ok(pouchd, "port", n, "80/tcp").strip()
        host_ip, _, port = out.rpartition(":")
        assert host_ip == "0.0.0.0" and port.isdigit(), out
        assert http_get_retry(int(port)).strip() == "exposed"
        assert "80/tcp" in inspect_json(pouchd, "", n)["Config"]["ExposedPorts"]
        pouchd.cli("rm", "-f", n)


# -- /etc files ---------------------------------------------------------------------------------

def test_generated_etc_files(pouchd):
    out = cli_ok(pouchd, "run", "--rm", "--hostname", "box1", "--dns", "9.9.9.9", "--dns-search", "example.test",
                 "--dns-option", "ndots:3", "--add-host", "foo:10.1.2.3", "busybox", "sh", "-c",
                 "cat /etc/resolv.conf; echo ==; cat /etc/hosts; echo ==; cat /etc/hostname; hostname")
    resolv, hosts, hostname = out.split("==\n")
    assert resolv.splitlines() == ["nameserver 9.9.9.9", "search example.test", "options ndots:3"]
    entries = [line.split() for line in hosts.splitlines() if line.strip()]
    assert ["10.1.2.3", "foo"] in entries
    assert ["127.0.0.1", "localhost"] in entries
    assert any(_in_subnet(e[0], pouchd.bip) and "box1" in e[1:] for e in entries), hosts
    assert hostname.split() == ["box1", "box1"]


def test_host_mode_keeps_host_resolv_nameservers(pouchd):
    out = cli_ok(pouchd, "run", "--rm", "--net", "host", "busybox", "cat", "/etc/resolv.conf")
    with open("/etc/resolv.conf") as f:
        host_ns = [line.split()[1] for line in f if line.startswith("nameserver")]
    got = [line.split()[1] for line in out.splitlines() if line.startswith("nameserver")]
    assert got == host_ns or (not host_ns and got)


# -- no leaks -----------------------------------------------------------------------------------

def test_no_leaks_after_rm(pouchd, box):
    net = _uniq("nl")
    with user_network(pouchd, net, "--subnet", "10.251.11.0/24"):
        n = box.run_d("--net", net, "-p", f"127.0.0.1:{free_port()}:80", "busybox", "sleep", "600")
        cid = inspect_json(pouchd, "", n)["Id"]
        ip = container_ip(pouchd, n, net)
        veth = peer_ifindex(pouchd, n)
        assert veth in host_ifindexes()
        assert iptables_mentions(ip), "a published port should have a DNAT rule for the container"
        assert os.path.exists(os.path.join(pouchd.home, "network", "ipam", net, ip))
        assert os.path.exists(os.path.join(pouchd.run_dir, "netns", cid))
        bridge = bridge_of(pouchd, net)
        assert os.listdir(f"/sys/class/net/{bridge}/brif")
        cli_ok(pouchd, "rm", "-f", n)
        assert leftovers(pouchd, cid, ip, net, veth) == []
        assert os.listdir(f"/sys/class/net/{bridge}/brif") == []
    assert not os.path.exists(f"/sys/class/net/{bridge}")
    assert not [l for l in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.splitlines()
                if "10.251.11.0/24" in l]


def test_stop_releases_network_and_start_reattaches(pouchd, box):
    n = box.run_d("busybox", "sleep", "600")
    cid = inspect_json(pouchd, "", n)["Id"]
    ip, veth = container_ip(pouchd, n), peer_ifindex(pouchd, n)
    cli_ok(pouchd, "stop", "-t", "1", n)
    wait_for(lambda: leftovers(pouchd, cid, ip, "bridge", veth) == [], timeout=10, what="network release")
    cli_ok(pouchd, "start", n)
    ip2 = container_ip(pouchd, n)
    assert "inet " + ip2 in cli_ok(pouchd, "exec", n, "ip", "-4", "addr", "show", "eth0")


def test_twenty_containers_unique_ips_no_leaks(pouchd, box):
    net = _uniq("ns")
    with user_network(pouchd, net, "--subnet", "10.251.12.0/24"):
        names = [box.run_d("--net", net, "busybox", "sleep", "600") for _ in range(20)]
        info = {n: inspect_json(pouchd, "", n) for n in names}
        ips = [i["NetworkSettings"]["Networks"][net]["IPAddress"] for i in info.values()]
        assert len(set(ips)) == 20 and all(ipaddress.IPv4Address(i) in ipaddress.IPv4Network("10.251.12.0/24")
                                           for i in ips)
        veths = [peer_ifindex(pouchd, n) for n in names]
        cli_ok(pouchd, "rm", "-f", *names, timeout=120)
        for (n, i), ip, veth in zip(info.items(), ips, veths):
            assert leftovers(pouchd, i["Id"], ip, net, veth) == []


# -- pouchd SIGKILL + restart -------------------------------------------------------------------

def test_networking_survives_pouchd_kill9(fresh_pouchd):
    d = fresh_pouchd
    net = _uniq("nk")
    port = free_port()
    with user_network(d, net, "--subnet", "10.254.0.0/24"):
        r = d.cli("run", "-d", "--name", "web", "--net", net, "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
                  HTTPD.format(text="survivor"))
        assert r.returncode == 0, r.stderr
        d.cli("run", "-d", "--name", "peer", "--net", net, "busybox", "sleep", "600", check=True)
        ip = container_ip(d, "web", net)
        assert http_get_retry(port).strip() == "survivor"
        d.kill9()
        d.start()
        assert container_ip(d, "web", net) == ip
        assert http_get_retry(port).strip() == "survivor"
        assert d.cli("exec", "peer", "ping", "-c1", "-W2", "web").returncode == 0
        d.cli("run", "-d", "--name", "late", "--net", net, "busybox", "sleep", "600", check=True)
        assert container_ip(d, "late", net) not in (ip, container_ip(d, "peer", net))
        cid = inspect_json(d, "", "web")["Id"]
        veth = peer_ifindex(d, "web")
        d.cli("rm", "-f", "web", "peer", "late", check=True)
        assert leftovers(d, cid, ip, net, veth) == []
        with pytest.raises(OSError):
            http_get(port, timeout=1)


def test_dead_container_network_cleaned_after_kill9(fresh_pouchd):
    """A container that dies while pouchd is down: its endpoint is released at restart."""
    d = fresh_pouchd
    r = d.cli("run", "-d", "--name", "brief", "busybox", "sh", "-c", "sleep 2")
    assert r.returncode == 0, r.stderr
    cid = inspect_json(d, "", "brief")["Id"]
    ip, veth = container_ip(d, "brief"), peer_ifindex(d, "brief")
    d.kill9()
    import time
    time.sleep(3)
    d.start()
    wait_for(lambda: d.cli("inspect", "-f", "{{.State.Status}}", "brief").stdout.strip() == "stopped",
             timeout=15, what="brief to be seen as exited")
    wait_for(lambda: leftovers(d, cid, ip, "bridge", veth) == [], timeout=10, what="network cleanup")
    assert json.loads(d.cli("inspect", "brief").stdout)[0]["NetworkSettings"]["IPAddress"] == ""

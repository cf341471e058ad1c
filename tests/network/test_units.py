"""Unit tests without root: port specs, /etc files rendering, CNI conflist semantics with a fake plugin."""
from __future__ import annotations

import json
import os
import stat

import pytest

from pouch.network import etchosts
from pouch.network.cni import CNIRunner, RuntimeConf
from pouch.network.errors import CNIError, InvalidNetworkConfig
from pouch.network.ports import PortAllocator, parse_port_spec, parse_ports


@pytest.mark.parametrize("spec,want", [
    ("80", [("", 0, 80, "tcp")]),
    ("8080:80", [("", 8080, 80, "tcp")]),
    ("127.0.0.1:8080:80/udp", [("127.0.0.1", 8080, 80, "udp")]),
    ("127.0.0.1::80", [("127.0.0.1", 0, 80, "tcp")]),
    ("8000-8001:80-81", [("", 8000, 80, "tcp"), ("", 8001, 81, "tcp")]),
    ("[::1]:9000:90", [("::1", 9000, 90, "tcp")]),
])
def test_port_specs(spec, want):
    got = [(b.host_ip, b.host_port, b.container_port, b.protocol) for b in parse_port_spec(spec)]
    assert got == want


@pytest.mark.parametrize("spec", ["", "x", "80/icmp", "1.2.3:80:80", "70000", "8000-8002:80-81", "a:b:c:d", "9-1"])
def test_bad_port_specs_are_400(spec):
    with pytest.raises(InvalidNetworkConfig) as ei:
        parse_port_spec(spec)
    assert ei.value.http_status == 400


def test_publish_all_and_host_range_allocation():
    b = parse_ports(["8080:80"], publish_all=True, exposed=["80/tcp", "443/tcp"])
    assert sorted((x.container_port, x.host_port) for x in b) == [(80, 8080), (443, 0)]
    alloc = PortAllocator()
    got = alloc.allocate("c", parse_ports(["127.0.0.1:41000-41010:80"]))
    assert 41000 <= got[0].host_port <= 41010
    got2 = alloc.allocate("d", parse_ports(["127.0.0.1:41000-41010:80"]))
    assert got2[0].host_port != got[0].host_port


def test_hosts_and_resolv_rendering():
    hosts = etchosts.render_hosts([etchosts.HostEntry("10.0.0.2", ["me"])], ["db.local:10.9.9.9", "v6:fe80::1"],
                                  [etchosts.HostEntry("10.0.0.3", ["peer", "alias"])])
    lines = [line.split() for line in hosts.splitlines()]
    assert ["127.0.0.1", "localhost"] in lines and ["10.0.0.2", "me"] in lines
    assert ["10.9.9.9", "db.local"] in lines and ["fe80::1", "v6"] in lines and ["10.0.0.3", "peer", "alias"] in lines
    host = "# c\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch a.com b.com\noptions edns0\n"
    assert etchosts.render_resolv(host, [], [], []) == "nameserver 10.1.1.1\nsearch a.com b.com\noptions edns0\n"
    assert etchosts.render_resolv(host, ["1.1.1.1"], ["x.org"], ["ndots:2"]) == \
        "nameserver 1.1.1.1\nsearch x.org\noptions ndots:2\n"
    assert "nameserver 8.8.8.8" in etchosts.render_resolv("nameserver 127.0.0.1\n", [], [], [])
    with pytest.raises(InvalidNetworkConfig):
        etchosts.render_resolv(host, ["not-an-ip"], [], [])
    with pytest.raises(InvalidNetworkConfig):
        etchosts.parse_extra_host("nocolon")


FAKE = r"""#!/bin/sh
# records its stdin + command, then answers like a CNI plugin
name=$(basename "$0")
conf=$(cat)
echo "$CNI_COMMAND $name $conf" >> "$LOG"
case "$CNI_COMMAND:$name" in
  ADD:fail) echo '{"cniVersion":"1.0.0","code":7,"msg":"boom","details":"more"}'; exit 1 ;;
  ADD:first) echo '{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/24"}]}' ;;
  ADD:*) echo "$conf" | sed 's/.*"prevResult": *//; s/}$//' ;;
esac
exit 0
"""


@pytest.fixture
def fake_cni(tmp_path, monkeypatch):
    d = tmp_path / "bin"
    d.mkdir()
    for n in ("first", "second", "fail"):
        p = d / n
        p.write_text(FAKE)
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "log"
    monkeypatch.setenv("LOG", str(log))
    return CNIRunner(str(tmp_path / "cache"), plugin_dirs=[str(d)]), log


async def test_conflist_chaining_capabilities_cache_and_del(fake_cni, monkeypatch):
    runner, log = fake_cni
    monkeypatch.setattr(runner, "_env", lambda cmd, rt, orig=runner._env: {**orig(cmd, rt), "LOG": os.environ["LOG"]})
    conflist = {"cniVersion": "1.0.0", "name": "n1", "plugins": [
        {"type": "first", "capabilities": {"ips": True}}, {"type": "second", "capabilities": {"portMappings": True}}]}
    rt = RuntimeConf("cid1", "/run/x", "eth0", capability_args={"ips": ["10.1.0.5/24"], "portMappings": [{"hostPort": 1}]})
    res = await runner.add(conflist, rt)
    assert res["ips"][0]["address"] == "10.1.0.5/24"
    calls = [line.split(" ", 2) for line in log.read_text().splitlines()]
    c1, c2 = json.loads(calls[0][2]), json.loads(calls[1][2])
    assert c1["runtimeConfig"] == {"ips": ["10.1.0.5/24"]} and "prevResult" not in c1 and c1["name"] == "n1"
    assert c2["runtimeConfig"] == {"portMappings": [{"hostPort": 1}]} and c2["prevResult"]["ips"]
    # a new runner (daemon restart) deletes from the cache, in reverse order, with prevResult
    log.write_text("")
    r2 = CNIRunner(runner.cache_dir, plugin_dirs=runner.plugin_dirs)
    monkeypatch.setattr(r2, "_env", runner._env)
    await r2.delete(RuntimeConf("cid1", "", "eth0"), network_name="n1")
    dels = [line.split(" ", 2) for line in log.read_text().splitlines()]
    assert [d[1] for d in dels] == ["second", "first"] and all(d[0] == "DEL" for d in dels)
    assert json.loads(dels[0][2])["prevResult"]["ips"][0]["address"] == "10.1.0.5/24"
    assert r2.cached_attachments() == []


async def test_plugin_error_is_typed_and_add_rolls_back(fake_cni, monkeypatch):
    runner, log = fake_cni
    monkeypatch.setattr(runner, "_env", lambda cmd, rt, orig=runner._env: {**orig(cmd, rt), "LOG": os.environ["LOG"]})
    conflist = {"cniVersion": "1.0.0", "name": "n2", "plugins": [{"type": "first"}, {"type": "fail"}]}
    with pytest.raises(CNIError) as ei:
        await runner.add(conflist, RuntimeConf("cid2", "/run/x"))
    e = ei.value
    assert (e.plugin, e.code, e.msg, e.details) == ("fail", 7, "boom", "more") and "boom" in str(e)
    cmds = [line.split(" ", 2)[:2] for line in log.read_text().splitlines()]
    assert cmds[-2:] == [["DEL", "fail"], ["DEL", "first"]]
    assert runner.cached_attachments() == []
    with pytest.raises(Exception, match="not found"):
        await runner.add({"name": "n3", "plugins": [{"type": "nosuch"}]}, RuntimeConf("c", "/x"))

"""User networks as Pouch makes them: --enable-ipv6 with an IPv6 subnet (containers get a v6
address and reach each other over it), --ipam-opt, -o (the bridge's name) and labels; bad
input refused in one line with no network left."""
from __future__ import annotations

import os
import uuid

import pytest

from tests.daemon.nettools import cli_ok, inspect_json

pytestmark = pytest.mark.integration


def test_ipv6_network_ipam_opts_options_and_labels(pouchd, box):
    n = int.from_bytes(os.urandom(2), "big")
    name = "n6" + uuid.uuid4().hex[:6]
    v4, v6 = f"10.{200 + n % 40}.{n // 256}.0/24", f"fd00:{n:x}:6::/64"
    brname = f"pv6{n:04x}"
    cli_ok(pouchd, "network", "create", "--enable-ipv6", "--subnet", v4, "--subnet", v6, "--ipam-opt", "pool=a",
           "-o", f"com.docker.network.bridge.name={brname}", "-l", "team=infra", name)
    try:
        net = inspect_json(pouchd, "network", name)
        assert net["EnableIPv6"] is True and net["IPAM"]["Options"] == {"pool": "a"}
        assert {c["Subnet"] for c in net["IPAM"]["Config"]} == {v4, v6}
        assert net["Labels"] == {"team": "infra"}
        a = box.run_d("--net", name, "busybox", "sleep", "300")
        ep = inspect_json(pouchd, "", a)["NetworkSettings"]["Networks"][name]
        assert ep["GlobalIPv6Address"].startswith(f"fd00:{n:x}:6::") and ep["GlobalIPv6PrefixLen"] == 64
        assert os.path.isdir(f"/sys/class/net/{brname}/bridge")  # -o bridge.name is the device
        r = pouchd.cli("run", "--rm", "--net", name, "busybox", "ping6", "-c", "2", "-W", "3",
                       ep["GlobalIPv6Address"])
        assert r.returncode == 0 and "2 packets received" in r.stdout, (r.stdout, r.stderr)
        box.cleanup()
    finally:
        pouchd.cli("network", "rm", name)
    # bad input: one line, nothing created
    for args in (["--enable-ipv6", "--subnet", "10.9.9.0/24"], ["--subnet", v6],
                 ["--enable-ipv6", "--subnet", "fd00::/124"], ["--enable-ipv6"]):
        bad = "bad" + uuid.uuid4().hex[:6]
        r = pouchd.cli("network", "create", *args, bad)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert pouchd.cli("network", "inspect", bad).returncode != 0


def test_embedded_dns_on_user_networks(pouchd, box):
    name = "nd" + uuid.uuid4().hex[:6]
    cli_ok(pouchd, "network", "create", name)
    try:
        a = box.run_d("--net", name, "--network-alias", "db", "busybox", "sleep", "300")
        ip = inspect_json(pouchd, "", a)["NetworkSettings"]["Networks"][name]["IPAddress"]
        b = box.run_d("--net", name, "busybox", "sleep", "300")
        # nslookup asks the nameserver (not /etc/hosts): the answers come from pouchd's DNS
        out = cli_ok(pouchd, "exec", b, "sh", "-c", f"cat /etc/resolv.conf; nslookup {a} 127.0.0.11; nslookup db")
        assert "nameserver 127.0.0.11" in out, out
        assert out.count(f"Address: {ip}") == 2, out  # by name and by alias
        r = pouchd.cli("exec", b, "nslookup", "no-such-container-x.invalid")
        assert "can't find" in r.stdout + r.stderr, r  # forwarded upstream (or SERVFAIL offline)
        # the default bridge keeps the host's nameservers (as Docker)
        out = cli_ok(pouchd, "run", "--rm", "busybox", "cat", "/etc/resolv.conf")
        assert "127.0.0.11" not in out
        box.cleanup()
    finally:
        pouchd.cli("network", "rm", name)

"""The Moby face's contract at /v1.25 and newer: the docker CLI (negotiating from /_ping) and the
docker SDK (pinned to 1.41) see Docker's shapes, and the gaps of issue 11 are closed (export,
volume and network events, image list filters, image Env in Config.Env, Ports in the list,
loopback registries insecure by default, Moby's texts for missing objects).

The Pouch face of the same daemon is in test_contract_pouch.py.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid

import pytest

from tests.api.conftest import unique_name

pytestmark = pytest.mark.integration

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
M = "/v1.41"


def docker(d, *args, timeout=60):
    if not os.path.exists(DOCKER):
        pytest.skip("the docker CLI is not installed (/usr/local/bin/docker)")
    env = dict(os.environ, DOCKER_CONFIG="/tmp/pouch-test-docker-config")
    env.pop("DOCKER_HOST", None)
    return subprocess.run([DOCKER, "-H", d.host, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def sdk(pouchd):
    docker_sdk = pytest.importorskip("docker", reason="the docker Python SDK is not installed")
    client = docker_sdk.DockerClient(base_url="unix://" + pouchd.sock, version="1.41")
    yield client
    client.close()


def test_moby_shapes_through_the_docker_cli_and_sdk(pouchd, names, sdk):
    n = unique_name("mc")
    names.append(n)
    r = docker(pouchd, "run", "--name", n, "busybox", "true")
    assert r.returncode == 0, r.stderr
    assert docker(pouchd, "inspect", "-f", "{{.Name}} {{.State.Status}}", n).stdout.strip() == f"/{n} exited"
    assert "Exited (0)" in docker(pouchd, "ps", "-a", "--filter", f"name={n}").stdout
    c = sdk.containers.get(n)
    assert c.status == "exited" and c.attrs["Name"] == "/" + n
    # image Env in Config.Env, in both faces
    assert any(e.startswith("PATH=") for e in c.attrs["Config"]["Env"])
    status, body = pouchd.api("DELETE", f"{M}/images/nope-{uuid.uuid4().hex[:6]}")
    assert status == 404 and body["message"].startswith("No such image: ")
    r = docker(pouchd, "rm", "nope-xyz")
    assert r.returncode == 1 and "No such container: nope-xyz" in r.stderr
    r = docker(pouchd, "volume", "inspect", "nope-xyz")
    assert r.returncode == 1 and "no such volume" in r.stderr


def test_export(pouchd, names, sdk):
    n = unique_name("mc")
    names.append(n)
    pouchd.cli("run", "-d", "--name", n, "busybox", "sh", "-c", "echo exported > /marker; sleep 300", check=True)
    c = sdk.containers.get(n)
    for _ in range(100):
        if c.exec_run(["cat", "/marker"]).output == b"exported\n":
            break
        time.sleep(0.05)
    data = b"".join(c.export())
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        names_in = set(tf.getnames())
        assert tf.extractfile("marker").read() == b"exported\n"
    assert "bin/busybox" in names_in and "proc" in names_in
    assert not any(x.startswith("proc/") for x in names_in)   # the container's /proc is not exported
    r = subprocess.run([DOCKER, "-H", pouchd.host, "export", n], capture_output=True, timeout=60,
                       env=dict(os.environ, DOCKER_CONFIG="/tmp/pouch-test-docker-config"))
    assert r.returncode == 0 and len(r.stdout) > 100000
    assert pouchd.api("GET", f"{M}/containers/nope-xyz/export")[0] == 404


def test_volume_and_network_events(pouchd, names):
    since = str(time.time())
    vol, net, ctr = unique_name("mv"), unique_name("mn"), unique_name("mc")
    names.append(ctr)
    assert docker(pouchd, "volume", "create", vol).returncode == 0
    r = docker(pouchd, "network", "create", net)
    assert r.returncode == 0, r.stderr
    try:
        pouchd.cli("create", "--name", ctr, "busybox", "sleep", "300", check=True)
        pouchd.cli("start", ctr, check=True)
        assert docker(pouchd, "network", "connect", net, ctr).returncode == 0
        assert docker(pouchd, "network", "disconnect", net, ctr).returncode == 0
    finally:
        pouchd.cli("rm", "-f", ctr)
        docker(pouchd, "network", "rm", net)
        docker(pouchd, "volume", "rm", vol)
    r = docker(pouchd, "events", "--since", since, "--until", str(time.time() + 0.5),
               "--filter", "type=volume", "--filter", "type=network", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
    seen = {(t, a, i if t == "volume" else name) for t, a, i, name in (l.split(None, 3) for l in r.stdout.splitlines())}
    for want in (("volume", "create", vol), ("volume", "destroy", vol), ("network", "create", net),
                 ("network", "connect", net), ("network", "disconnect", net), ("network", "destroy", net)):
        assert want in seen, (want, r.stdout)


def test_image_list_filters(pouchd):
    tag = f"contract/filt:{uuid.uuid4().hex[:6]}"
    assert pouchd.cli("tag", "busybox:latest", tag).returncode == 0
    try:
        def listed(*flt):
            r = docker(pouchd, "images", *[x for f in flt for x in ("--filter", f)], "--format", "{{.Repository}}:{{.Tag}}")
            assert r.returncode == 0, r.stderr
            return r.stdout.split()
        assert listed(f"reference={tag.split(':')[0]}") == [tag]
        assert tag in listed("reference=contract/*")
        assert "busybox:latest" not in listed("reference=contract/*")
        assert listed("dangling=true") == []
        assert listed("before=busybox:latest") == [] and listed("since=busybox:latest") == []
        assert listed("label=no.such.label") == []
        status, body = pouchd.api("GET", f"{M}/images/json?filters=" + '%7B%22bogus%22%3A%5B%22x%22%5D%7D')
        assert status == 400 and "bogus" in body["message"]
    finally:
        pouchd.cli("rmi", tag)


def test_ports_in_the_container_list(pouchd, names):
    n = unique_name("mc")
    names.append(n)
    r = docker(pouchd, "run", "-d", "--name", n, "-p", "127.0.0.1::80", "--expose", "81", "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    ports = docker(pouchd, "ps", "--filter", f"name={n}", "--format", "{{.Ports}}").stdout.strip()
    host_port = json.loads(docker(pouchd, "inspect", n).stdout)[0]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    assert f"127.0.0.1:{host_port}->80/tcp" in ports and "81/tcp" in ports


def test_loopback_registries_are_insecure_by_default(pouchd):
    status, info = pouchd.api("GET", f"{M}/info")
    assert {"127.0.0.0/8", "::1/128"} <= set(info["RegistryConfig"]["InsecureRegistryCIDRs"])
    from tests.fixtures.registry import RegistryServer, missing_tools
    if missing_tools():
        pytest.skip(f"missing: {missing_tools()}")
    import tempfile
    from pathlib import Path
    reg = RegistryServer(Path(tempfile.mkdtemp(prefix="pouch-contract-reg-"))).start()
    try:
        ref = f"{reg.host}/contract/bb:v1"
        assert pouchd.cli("tag", "busybox:latest", ref).returncode == 0
        r = pouchd.cli("push", ref, timeout=120)   # plain http on 127.0.0.1, no --insecure-registries
        assert r.returncode == 0, r.stderr
        r = pouchd.cli("search", f"{reg.host}/contract")
        assert r.returncode == 0 and "contract/bb" in r.stdout, (r.stdout, r.stderr)
    finally:
        pouchd.cli("rmi", f"{reg.host}/contract/bb:v1")
        reg.stop()

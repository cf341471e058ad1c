"""The Pouch face's contract: PouchContainer's answers (apis/swagger.yml, docs/commandline) at
/v1.24 and on bare paths, checked through raw HTTP and through the `pouch` CLI.

The Moby face of the same points is in test_contract_moby.py.
"""
from __future__ import annotations

import json
import uuid

import pytest

from tests.api.conftest import unique_name

pytestmark = pytest.mark.integration

V = "/v1.24"


def _run(pouchd, names, *args) -> str:
    n = unique_name("pc")
    names.append(n)
    pouchd.cli("run", "-d", "--name", n, *args, "busybox", "sleep", "300", check=True)
    return n


def _create(pouchd, names, *cmd) -> str:
    n = unique_name("pc")
    names.append(n)
    pouchd.cli("create", "--name", n, "busybox", *(cmd or ("true",)), check=True)
    return n


# -- status codes ------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", [V, ""])
def test_conflicts_are_409_and_no_ops_304(pouchd, names, prefix):
    run = _run(pouchd, names)
    created = _create(pouchd, names)
    api = pouchd.api
    assert api("DELETE", f"{prefix}/containers/{run}")[0] == 409            # rm running, no force
    assert api("POST", f"{prefix}/containers/{created}/exec", {"Cmd": ["ls"]})[0] == 409
    assert api("POST", f"{prefix}/containers/{created}/pause")[0] == 409
    assert api("POST", f"{prefix}/containers/{created}/resize?h=10&w=10")[0] == 409
    assert api("POST", f"{prefix}/containers/{created}/stop")[0] == 304     # no-op stop
    assert api("POST", f"{prefix}/containers/{run}/start")[0] == 304         # no-op start
    assert api("POST", f"{prefix}/containers/{run}/pause")[0] == 204
    try:
        status, body = api("POST", f"{prefix}/containers/{run}/start")
        assert status == 409 and "paused" in body["message"]                 # start paused
        assert api("DELETE", f"{prefix}/containers/{run}")[0] == 409        # rm paused, no force
        assert api("POST", f"{prefix}/containers/{run}/exec", {"Cmd": ["ls"]})[0] == 409
    finally:
        api("POST", f"{prefix}/containers/{run}/unpause")
    status, body = api("DELETE", f"{prefix}/images/busybox:latest")        # image in use
    assert status == 409 and "being used" in body["message"]
    status, body = api("GET", f"{prefix}/containers/json?filters=" + '%7B%22bogus%22%3A%5B%22x%22%5D%7D')
    assert status == 400 and "bogus" in body["message"]
    status, body = api("GET", f"{prefix}/containers/json?filters=notjson")
    assert status == 400
    status, body = api("POST", f"{prefix}/networks/create", {})
    assert status == 400 and "name" in body["message"]


def test_conflicts_through_the_cli(pouchd, names):
    run = _run(pouchd, names)
    created = _create(pouchd, names)
    r = pouchd.cli("rm", run)
    assert r.returncode == 1 and "running container" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = pouchd.cli("exec", created, "ls")
    assert r.returncode != 0 and "not running" in r.stderr
    r = pouchd.cli("pause", created)
    assert r.returncode == 1 and "not running" in r.stderr
    pouchd.cli("pause", run, check=True)
    try:
        r = pouchd.cli("start", run)
        assert r.returncode == 1 and "cannot start a paused container" in r.stderr
    finally:
        pouchd.cli("unpause", run, check=True)
    r = pouchd.cli("rmi", "busybox:latest")
    assert r.returncode == 1 and "being used" in r.stderr
    r = pouchd.cli("ps", "-f", "bogus=1")
    assert r.returncode == 1 and "bogus" in r.stderr


def test_rmi_is_204_without_a_body(pouchd):
    for prefix in (V, ""):
        assert pouchd.cli("tag", "busybox:latest", "contract/rmi:t1").returncode == 0
        status, body = pouchd.api("DELETE", f"{prefix}/images/contract/rmi:t1")
        assert (status, body) == (204, None)
    assert pouchd.cli("tag", "busybox:latest", "contract/rmi:t2").returncode == 0
    r = pouchd.cli("rmi", "contract/rmi:t2")
    assert r.returncode == 0 and r.stdout.strip() == "contract/rmi:t2"
    assert pouchd.api("GET", f"{V}/images/contract/rmi:t2/json")[0] == 404


# -- shapes --------------------------------------------------------------------------------------
def test_inspect_ps_and_create_shapes(pouchd, names):
    n = unique_name("pc")
    names.append(n)
    status, created = pouchd.api("POST", f"{V}/containers/create?name={n}", {"Image": "busybox", "Cmd": ["true"]})
    assert status == 201 and created["Name"] == n and len(created["Id"]) == 64
    status, info = pouchd.api("GET", f"{V}/containers/{n}/json")
    assert info["Name"] == n and info["State"]["Status"] == "created"
    assert info["LogPath"] == ""                      # no log before the first start
    assert info["ExecIDs"] is None and info["HostConfig"]["LogConfig"]["Config"] is None
    assert info["GraphDriver"]["Name"] == info["Driver"] and info["GraphDriver"]["Data"]["UpperDir"]
    assert any(e.startswith("PATH=") for e in info["Config"]["Env"])
    pouchd.cli("start", n, check=True)
    pouchd.api("POST", f"{V}/containers/{n}/wait")
    status, info = pouchd.api("GET", f"/containers/{n}/json")
    assert info["State"]["Status"] == "stopped" and info["LogPath"].endswith("-json.log")
    status, lst = pouchd.api("GET", f"{V}/containers/json?all=1")
    mine = [c for c in lst if c["Id"] == info["Id"]][0]
    assert mine["Names"] == [n] and mine["State"] == "stopped" and mine["Status"].startswith("Stopped (0)")
    # the Moby face of the same container
    status, moby = pouchd.api("GET", f"/v1.41/containers/{n}/json")
    assert moby["Name"] == "/" + n and moby["State"]["Status"] == "exited"
    # and the CLI, which speaks the Pouch face
    r = pouchd.cli("inspect", "-f", "{{.Name}} {{.State.Status}}", n)
    assert r.stdout.strip() == f"{n} stopped"
    r = pouchd.cli("ps", "-a", "-f", f"name={n}")
    assert "Stopped (0)" in r.stdout and "Exited" not in r.stdout
    r = pouchd.cli("ps", "-a", "-f", "status=stopped", "-q", "--no-trunc")
    assert info["Id"] in r.stdout.split()


def test_image_list_carries_config(pouchd):
    status, imgs = pouchd.api("GET", f"{V}/images/json")
    bb = [i for i in imgs if "busybox:latest" in (i["RepoTags"] or [])][0]
    assert isinstance(bb["Config"], dict) and bb["Config"].get("Cmd")
    status, imgs = pouchd.api("GET", "/v1.41/images/json")
    assert all("Config" not in i for i in imgs)


def test_version_and_info_as_pouch_fills_them(pouchd):
    status, v = pouchd.api("GET", f"{V}/version")
    assert status == 200
    assert set(v) == {"Version", "ApiVersion", "GitCommit", "GoVersion", "Os", "Arch", "KernelVersion", "BuildTime"}
    assert v["ApiVersion"] == "1.24"
    assert pouchd.api("GET", "/version")[1] == v
    r = pouchd.cli("version")
    lines = dict(line.split(":", 1) for line in r.stdout.splitlines())
    assert [k for k in lines] == ["GoVersion", "KernelVersion", "Os", "Version", "APIVersion", "Arch",
                                  "BuildTime", "GitCommit"]
    assert lines["APIVersion"].strip() == v["ApiVersion"] and lines["Version"].strip() == v["Version"]
    status, info = pouchd.api("GET", f"{V}/info")
    for key in ("ContainersStopped", "PouchRootDir", "LxcfsEnabled", "CriEnabled", "DefaultRegistry",
                "VolumeDrivers", "ListenAddresses"):
        assert key in info, key
    assert "DockerRootDir" not in info


# -- extensions --------------------------------------------------------------------------------
def test_specific_id(pouchd, names):
    want = uuid.uuid4().hex + uuid.uuid4().hex
    n = unique_name("pc")
    names.append(n)
    status, body = pouchd.api("POST", f"{V}/containers/create?name={n}",
                              {"Image": "busybox", "Cmd": ["true"], "SpecificID": want})
    assert status == 201 and body["Id"] == want
    before = _ids(pouchd)
    for bad, why in ((want[:10], "length"), ("Z" * 64, "characters"), (want, "already")):
        status, body = pouchd.api("POST", f"{V}/containers/create",
                                  {"Image": "busybox", "Cmd": ["true"], "SpecificID": bad})
        assert status in (400, 409) and why in body["message"], body
    assert _ids(pouchd) == before


def test_inspect_errors_as_pouch_prints_them(pouchd):
    r = pouchd.cli("inspect", "nope-" + uuid.uuid4().hex[:6])
    assert r.returncode == 1
    line = r.stderr.strip()
    assert line.startswith("Error: Fetch object error: {\"message\":") and "not found" in line
    status, body = pouchd.api("GET", f"{V}/containers/nope/json")
    assert (status, body) == (404, {"message": "container nope: not found"})
    r = pouchd.cli("inspect", "-f", "{{.Name", "busybox:latest")
    assert (r.returncode, r.stderr) == (1, "Error: Parse template String error: template: :1: unclosed action\n")
    r = pouchd.cli("inspect", "-f", "{{.NoSuchField}}", "busybox:latest")
    assert r.returncode == 1 and r.stderr.startswith("Error: Template parsing error: template: ") \
        and "can't evaluate field NoSuchField" in r.stderr
    r = pouchd.cli("inspect", "-f", "{{.Config.Labels.nope}}", "busybox:latest")
    assert r.returncode == 0 and r.stdout.strip() in ("<no value>", "")   # a map, not a struct


def test_missing_objects_in_both_faces(pouchd):
    for kind, path in (("container", "/containers/nope/json"), ("image", "/images/nope/json"),
                       ("volume", "/volumes/nope"), ("network", "/networks/nope")):
        status, body = pouchd.api("GET", V + path)
        assert status == 404 and body["message"] == f"{kind} nope: not found"
    assert pouchd.api("GET", "/v1.41/containers/nope/json")[1]["message"] == "No such container: nope"
    assert pouchd.api("GET", "/v1.41/images/nope/json")[1]["message"] == "No such image: nope"
    assert pouchd.api("GET", "/v1.41/volumes/nope")[1]["message"] == "get nope: no such volume"
    assert pouchd.api("GET", "/v1.41/networks/nope")[1]["message"] == "network nope not found"


def test_refusals_are_one_line_and_change_nothing(pouchd):
    before = _ids(pouchd)
    for body in ({"Image": "busybox", "SpecificID": 5}, {"Image": "busybox", "HostConfig": {"Memory": "x"}},
                 {"Image": "no-such-image-here"}):
        status, reply = pouchd.api("POST", f"{V}/containers/create", body)
        assert 400 <= status < 500 and "\n" not in reply["message"].strip()
    assert _ids(pouchd) == before


def _ids(pouchd) -> set[str]:
    return {c["Id"] for c in pouchd.api("GET", f"{V}/containers/json?all=1")[1]}


def test_label_filters(pouchd, names):
    a = _run(pouchd, names, "-l", "tier=web")
    b = _run(pouchd, names, "-l", "tier=db")
    c = _run(pouchd, names)

    def ps(*flt):
        r = pouchd.cli("ps", *[x for f in flt for x in ("-f", f)], "--format", "{{.Names}}")
        assert r.returncode == 0, r.stderr
        return set(r.stdout.split()) & {a, b, c}
    assert ps("label=tier=web") == {a}
    assert ps("label=tier!=web") == {b}
    assert ps("label=tier") == {a, b}
    status, body = pouchd.api("GET", f"{V}/containers/json?filters=" + '%7B%22label%22%3A%5B%22tier!%3Dweb%22%5D%7D')
    assert status == 200 and {x["Names"][0] for x in body} & {a, b, c} == {b}


def test_metrics_in_prometheus_text(pouchd, names):
    _create(pouchd, names)
    status, text = pouchd.api("GET", "/metrics")
    assert status == 200
    text = text.decode() if isinstance(text, bytes) else str(text)
    got = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            got[key] = float(value)
    assert got['engine_daemon_container_actions_counter_total{action="create"}'] >= 1
    assert got['engine_daemon_container_success_actions_counter_total{action="create"}'] >= 1
    assert got['engine_daemon_container_actions_seconds_count{action="create"}'] >= 1
    assert any(k.startswith("engine_daemon_engine_info{") for k in got)
    assert "# TYPE engine_daemon_image_actions_seconds histogram" in text


def test_images_save_by_name_and_load_with_aunique_name(pouchd, tmp_path):
    import io
    import tarfile
    s = __import__("socket").socket(__import__("socket").AF_UNIX)
    s.connect(pouchd.sock)
    s.sendall(f"GET {V}/images/save?name=busybox:latest HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while chunk := s.recv(1 << 16):
        buf += chunk
    s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    assert head.split()[1] == b"200"
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["busybox:latest"]
    # an archive whose image has no name: `pouch load -i FILE NAME` names it
    unnamed = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(body)) as src, tarfile.open(fileobj=unnamed, mode="w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name == "manifest.json":
                man = json.loads(data)
                man[0]["RepoTags"] = None
                data = json.dumps(man).encode()
                m.size = len(data)
            if m.name == "repositories":
                continue
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    arch = tmp_path / "unnamed.tar"
    arch.write_bytes(unnamed.getvalue())
    r = pouchd.cli("load", "-i", str(arch), "contract/loaded:v1")
    assert r.returncode == 0, r.stderr
    try:
        assert "contract/loaded:v1" in r.stdout
        assert pouchd.api("GET", f"{V}/images/contract/loaded:v1/json")[0] == 200
    finally:
        pouchd.cli("rmi", "contract/loaded:v1")
    r = pouchd.cli("load", "-i", str(arch), "Bad Name")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def test_help_and_top_with_ps_options(pouchd, names):
    r = pouchd.cli("help")
    assert r.returncode == 0 and "help" in r.stdout and "Commands:" in r.stdout
    r = pouchd.cli("help", "ps")
    assert r.returncode == 0 and r.stdout.startswith("Usage: pouch ps")
    n = _run(pouchd, names)
    r = pouchd.cli("top", n, "-aux")
    assert r.returncode == 0, r.stderr
    title = r.stdout.splitlines()[0].split()
    assert "%CPU" in title and "RSS" in title and "sleep 300" in r.stdout


@pytest.mark.parametrize("argv", [("run", "-it", "busybox", "sh"), ("exec", "-it", "{run}", "sh"),
                                  ("start", "-ai", "{created}")])
def test_terminals_need_a_tty(pouchd, names, argv):
    run = _run(pouchd, names)
    created = unique_name("pc")
    names.append(created)
    pouchd.cli("create", "-it", "--name", created, "busybox", "sh", check=True)
    before = _ids(pouchd)
    r = pouchd.cli(*[a.format(run=run, created=created) for a in argv], input="", timeout=10)
    assert r.returncode == 1 and r.stderr.strip() == "Error: the input device is not a TTY"
    assert _ids(pouchd) == before
    assert pouchd.api("GET", f"{V}/containers/{created}/json")[1]["State"]["Status"] == "created"


# -- output formats (docs/commandline) --------------------------------------------------------------
def test_tables_as_documented(pouchd, names):
    n = _run(pouchd, names)
    vol = unique_name("pv")
    pouchd.cli("volume", "create", vol, check=True)
    try:
        tables = {
            "ps": (pouchd.cli("ps").stdout, ["Name", "ID", "Status", "Created", "Image", "Runtime"]),
            "images": (pouchd.cli("images").stdout, ["IMAGE ID", "IMAGE NAME", "SIZE"]),
            "volume ls": (pouchd.cli("volume", "ls").stdout, ["DRIVER", "VOLUME NAME"]),
            "network ls": (pouchd.cli("network", "ls").stdout, ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]),
        }
        for what, (out, head) in tables.items():
            lines = out.split("\n")
            assert lines[-1] == "" and all(line == line.rstrip() for line in lines), (what, out)
            assert [h.strip() for h in lines[0].split("   ") if h.strip()] == head, (what, lines[0])
        assert any(line.split()[0] == n for line in tables["ps"][0].splitlines()[1:])
        assert pouchd.cli("volume", "ls", "-q").stdout.splitlines()[0] == "VOLUME NAME"
        assert vol in pouchd.cli("volume", "ls", "-q").stdout.splitlines()
        r = pouchd.cli("volume", "ls", "-q", "--size")
        assert r.returncode == 1 and "Conflicting options" in r.stderr
    finally:
        pouchd.cli("volume", "rm", vol)


def test_events_text_and_exec_exit_codes(pouchd, names):
    import time
    since = str(int(time.time()) - 1)
    n = _run(pouchd, names)
    r = pouchd.cli("events", "--since", since, "--until", str(int(time.time()) + 1))
    line = next(l for l in r.stdout.splitlines() if " container start " in l and f"name={n}" in l)
    stamp, kind, action, actor, attrs = line.split(" ", 4)
    assert stamp[:4].isdigit() and "T" in stamp and (kind, action, len(actor)) == ("container", "start", 64)
    assert attrs.startswith("(") and attrs.endswith(")")
    r = pouchd.cli("exec", n, "/no/such/binary")
    assert r.returncode == 127 and len(r.stderr.strip().splitlines()) == 1
    r = pouchd.cli("exec", n, "/etc/passwd")
    assert r.returncode == 126


def test_logs_details_and_tty_logs(pouchd, names):
    n = unique_name("pc")
    names.append(n)
    pouchd.cli("run", "--name", n, "-l", "app=web", "-e", "STAGE=prod", "--log-opt", "labels=app",
               "--log-opt", "env=STAGE", "busybox", "echo", "hello", check=True)
    assert pouchd.cli("logs", n).stdout == "hello\n"
    assert pouchd.cli("logs", "--details", n).stdout == "STAGE=prod,app=web hello\n"
    t = unique_name("pc")
    names.append(t)
    pouchd.cli("run", "-t", "--name", t, "busybox", "sh", "-c", "echo a; echo b", check=True)
    r = pouchd.cli("logs", t, input=b"")
    assert r.stdout == b"a\r\nb\r\n"

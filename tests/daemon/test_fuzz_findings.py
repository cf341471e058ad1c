"""Each bad input the fuzzing of issue 14 found (5xx, hangs, raw texts, leftovers) as a 4xx with one
readable message and nothing changed or left behind."""
from __future__ import annotations

import io
import tarfile
import time

import pytest

from tests.daemon.conftest import inspect

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("path", ["/images/prune?filters=true", "/networks/prune?filters=1",
                                  "/volumes/prune?filters=%5B1%5D", "/containers/json?filters=%22x%22",
                                  "/networks?filters=2.5", "/volumes?filters=true"])
def test_filters_not_an_object_400(pouchd, path):
    method = "POST" if path.split("?")[0].endswith("prune") else "GET"
    status, body = pouchd.api(method, path)
    assert status == 400, (path, status, body)
    assert "filters" in body["message"]


@pytest.mark.parametrize("body", [{"username": 1, "password": "x"}, {"username": "u", "password": ["x"]},
                                  {"username": "u", "password": "p", "serveraddress": 5},
                                  {"username": "u", "password": "p", "serveraddress": {"a": 1}}])
def test_auth_bad_body_400(pouchd, body):
    status, resp = pouchd.api("POST", "/auth", body)
    assert status == 400, (body, status, resp)
    assert resp["message"]


def test_network_connect_disconnect_bad_container_400(pouchd, box):
    n = box.run_d("busybox", "sleep", "300")
    net = "bridge"
    for body in ({"Container": 5}, {"Container": ["x"]}, {}, {"Container": n, "EndpointConfig": 3},
                 {"Container": n, "EndpointConfig": {"Aliases": "a"}}):
        for op in ("connect", "disconnect"):
            if op == "disconnect" and "EndpointConfig" in body:
                continue
            status, resp = pouchd.api("POST", f"/networks/{net}/{op}", body)
            assert status == 400, (op, body, status, resp)
    assert inspect(pouchd, n)["State"]["Running"]


@pytest.mark.parametrize("body", [{"DriverOpts": 1.5}, {"DriverOpts": {"size": 1.5}}, {"Labels": [1]},
                                  {"Name": 7}, {"Driver": {"x": 1}}])
def test_volume_create_bad_types_400(pouchd, body):
    before = pouchd.cli("volume", "ls", "-q").stdout.split()
    status, resp = pouchd.api("POST", "/volumes/create", body)
    assert status == 400, (body, status, resp)
    assert pouchd.cli("volume", "ls", "-q").stdout.split() == before


def test_network_create_bad_types_400(pouchd):
    for body in ({"Name": 3}, {"Name": "fz1", "IPAM": {"Config": 1}}, {"Name": "fz1", "IPAM": {"Config": [3]}},
                 {"Name": "fz1", "Options": {"a": 1}}, {"Name": "fz1", "IPAM": {"Config": [{"Subnet": 10}]}}):
        status, resp = pouchd.api("POST", "/networks/create", body)
        assert status == 400, (body, status, resp)
    assert "fz1" not in pouchd.cli("network", "ls").stdout


def test_negative_stop_timeouts_answer_400(pouchd, box):
    n = box.run_d("busybox", "sleep", "300")  # sleep as PID 1 ignores SIGTERM: t<0 used to wait for ever
    t0 = time.monotonic()
    status, resp = pouchd.api("POST", f"/containers/{n}/stop?t=-1", timeout=20)
    assert status == 400 and "t" in resp["message"]
    status, resp = pouchd.api("POST", f"/containers/{n}/restart?t=-1075530", timeout=20)
    assert status == 400
    assert time.monotonic() - t0 < 10
    assert inspect(pouchd, n)["State"]["Running"]


def test_stop_timeout_negative_in_config_is_refused(pouchd, box):
    """A negative StopTimeout (which once made stop wait for ever) is refused at create, as
    PouchContainer does, and nothing is created."""
    n = box.name()
    status, resp = pouchd.api("POST", f"/containers/create?name={n}",
                              {"Image": "busybox", "Cmd": ["sleep", "300"], "StopTimeout": -1})
    assert status == 400 and "StopTimeout" in resp["message"], resp
    assert pouchd.cli("inspect", n).returncode != 0


def test_deeply_nested_json_400(pouchd):
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/containers/create", "/volumes/create", "/networks/create"):
        status, resp = pouchd.api("POST", path, b'{"Labels": ' + deep + b"}")
        assert status == 400, (path, status)
        assert "nested" in resp["message"]
    status, resp = pouchd.api("GET", "/containers/json?filters=" + "%5B" * 5000)
    assert status == 400
    # brackets inside strings are not nesting
    status, resp = pouchd.api("POST", "/volumes/create", {"Labels": {"x": "[" * 500}})
    assert status == 201, resp
    pouchd.cli("volume", "rm", resp["Name"])


def test_request_body_capped(pouchd):
    big = b'{"Labels": {"x": "' + b"a" * (9 << 20) + b'"}}'
    status, resp = pouchd.api("POST", "/volumes/create", big)
    assert status == 413, status
    assert "MB" in resp["message"]


def test_start_error_is_readable(pouchd, box):
    n = box.name()
    r = pouchd.cli("run", "--name", n, "-w", "/bin/sh", "busybox", "true")  # cwd is a file: runc fails
    assert r.returncode != 0
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    for raw in ("OCI runtime", "failed to create shim task", "runc create failed", ": unknown", "containerd:"):
        assert raw not in err, err
    assert "/bin/sh" in err and "not a directory" in err, err
    assert "OCI runtime" not in inspect(pouchd, n)["State"]["Error"]


def _tar(*members: tuple[str, str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, arg in members:
            ti = tarfile.TarInfo(name)
            if kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
                t.addfile(ti)
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, arg
                t.addfile(ti)
            else:
                data = arg.encode()
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_failed_archive_put_leaves_nothing(pouchd, box):
    n = box.run_d("busybox", "sleep", "300")
    body = _tar(("fz-link", "sym", "/etc"), ("fz-file", "file", "hello"), ("fz-hard", "hard", "no/such/member"))
    status, resp = pouchd.api("PUT", f"/containers/{n}/archive?path=/tmp", body)
    assert 400 <= status < 500, (status, resp)
    assert "KeyError" not in resp["message"] and "Traceback" not in resp["message"], resp
    ls = pouchd.cli("exec", n, "ls", "-a", "/tmp").stdout.split()
    assert not [x for x in ls if x.startswith("fz-")], ls
    # a good archive still lands
    status, resp = pouchd.api("PUT", f"/containers/{n}/archive?path=/tmp", _tar(("fz-ok", "file", "x")))
    assert status == 200, resp
    assert "fz-ok" in pouchd.cli("exec", n, "ls", "/tmp").stdout


def test_run_rm_whose_start_failed_leaves_nothing(pouchd, box):
    n = box.name()
    r = pouchd.cli("run", "--rm", "--name", n, "busybox", "/no/such/binary")
    assert r.returncode in (126, 127), r
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = pouchd.cli("inspect", n)
    assert r.returncode == 1 and "not found" in r.stderr.lower() or "no such" in r.stderr.lower(), r.stderr
    assert n not in pouchd.cli("ps", "-a").stdout

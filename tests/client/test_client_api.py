"""SDK tests against the fake pouchd: URLs, params, bodies, typed errors, keep-alive."""
import pytest

from pouch.client import APIClient, APIError, Conflict, ConnectionFailed, InvalidArgument, NotFound
from pouch.client.transport import parse_host


def test_version_uses_api_prefix_and_returns_json(fake, client):
    fake.route("GET", "/version", reply={"Version": "1.0.0", "APIVersion": "1.41"})
    assert client.version()["Version"] == "1.0.0"
    assert fake.requests[0].method == "GET"


def test_requests_share_one_keepalive_connection(fake, client):
    fake.route("GET", "/_ping", reply=b"OK")
    fake.route("GET", "/containers/json", reply=[])
    assert client.ping() == "OK"
    assert client.containers(all=True) == []
    fake.route("POST", r"/containers/(\w+)/stop", reply=None, status=204)
    client.stop("abc", timeout=3)
    assert fake.connections == 1
    assert fake.requests[1].q("all") == "1"
    assert fake.requests[2].q("t") == "3"


def test_only_set_params_are_sent_and_filters_are_json(fake, client):
    fake.route("GET", "/containers/json", reply=[{"Id": "x"}])
    client.containers(filters={"status": ["running"]})
    q = fake.requests[0].query
    assert "all" not in q and "limit" not in q
    assert q["filters"] == ['{"status": ["running"]}']


@pytest.mark.parametrize("status,exc", [(400, InvalidArgument), (404, NotFound), (409, Conflict),
                                        (500, APIError)])
def test_error_status_maps_to_typed_error_with_server_message(fake, client, status, exc):
    fake.route("POST", r"/containers/(\w+)/start", reply={"message": "boom %d" % status}, status=status)
    with pytest.raises(exc) as info:
        client.start("c1")
    assert str(info.value) == "boom %d" % status
    assert info.value.status == status
    # the connection is still usable after an error
    fake.route("GET", "/_ping", reply=b"OK")
    assert client.ping() == "OK"


def test_create_sends_json_body_and_name(fake, client):
    fake.route("POST", "/containers/create", reply={"Id": "f" * 64, "Warnings": []}, status=201)
    out = client.create_container({"Image": "busybox", "Cmd": ["true"]}, name="web")
    req = fake.requests[0]
    assert out["Id"] == "f" * 64
    assert req.q("name") == "web"
    assert req.json == {"Image": "busybox", "Cmd": ["true"]}
    assert req.headers["Content-Type"] == "application/json"


def test_image_names_keep_slashes_like_docker_clients(fake, client):
    fake.route("GET", r"/images/(.+)/json", lambda req, name: (200, {"name": name}))
    assert client.inspect_image("docker.io/library/busybox:latest")["name"] == \
        "docker.io/library/busybox:latest"


def test_unreachable_daemon_raises_connection_failed(tmp_path):
    c = APIClient("unix://%s/none.sock" % tmp_path)
    with pytest.raises(ConnectionFailed) as info:
        c.version()
    assert "none.sock" in str(info.value)


def test_parse_host_variants():
    assert parse_host(None) == ("unix", "/var/run/pouchd.sock")
    assert parse_host("unix:///run/p.sock") == ("unix", "/run/p.sock")
    assert parse_host("tcp://127.0.0.1:4243") == ("tcp", ("127.0.0.1", 4243))
    with pytest.raises(InvalidArgument):
        parse_host("ftp://x")


def test_tcp_transport(tmp_path):
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        assert APIClient("tcp://127.0.0.1:%d" % srv.server_port).ping() == "OK"
    finally:
        srv.shutdown()
        srv.server_close()

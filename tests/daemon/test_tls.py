"""pouchd's TCP listener behind TLS (--tlsverify --tlscacert --tlscert --tlskey), as dockerd's:
clients with a certificate from the CA get in (pouch CLI, docker CLI, exec over a hijacked TLS
stream); clients without one, with one from another CA or an expired one, and plain HTTP, do not,
and the refusal is the TLS handshake's (the server's alert), not an HTTP answer."""
from __future__ import annotations

import os
import socket
import ssl
import subprocess

import pytest

from tests.conftest import _missing_for_daemon
from tests.daemon.test_moby_compat import DOCKER
from tests.fixtures.daemon import POUCH, PouchDaemon
from tests.fixtures.images import busybox_archive
from tests.fixtures.registry import free_port

pytestmark = pytest.mark.integration


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_expired_client(d) -> None:
    """A client certificate from the daemon's CA whose validity ended in 2020."""
    (d / "index.txt").write_text("")
    (d / "newcerts").mkdir(exist_ok=True)
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca=ca_default\n[ca_default]\ndatabase=index.txt\nnew_certs_dir=newcerts\n"
        "serial=ca.srl\ndefault_md=sha256\npolicy=any\n[any]\ncommonName=supplied\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=expired", "-keyout", "expired-key.pem",
            "-out", "expired.csr", cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-in", "expired.csr", "-out", "expired.pem", "-notext",
            "-cert", "ca.pem", "-keyfile", "ca-key.pem", "-startdate", "20200101000000Z",
            "-enddate", "20200102000000Z", "-extfile", "client.ext", cwd=d)


def make_other_ca_client(d) -> None:
    """A CA of its own (same subject name as the daemon's) and a client certificate from it."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pouch-test-ca",
            "-keyout", "other-ca-key.pem", "-out", "other-ca.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=client", "-keyout", "other-key.pem",
            "-out", "other.csr", cwd=d)
    openssl("x509", "-req", "-in", "other.csr", "-CA", "other-ca.pem", "-CAkey", "other-ca-key.pem",
            "-CAcreateserial", "-days", "2", "-extfile", "client.ext", "-out", "other.pem", cwd=d)


def make_pki(d) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pouch-test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}", "-keyout", f"{who}-key.pem",
                "-out", f"{who}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-days", "2", "-extfile", f"{who}.ext", "-out", f"{who}.pem", cwd=d)


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory):
    why = _missing_for_daemon()
    if why:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("pki")
    make_pki(d)
    make_expired_client(d)
    make_other_ca_client(d)
    port = free_port()
    daemon = PouchDaemon(extra_args=["-l", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(d / "ca.pem"),
                                     "--tlscert", str(d / "server.pem"), "--tlskey", str(d / "server-key.pem")])
    daemon.start()
    assert daemon.cli("load", "-i", busybox_archive()).returncode == 0
    yield daemon, port, d
    daemon.cleanup()


def tls_cli(d, port, *args, cert=True):
    flags = ["--tlsverify", "--tlscacert", str(d / "ca.pem")]
    if cert:
        flags += ["--tlscert", str(d / "client.pem"), "--tlskey", str(d / "client-key.pem")]
    env = {k: v for k, v in os.environ.items() if k not in ("POUCH_HOST", "DOCKER_HOST")}
    return subprocess.run([POUCH, "-H", f"tcp://127.0.0.1:{port}", *flags, *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_client_with_a_certificate_gets_in(tls_daemon):
    daemon, port, d = tls_daemon
    r = tls_cli(d, port, "run", "--rm", "busybox", "echo", "over tls")
    assert r.returncode == 0 and r.stdout == "over tls\n", r.stderr
    assert tls_cli(d, port, "run", "-d", "--name", "tls-exec", "busybox", "sleep", "60").returncode == 0
    r = tls_cli(d, port, "exec", "tls-exec", "sh", "-c", "echo in; echo err >&2")
    assert (r.returncode, r.stdout, r.stderr) == (0, "in\n", "err\n")
    assert tls_cli(d, port, "rm", "-f", "tls-exec").returncode == 0


def test_docker_cli_with_tls(tls_daemon):
    daemon, port, d = tls_daemon
    if not os.path.exists(DOCKER):
        pytest.skip("the docker CLI is not installed (/usr/local/bin/docker)")
    env = dict(os.environ, DOCKER_CONFIG=str(d / "docker-config"))
    env.pop("DOCKER_HOST", None)
    r = subprocess.run([DOCKER, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(d / "ca.pem"),
                        "--tlscert", str(d / "client.pem"), "--tlskey", str(d / "client-key.pem"),
                        "run", "--rm", "busybox", "echo", "docker over tls"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0 and r.stdout == "docker over tls\n", r.stderr


def test_clients_without_a_certificate_or_tls_are_refused(tls_daemon):
    daemon, port, d = tls_daemon
    r = tls_cli(d, port, "ps", cert=False)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # plain HTTP
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            reply = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            reply = b""
    # no HTTP answer at all: the TLS layer drops it (or answers with a TLS alert record)
    assert reply == b"" or reply[:1] == b"\x15", reply
    assert daemon.cli("ps").returncode == 0  # the unix socket is unaffected


def test_bad_tls_flags_stop_pouchd_with_one_line(tmp_path):
    from tests.fixtures.daemon import POUCHD
    r = subprocess.run([POUCHD, "--home-dir", str(tmp_path / "h"), "--exec-root-dir", str(tmp_path / "r"),
                        "-l", f"unix://{tmp_path}/s.sock", "--tlsverify", "--tlscert", "/nonexistent.pem",
                        "--tlskey", "/nonexistent-key.pem"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "--tlsverify needs --tlscacert" in r.stderr, r.stderr


def tls_ping(d, port, cert: str | None, key: str | None) -> bytes:
    """GET /_ping over TLS with the given client certificate (the server's is verified against
    the daemon's CA); returns the reply, or raises the ssl error the server's alert caused."""
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(d / cert), str(d / key))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(200)


def test_the_ca_s_own_client_certificate_gets_a_ping(tls_daemon):
    daemon, port, d = tls_daemon
    assert tls_ping(d, port, "client.pem", "client-key.pem").startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("cert,key,alert", [
    ("other.pem", "other-key.pem", "UNKNOWN_CA"),        # signed by another CA of the same name
    ("expired.pem", "expired-key.pem", "CERTIFICATE_EXPIRED"),
    (None, None, "CERTIFICATE_REQUIRED"),                # none at all
])
def test_a_bad_client_certificate_fails_the_tls_handshake(tls_daemon, cert, key, alert):
    """The server's TLS alert says why; no HTTP byte comes back."""
    daemon, port, d = tls_daemon
    with pytest.raises(ssl.SSLError) as e:
        tls_ping(d, port, cert, key)
    assert alert in str(e.value), e.value
    if cert:  # and the pouch CLI with that certificate says it in one line
        env = {k: v for k, v in os.environ.items() if k not in ("POUCH_HOST", "DOCKER_HOST")}
        r = subprocess.run([POUCH, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(d / "ca.pem"),
                            "--tlscert", str(d / cert), "--tlskey", str(d / key), "ps"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert alert.lower().replace("_", " ") in r.stderr.lower(), r.stderr


def test_the_cli_refuses_a_server_certificate_from_another_ca(tls_daemon):
    daemon, port, d = tls_daemon
    env = {k: v for k, v in os.environ.items() if k not in ("POUCH_HOST", "DOCKER_HOST")}
    r = subprocess.run([POUCH, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(d / "other-ca.pem"),
                        "--tlscert", str(d / "client.pem"), "--tlskey", str(d / "client-key.pem"), "ps"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "certificate verify failed" in r.stderr, r.stderr

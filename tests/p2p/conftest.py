"""P2P fixtures: a cluster CA with certificates for each component, and processes to serve them."""
from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path


def make_ca(d: Path, names: list[str], cn: str = "pouch-p2p-test-ca", ips: tuple[str, ...] = ()) -> dict[str, tuple[str, str]]:
    """A CA in ``d`` and a cert+key per name (serverAuth and clientAuth, SAN 127.0.0.1, ``ips``
    and *)."""
    d.mkdir(parents=True, exist_ok=True)
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2", "-subj", f"/CN={cn}")
    ext = d / "ext"
    sans = ",".join(["DNS:*", "DNS:localhost", "IP:127.0.0.1", *(f"IP:{ip}" for ip in ips)])
    ext.write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth,clientAuth\n")
    out = {}
    for n in names:
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(d / f"{n}.key"), "-out", str(d / f"{n}.csr"), "-subj", f"/CN={n}")
        run("x509", "-req", "-in", str(d / f"{n}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-out", str(d / f"{n}.pem"), "-days", "2", "-extfile", str(ext))
        out[n] = (str(d / f"{n}.pem"), str(d / f"{n}.key"))
    return out


def tls_args(ca: Path, cert: tuple[str, str]) -> list[str]:
    return ["--p2p-ca", str(ca), "--p2p-cert", cert[0], "--p2p-key", cert[1]]


def client_ctx(ca: Path, cert: tuple[str, str] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def request(base: str, ctx: ssl.SSLContext, method: str, raw_path: str, body: dict | None = None,
            headers: dict | None = None, timeout: float = 60) -> tuple[int, bytes, dict]:
    """One HTTPS request with the path sent exactly as given (no re-quoting)."""
    host, port = base.removeprefix("https://").rsplit(":", 1)
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, raw_path, body=data, headers={**({"Content-Type": "application/json"} if data else {}),
                                                         **(headers or {})})
        r = c.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        c.close()


def serve(module: str, *args: str, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *args], stdout=log, stderr=subprocess.STDOUT)


def wait_up(base: str, ctx: ssl.SSLContext, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{base}: server exited with {proc.returncode}")
        try:
            request(base, ctx, "GET", "/stats", timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{base} did not come up")

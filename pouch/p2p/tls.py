"""Mutual TLS for the P2P components: one cluster CA signs every peer's, supernode's and pouchd's
certificate; servers demand a client certificate signed by it, clients check the server's."""
from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterTLS:
    ca: str    # PEM file of the cluster CA
    cert: str  # this component's certificate (serverAuth and clientAuth)
    key: str

    def server(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def ca_pem(self) -> str:
        with open(self.ca) as f:
            return f.read()


def from_args(ca: str | None, cert: str | None, key: str | None) -> ClusterTLS | None:
    """The three flags together, or none of them (ValueError for a partial set)."""
    given = [x for x in (ca, cert, key) if x]
    if not given:
        return None
    if len(given) != 3:
        raise ValueError("--p2p-ca, --p2p-cert and --p2p-key go together")
    return ClusterTLS(ca, cert, key)


def add_args(ap) -> None:
    ap.add_argument("--p2p-ca", help="cluster CA (PEM): every peer must present a certificate it signed")
    ap.add_argument("--p2p-cert", help="this component's certificate (PEM), signed by the cluster CA")
    ap.add_argument("--p2p-key", help="its private key (PEM)")
    ap.add_argument("--insecure-no-tls", action="store_true",
                    help="listen without TLS and accept anyone (an operator's explicit choice)")

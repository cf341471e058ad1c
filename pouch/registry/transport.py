"""HTTP to registries: endpoints (origin, mirrors, http/https), TLS policy, auth retries, errors.

One aiohttp session serves every registry; aiohttp pools connections per (host, port, TLS
context), so each registry effectively gets its own pool. Plain http and unverified TLS are
used only for hosts listed as insecure. ``with_fallback`` tries mirrors in order before the
origin and remembers a dead mirror for a while.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp

from .auth import Authenticator
from .config import DOCKER_HUB_ENDPOINT, RegistryConfig
from .credentials import Credentials, CredentialStore, request_credentials
from .errors import InsecureRegistryRefused, NotFound, RegistryError, RegistryUnavailable, Unauthorized
from .reference import DEFAULT_DOMAIN

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    """One base URL to talk the v2 API to, for one registry host."""

    base_url: str          # scheme://host[:port] (a mirror may carry a path prefix)
    host: str              # host[:port] used for credentials and errors
    mirror: bool = False
    insecure: bool = False  # listed as insecure: TLS not verified
    ns: str = ""            # for a mirror: the registry it stands in for (sent as ?ns=, containerd's way)


class Transport:
    """Sends v2 requests with auth, TLS policy and typed errors."""

    def __init__(self, config: RegistryConfig, credentials: CredentialStore,
                 session: aiohttp.ClientSession) -> None:
        self.config = config
        self.credentials = credentials
        self.session = session
        self.auth = Authenticator(session, self._creds, self.ssl_for)
        self._origin: dict[str, Endpoint] = {}
        self._origin_lock = asyncio.Lock()
        self._down_until: dict[str, float] = {}
        self._ssl_cache: dict[str, Any] = {}

    def _creds(self, host: str) -> Credentials | None:
        """The current request's credentials for ``host`` (X-Registry-Auth), else the stored ones."""
        given, creds = request_credentials(host)
        return creds if given else self.credentials.get(host)

    def credential_identity(self, host: str) -> str:
        creds = self._creds(host)
        return creds.identity() if creds else ""

    def ssl_for(self, url: str) -> Any:
        """aiohttp ``ssl=`` value for a URL: False if insecure, a context with certs.d CA, or True."""
        parts = urlsplit(url)
        hostport = parts.netloc.rsplit("@", 1)[-1]
        if parts.scheme != "https":
            return True
        if self.config.p2p_tls and self.config.p2p_peer and url.startswith(self.config.p2p_peer.rstrip("/") + "/"):
            if "p2p" not in self._ssl_cache:
                ca, cert, key = self.config.p2p_tls
                ctx = ssl.create_default_context(cafile=ca)
                ctx.load_cert_chain(cert, key)
                self._ssl_cache["p2p"] = ctx
            return self._ssl_cache["p2p"]
        if self.config.is_insecure(hostport):
            return False
        if hostport not in self._ssl_cache:
            certs = self.config.host_certs(hostport)
            ctx: Any = True
            if certs is not None:
                ctx = ssl.create_default_context()
                for ca in sorted(certs.glob("*.crt")):
                    ctx.load_verify_locations(cafile=str(ca))
                for cert in sorted(certs.glob("*.cert")):
                    ctx.load_cert_chain(str(cert), str(cert.with_suffix(".key")))
            self._ssl_cache[hostport] = ctx
        return self._ssl_cache[hostport]

    # -- endpoints ---------------------------------------------------------------------------

    async def origin(self, domain: str) -> Endpoint:
        """The registry's own endpoint; for insecure hosts, https (unverified) if it answers, else http."""
        if domain == DEFAULT_DOMAIN:
            return Endpoint(DOCKER_HUB_ENDPOINT, DEFAULT_DOMAIN)
        if not self.config.is_insecure(domain):
            return Endpoint(f"https://{domain}", domain)
        async with self._origin_lock:
            if domain not in self._origin:
                self._origin[domain] = await self._probe_scheme(domain)
            return self._origin[domain]

    async def _probe_scheme(self, domain: str) -> Endpoint:
        https = Endpoint(f"https://{domain}", domain, insecure=True)
        try:
            async with self.session.get(f"{https.base_url}/v2/", ssl=False,
                                        timeout=aiohttp.ClientTimeout(total=10)):
                return https
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.debug("insecure registry %s: https failed (%s), using http", domain, exc)
            return Endpoint(f"http://{domain}", domain, insecure=True)

    async def pull_endpoints(self, domain: str) -> list[Endpoint]:
        """Mirrors first (when they apply to this registry), then the origin."""
        out = []
        if self.config.p2p_peer:
            out.append(Endpoint(self.config.p2p_peer.rstrip("/"), urlsplit(self.config.p2p_peer).netloc,
                                mirror=True, insecure=not self.config.p2p_tls, ns=domain))
        if domain == DEFAULT_DOMAIN or self.config.mirror_all_registries:
            for url in self.config.mirrors:
                hostport = urlsplit(url).netloc
                out.append(Endpoint(url, hostport, mirror=True, insecure=self.config.is_insecure(hostport)))
        out.append(await self.origin(domain))
        return out

    async def with_fallback(self, endpoints: list[Endpoint], fn: Callable[[Endpoint], Awaitable[T]]) -> T:
        """``fn(endpoint)`` on each endpoint in order until one succeeds; mirror errors fall through."""
        now = time.monotonic()
        usable = [ep for ep in endpoints if not ep.mirror or self._down_until.get(ep.base_url, 0) <= now]
        for ep in usable:
            try:
                return await fn(ep)
            except (RegistryError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if not ep.mirror:
                    raise
                if isinstance(exc, (RegistryUnavailable, aiohttp.ClientError, asyncio.TimeoutError)):
                    self._down_until[ep.base_url] = time.monotonic() + self.config.mirror_down_seconds
                log.info("mirror %s failed (%s); trying the next endpoint", ep.base_url, exc)
        raise RegistryUnavailable("no endpoint to try")  # origin is always last, so unreachable

    # -- requests ----------------------------------------------------------------------------

    def url(self, ep: Endpoint, path: str) -> str:
        """Absolute URLs (a Location header made absolute) as they are; else under the base URL."""
        if path.startswith(("http://", "https://")):
            return path
        if ep.ns:
            return ep.base_url + path + ("&" if "?" in path else "?") + "ns=" + quote(ep.ns, safe=":")
        return ep.base_url + path

    async def request(self, ep: Endpoint, method: str, path: str, scope: str, *,
                      headers: dict | None = None, data: Any = None, params: Any = None,
                      timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """Send one request, answering one auth challenge. The caller must release the response.

        Raises Unauthorized (401 after auth), InsecureRegistryRefused (untrusted TLS on a host
        not listed insecure), RegistryUnavailable (cannot connect).
        """
        url = self.url(ep, path)
        retryable = data is None or isinstance(data, (bytes, str))
        for attempt in range(2):
            hdrs = dict(headers or {})
            auth = self.auth.cached_header(ep.base_url, ep.host, scope)
            if auth:
                hdrs["Authorization"] = auth
            try:
                resp = await self.session.request(method, url, headers=hdrs, data=data, params=params,
                                                  ssl=self.ssl_for(url), timeout=timeout,
                                                  proxy=self.config.proxy or None)
            except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
                if ep.insecure:
                    raise RegistryUnavailable(f"{ep.host}: TLS error: {exc}") from None
                raise InsecureRegistryRefused(
                    f"{ep.host}: TLS handshake failed ({exc}); a plain-http or self-signed registry must be "
                    f"listed in insecure registries, or its CA put in the certs directory") from None
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                raise RegistryUnavailable(f"{ep.host}: cannot connect: {exc or type(exc).__name__}") from None
            if resp.status != 401:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.release()
            if attempt == 1 or not retryable or not challenge:
                self.auth.forget(ep.base_url)
                raise Unauthorized(f"{ep.host}: unauthorized: authentication required or credentials refused")
            await self.auth.answer(ep.base_url, ep.host, scope, challenge)
        raise AssertionError("unreachable")


async def raise_for_status(resp: aiohttp.ClientResponse, what: str) -> None:
    """Raise the typed error for a non-2xx registry answer, with the registry's message."""
    if resp.status < 300:
        return
    detail = ""
    try:
        body = await resp.json(content_type=None)
        errors = body.get("errors") or []
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    except Exception:  # noqa: BLE001 - a body that is not JSON just has no detail
        pass
    finally:
        resp.release()
    msg = f"{what}: HTTP {resp.status}" + (f" ({detail})" if detail else "")
    if resp.status == 404:
        raise NotFound(msg)
    if resp.status in (401, 403):
        raise Unauthorized(msg)
    if resp.status >= 500 or resp.status == 429:
        raise RegistryUnavailable(msg)
    raise RegistryError(msg)


# errors after which a blob download resumes with Range (a dropped or refused connection, a 5xx)
RETRYABLE = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError,
             RegistryUnavailable)

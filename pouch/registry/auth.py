"""Registry authentication: ``WWW-Authenticate`` challenges, Bearer tokens, Basic auth.

On a 401 the transport hands the challenge here. Bearer: ask the realm for a token for the
scope (with Basic credentials if we have some) and cache it per (realm, service, scope, host,
credentials) until it expires: a request never gets a token fetched with other credentials. Basic: send the stored credentials. aiohttp has no challenge parser, hence the
small one below (RFC 7235 auth-params, quoted strings with escapes).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp

from .credentials import Credentials
from .errors import RegistryUnavailable, Unauthorized

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "bearer" or "basic"
    params: dict = field(default_factory=dict, hash=False)


def parse_challenges(header: str) -> list[Challenge]:
    """``Bearer realm="...",service="..."`` -> [Challenge("bearer", {...})]; several schemes allowed."""
    out: list[Challenge] = []
    pos, header = 0, header or ""
    scheme_re = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)")
    while pos < len(header):
        m = scheme_re.match(header, pos)
        if not m:
            break
        scheme, pos, params = m.group(1).lower(), m.end(), {}
        while pos < len(header):
            p = _PARAM_RE.match(header, pos)
            if not p:
                break
            value = p.group(2) if p.group(2) is not None else p.group(3)
            params[p.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            pos = p.end()
        out.append(Challenge(scheme, params))
    return out


class Authenticator:
    """Turns challenges into Authorization headers; caches them per endpoint and scope."""

    def __init__(self, session: aiohttp.ClientSession,
                 credentials: Callable[[str], Credentials | None],
                 ssl_for: Callable[[str], Any]) -> None:
        self._session = session
        self._credentials = credentials
        self._ssl_for = ssl_for
        self._challenges: dict[str, Challenge] = {}
        self._cache: dict[tuple, tuple[str, float]] = {}

    def cached_header(self, base_url: str, host: str, scope: str) -> str | None:
        """An Authorization header to send up front, if an earlier challenge told us how."""
        challenge = self._challenges.get(base_url)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self._credentials(host)
            return aiohttp.BasicAuth(creds.username, creds.password).encode() if creds else None
        creds = self._credentials(host)
        key = (challenge.params.get("realm"), challenge.params.get("service"), scope, host,
               creds.identity() if creds else "")
        hit = self._cache.get(key)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        return None

    async def answer(self, base_url: str, host: str, scope: str, www_authenticate: str) -> str:
        """Authorization header answering a 401 challenge; raises Unauthorized if we cannot."""
        challenges = {c.scheme: c for c in parse_challenges(www_authenticate)}
        creds = self._credentials(host)
        if "bearer" in challenges:
            challenge = challenges["bearer"]
            self._challenges[base_url] = challenge
            return await self._token(challenge, host, scope, creds)
        if "basic" in challenges:
            self._challenges[base_url] = challenges["basic"]
            if creds is None:
                raise Unauthorized(f"{host}: authentication required; run pouch login {host}")
            return aiohttp.BasicAuth(creds.username, creds.password).encode()
        raise Unauthorized(f"{host}: unsupported authentication challenge {www_authenticate!r}")

    def forget(self, base_url: str) -> None:
        """Drop what we cached for an endpoint (after credentials were refused)."""
        self._challenges.pop(base_url, None)

    async def _token(self, challenge: Challenge, host: str, scope: str, creds: Credentials | None) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise Unauthorized(f"{host}: Bearer challenge without realm")
        params = [("scope", s) for s in scope.split(" ") if s]
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        auth = aiohttp.BasicAuth(creds.username, creds.password) if creds else None
        try:
            async with self._session.get(realm, params=params, auth=auth, ssl=self._ssl_for(realm)) as resp:
                if resp.status in (401, 403):
                    raise Unauthorized(f"{host}: token server {realm} refused the credentials (HTTP {resp.status})")
                if resp.status != 200:
                    raise RegistryUnavailable(f"{host}: token server {realm} answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise RegistryUnavailable(f"{host}: token server {realm} unreachable: {exc}") from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise Unauthorized(f"{host}: token server {realm} returned no token")
        header = f"Bearer {token}"
        ttl = max(int(body.get("expires_in") or 60) - 10, 5)
        key = (realm, challenge.params.get("service"), scope, host, creds.identity() if creds else "")
        self._cache[key] = (header, time.monotonic() + ttl)
        return header

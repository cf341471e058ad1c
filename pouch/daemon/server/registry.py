"""Registry routes: pull (``POST /images/create?fromImage=``), push, login (``POST /auth``),
logout, search, and image prune.

Pull and push answer with Docker's stream of JSON progress messages; an error before the first
message is an ordinary HTTP error, one after it is an ``{"errorDetail", "error"}`` message.
``X-Registry-Auth`` (base64 JSON, as the Docker CLI sends it) overrides the daemon's stored
credentials for the duration of one request.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from typing import Awaitable, Callable

from aiohttp import web

from pouch.errtypes import InvalidArgument
from pouch.registry import Credentials, RegistryClient
from pouch.registry.credentials import request_auth
from pouch.registry import errors as reg_errors
from pouch.registry.reference import DEFAULT_DOMAIN

from ..mgr.image import ImageManager
from ..mgr.jsonprogress import error_message, message
from ..mgr.prune import prune_images
from ..mgr.pull import Puller, to_reference
from ..mgr.push import Pusher
from .app import json_response, qfilters, qint, read_json
from .validate import field

log = logging.getLogger(__name__)
Emit = Callable[[dict], None]


def registry_host(server: str) -> str:
    """A login server address as users type it -> the registry host (``docker.io`` by default)."""
    s = (server or "").strip()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    s = s.split("/", 1)[0]
    if s in ("", "index.docker.io", "registry-1.docker.io", "docker.io"):
        return DEFAULT_DOMAIN
    return s


def decode_auth_header(value: str | None) -> Credentials | None:
    """``X-Registry-Auth``: base64url JSON {username, password} or {auth: base64(user:pass)}."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        obj = json.loads(raw or b"{}")
    except (binascii.Error, ValueError):
        raise InvalidArgument("X-Registry-Auth header is not base64-encoded JSON") from None
    if not isinstance(obj, dict):
        return None
    user, password = obj.get("username") or "", obj.get("password") or ""
    if not user and obj.get("auth"):
        try:
            user, _, password = base64.b64decode(obj["auth"]).decode().partition(":")
        except (binascii.Error, ValueError):
            raise InvalidArgument("X-Registry-Auth: auth is not base64(user:password)") from None
    return Credentials(user, password) if user else None


def request_credentials(request: web.Request, host: str):
    """The request's X-Registry-Auth as the credentials for ``host`` in this request's work only
    (as moby passes an auth config down with each pull/push), never set for the whole host."""
    return request_auth(host, decode_auth_header(request.headers.get("X-Registry-Auth")))


async def stream_messages(request: web.Request, run: Callable[[Emit], Awaitable[None]]) -> web.StreamResponse:
    """Run ``run(emit)`` while streaming what it emits as JSON lines; errors become messages.

    A client that goes away cancels ``run`` (downloads shared with other pulls continue).
    """
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    pending: list[dict] = []
    wake = asyncio.Event()

    def emit(msg: dict) -> None:
        pending.append(msg)
        wake.set()

    task = asyncio.ensure_future(run(emit))
    try:
        while True:
            waiter = asyncio.ensure_future(wake.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            wake.clear()
            if pending:
                batch, pending[:] = pending[:], []
                await resp.write("".join(json.dumps(m) + "\r\n" for m in batch).encode())
            if task.done() and not pending:
                break
        exc = task.exception()
        if exc is not None:
            if getattr(exc, "http_status", None) is None:
                log.error("stream failed: %r", exc, exc_info=exc)
            await resp.write((json.dumps(error_message(str(exc) or type(exc).__name__)) + "\r\n").encode())
        await resp.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    return resp


def pull_handler(puller: Puller, registry: RegistryClient):
    """The ``fromImage`` branch of ``POST /images/create``."""
    async def pull(request: web.Request):
        q = request.query
        ref = to_reference(q.get("fromImage", ""), q.get("tag") or None)
        platform = q.get("platform") or None
        with request_credentials(request, ref.domain):
            resolved = await puller.resolve(ref, platform)

            async def run(emit: Emit) -> None:
                emit(message(f"Pulling from {ref.path}", ref.tag or ref.digest))
                res = await puller.pull(ref, platform, emit, resolved)
                emit(message(f"Digest: {res.digest}"))
                what = "Downloaded newer image for" if res.updated else "Image is up to date for"
                emit(message(f"Status: {what} {ref.familiar()}"))

            return await stream_messages(request, run)
    return pull


def routes(pusher: Pusher, registry: RegistryClient, images: ImageManager, users_of) -> list[tuple[str, str, object]]:
    async def push(request: web.Request):
        ref = pusher.reference(request.match_info["name"], request.query.get("tag") or None)
        try:
            images.get(ref.familiar())
        except Exception:
            raise reg_errors.NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}") from None
        with request_credentials(request, ref.domain):
            async def run(emit: Emit) -> None:
                await pusher.push(ref, emit)
            return await stream_messages(request, run)

    async def auth(request: web.Request):
        body = await read_json(request)
        user, password = field(body, "username", str, ""), field(body, "password", str, "")
        if not user or not password:
            raise InvalidArgument("username and password are required")
        host = registry_host(field(body, "serveraddress", str, ""))
        status = await registry.login(host, user, password)
        return json_response({"Status": status, "IdentityToken": ""})

    async def logout(request: web.Request):
        host = registry_host(request.query.get("serveraddress") or "")
        try:
            registry.logout(host)
        except reg_errors.NotFound:
            pass
        return json_response({})

    async def search(request: web.Request):
        term = request.query.get("term") or ""
        if not term:
            raise InvalidArgument("search term must not be empty")
        limit = qint(request, "limit", 25)
        if not 1 <= limit <= 100:
            raise InvalidArgument("limit must be between 1 and 100")
        host, _, rest = term.partition("/")
        if rest and ("." in host or ":" in host or host == "localhost"):
            results = await registry.search(host, rest, limit)
            for r in results:
                if not r.get("name", "").startswith(host + "/"):
                    r["name"] = f"{host}/{r.get('name', '')}"
        else:
            results = await registry.search(DEFAULT_DOMAIN, term, limit)
        return json_response(results)

    async def prune(request: web.Request):
        filters = qfilters(request)
        dangling = filters.get("dangling", ["true"])[-1].lower() not in ("false", "0")
        return json_response(await prune_images(images, users_of, dangling_only=dangling))

    return [
        ("POST", "/auth", auth),
        ("POST", "/logout", logout),
        ("GET", "/images/search", search),
        ("POST", "/images/prune", prune),
        ("POST", "/images/{name:.+}/push", push),
    ]

"""The HTTP server: the route table, API-version prefixes, and the one error mapping.

Every route is served both bare (``/containers/json``) and under a version
prefix (``/v1.41/containers/json``); the version middleware picks the face
(pouch.daemon.server.face: bare and /v1.24 are Pouch's, /v1.25+ Moby's).  Errors raised anywhere below are typed
(anything with an ``http_status``) and turn into ``{"message": ...}`` with that
status here, and only here.
"""
from __future__ import annotations

import json
import logging
import re

from aiohttp import web

from pouch.api.version import API_VERSION, MIN_API_VERSION

from .face import FACE, choose, face

log = logging.getLogger(__name__)
_VERSION_RE = re.compile(r"^/v(\d+\.\d+)(/.*)$")


def json_response(obj, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(obj), status=status, content_type="application/json")


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as e:  # the one place errors become HTTP
        status = getattr(e, "http_status", None)
        if status is None:
            log.exception("internal error on %s %s", request.method, request.path)
            status = 500
        if status == 304:
            return web.Response(status=304)
        msg = getattr(e, "message", None) or str(e) or e.__class__.__name__
        msg = face(request).error_text(e, msg.strip().splitlines()[0] if msg.strip() else msg)
        return json_response({"message": msg}, status)


@web.middleware
async def version_middleware(request: web.Request, handler):
    v = request.match_info.get("api_version")
    if v and _version_tuple(v) < _version_tuple(MIN_API_VERSION):
        return json_response({"message": f"client version {v} is too old. Minimum supported API "
                                         f"version is {MIN_API_VERSION}, please upgrade your client "
                                         f"to a newer version"}, 400)
    if v and _version_tuple(v) > _version_tuple(API_VERSION):
        return json_response({"message": f"client version {v} is too new. Maximum supported API "
                                         f"version is {API_VERSION}"}, 400)
    request[FACE] = choose(v)
    resp = await handler(request)
    if isinstance(resp, web.StreamResponse) and not resp.prepared:
        # the newest version, whatever the face: the docker CLI negotiates from /_ping's header
        resp.headers["Api-Version"] = API_VERSION
        resp.headers["Server"] = "pouchd"
    return resp


async def not_found(request: web.Request) -> web.Response:
    return json_response({"message": f"page not found: {request.method} {request.path}"}, 404)


def build_app(route_groups: list[list[tuple[str, str, object]]], metrics=None) -> web.Application:
    """The app; ``metrics`` (pouch.daemon.metrics.Metrics) counts and times Pouch's actions."""
    app = web.Application(middlewares=[version_middleware, errors_middleware],
                          client_max_size=1 << 40, handler_args={"max_field_size": 65536})
    for group in route_groups:
        for method, path, handler in group:
            if metrics is not None:
                handler = metrics.instrument(method, path, handler)
            app.router.add_route(method, path, handler)
            app.router.add_route(method, r"/v{api_version:\d+\.\d+}" + path, handler)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


# -- small request helpers shared by the route modules ---------------------------
def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    return v.lower() not in ("", "0", "false", "no")


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    from pouch.errtypes import InvalidArgument
    v = request.query.get(name)
    if v in (None, ""):
        return default
    try:
        return int(v)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {v!r}") from None


def qfilters(request: web.Request) -> dict[str, list[str]]:
    from pouch.errtypes import InvalidArgument
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        f = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid filters: {raw}") from None
    out: dict[str, list[str]] = {}
    for k, v in (f or {}).items():
        if isinstance(v, dict):  # {"status": {"running": true}}
            out[k] = [x for x, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            out[k] = [str(v)]
    return out


async def read_json(request: web.Request, required: bool = True) -> dict:
    from pouch.errtypes import InvalidArgument
    raw = await request.read()
    if not raw:
        if required:
            raise InvalidArgument("request body is empty: a JSON object is required")
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    return body

"""The OpenAPI document (pouch/api/openapi.json): valid, complete, and in step with the server.

Unit tests check the document's structure and compare it with the route tables of the real
server modules (built with stub managers), so a route added or removed without the document
fails here. The integration test sends real requests to a real pouchd and checks that the
JSON answers only use documented fields.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pouch.api import spec
from pouch.api.version import API_VERSION, MIN_API_VERSION

DOC = spec.load()
OPS = spec.operations(DOC)
PLANNED = {k for k, op in OPS.items() if op.get("x-pouch-planned")}


# -- helpers ---------------------------------------------------------------------------------
def resolve(node):
    """Follow a local ``$ref`` chain; return the target."""
    while isinstance(node, dict) and "$ref" in node:
        target = DOC
        assert node["$ref"].startswith("#/"), node["$ref"]
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def walk(node, where="#"):
    if isinstance(node, dict):
        yield where, node
        for k, v in node.items():
            yield from walk(v, f"{where}/{k}")
    elif isinstance(node, list):
        for n, v in enumerate(node):
            yield from walk(v, f"{where}/{n}")


def route_modules():
    import pouch.daemon.server as pkg
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if callable(getattr(mod, "routes", None)):
            yield mod


def route_groups():
    """Every module's route table, built with ``None`` for each manager it takes."""
    groups = []
    for mod in route_modules():
        n = sum(1 for p in inspect.signature(mod.routes).parameters.values() if p.default is p.empty)
        groups.append(mod.routes(*([None] * n)))
    return groups


def served_routes() -> set[tuple[str, str]]:
    """(METHOD, path) pairs the real app registers, bare form, path params as ``{name}``."""
    from pouch.daemon.server.app import build_app
    app = build_app(route_groups())
    bare, versioned = set(), set()
    for r in app.router.routes():
        if r.method == "*":  # the catch-all 404
            continue
        path = r.resource.canonical
        if path.startswith("/v{api_version}/"):
            versioned.add((r.method, path[len("/v{api_version}"):]))
        else:
            bare.add((r.method, path))
    assert bare == versioned, "every route must also be served under /vX.Y"
    return bare


def conforms(value, schema, where="$") -> list[str]:
    """Problems with ``value`` against an OpenAPI 3.0 schema: types, enums, undocumented keys."""
    schema = resolve(schema)
    if value is None:
        return [] if schema.get("nullable") or not schema else [f"{where}: null but not nullable"]
    if "allOf" in schema:
        merged = {"type": "object", "properties": {}}
        for part in schema["allOf"]:
            part = resolve(part)
            merged["properties"].update(part.get("properties", {}))
        merged["nullable"] = schema.get("nullable", False)
        schema = merged
    t = schema.get("type")
    checks = {"string": str, "boolean": bool, "array": list, "object": dict,
              "integer": int, "number": (int, float)}
    if t and not isinstance(value, checks[t]) or (t in ("integer", "number") and isinstance(value, bool)):
        return [f"{where}: {type(value).__name__} is not {t}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    problems = []
    if isinstance(value, list) and "items" in schema:
        for n, v in enumerate(value):
            problems += conforms(v, schema["items"], f"{where}[{n}]")
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if props is not None and k in props:
                problems += conforms(v, props[k], f"{where}.{k}")
            elif isinstance(extra, dict):
                problems += conforms(v, extra, f"{where}.{k}")
            elif props is not None and extra is not True:
                problems.append(f"{where}.{k}: undocumented field")
    return problems


def response_schema(method: str, path: str, status: int, media: str = "application/json"):
    op = OPS[(method, path)]
    resp = resolve(op["responses"].get(str(status)))
    assert resp is not None, f"{method} {path} does not document status {status}"
    return resolve(resp.get("content", {}).get(media, {}).get("schema"))


# -- structure -------------------------------------------------------------------------------
def test_document_passes_the_openapi_validator():
    validator = pytest.importorskip("openapi_spec_validator",
                                    reason="openapi-spec-validator is not installed (pip install it)")
    validator.validate(DOC)


def test_document_is_openapi_3_0_with_pouchd_versions():
    assert DOC["openapi"].startswith("3.0.")
    assert DOC["info"]["version"] == API_VERSION
    assert DOC["info"]["x-min-api-version"] == MIN_API_VERSION
    assert OPS, "no operations documented"


def test_every_ref_resolves():
    refs = [(where, n["$ref"]) for where, n in walk(DOC) if "$ref" in n]
    assert refs
    for where, ref in refs:
        try:
            target = resolve({"$ref": ref})
        except KeyError:
            pytest.fail(f"{where}: $ref {ref} does not resolve")
        assert isinstance(target, dict), f"{where}: {ref}"


def test_every_component_is_used():
    used = {n["$ref"] for _, n in walk(DOC) if "$ref" in n}
    for kind, items in DOC["components"].items():
        for name in items:
            assert f"#/components/{kind}/{name}" in used, f"components/{kind}/{name} is never referenced"


def test_every_operation_has_id_responses_and_declared_path_params():
    ids = [op["operationId"] for op in OPS.values()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for (method, path), op in OPS.items():
        assert op.get("responses"), f"{method} {path} has no responses"
        for code, resp in op["responses"].items():
            assert resolve(resp).get("description"), f"{method} {path} {code}: no description"
        assert any(c.startswith("2") or c == "101" for c in op["responses"]), f"{method} {path}: no success"
        declared = {resolve(p)["name"] for p in op.get("parameters", []) if resolve(p)["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), f"{method} {path}: path params {declared}"


def test_error_responses_use_the_error_schema():
    for (method, path), op in OPS.items():
        assert "500" in op["responses"], f"{method} {path} does not document 500"
        for code, resp in op["responses"].items():
            if code.startswith(("4", "5")):
                schema = resolve(resp)["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, f"{method} {path} {code}"
    err = DOC["components"]["schemas"]["ErrorResponse"]
    assert err["required"] == ["message"] and err["properties"]["message"]["type"] == "string"


@pytest.mark.parametrize("path", ["/containers/{id}/attach", "/exec/{id}/start"])
def test_hijacked_endpoints_document_upgrade_and_stream_types(path):
    op = OPS[("POST", path)]
    assert op.get("x-hijacked") is True
    for code in ("101", "200"):
        content = resolve(op["responses"][code])["content"]
        assert set(content) == {"application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream"}
    headers = {resolve(p)["name"] for p in op["parameters"] if resolve(p)["in"] == "header"}
    assert "Upgrade" in headers


def test_pouch_extension_fields_are_documented():
    schemas = DOC["components"]["schemas"]
    cfg = schemas["ContainerConfig"]["properties"]
    for field in ("DiskQuota", "QuotaID", "Rich", "RichMode", "InitScript", "SpecAnnotation"):
        assert cfg[field].get("x-pouch-extension"), field
    host = {}
    for part in schemas["HostConfig"]["allOf"]:
        host.update(resolve(part).get("properties", {}))
    assert host["EnableLxcfs"]["type"] == "boolean"
    assert "Memory" in host and "CpuShares" in host  # resources merged in
    create = {}
    for part in schemas["ContainerCreateRequest"]["allOf"]:
        create.update(resolve(part).get("properties", {}))
    assert {"HostConfig", "NetworkingConfig", "Image", "Cmd"} <= set(create)


# -- document <-> server ---------------------------------------------------------------------
def test_every_served_route_is_documented():
    served = served_routes()
    assert len(served) > 40, served
    missing = sorted(served - set(OPS))
    assert not missing, f"served but not in openapi.json: {missing}"


def test_every_documented_route_is_served():
    served = served_routes()
    unserved = sorted(set(OPS) - served - PLANNED)
    assert not unserved, f"documented but not served: {unserved}"


def test_planned_routes_lose_their_mark_once_served():
    now_served = sorted(PLANNED & served_routes())
    assert not now_served, f"served now: remove x-pouch-planned from {now_served}"


async def test_real_app_errors_match_the_documented_error_schema():
    """The served app answers bad versions, unknown paths and typed errors as documented."""
    from pouch.daemon.server import containers
    from pouch.daemon.server.app import build_app
    from pouch.errtypes import NotFound

    class NoContainers:
        def get(self, ref):
            raise NotFound(f"No such container: {ref}")

    app = build_app([containers.routes(NoContainers(), None)])
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/v1.41/containers/nope/json")
        assert r.status == 404
        schema = response_schema("GET", "/containers/{id}/json", 404)
        body = await r.json()
        assert body["message"] == "No such container: nope"
        assert conforms(body, schema) == []
        r = await client.get("/v1.23/containers/nope/json")
        assert r.status == 400
        assert conforms(await r.json(), response_schema("GET", "/containers/{id}/json", 400)) == []


def test_conformance_checker_catches_undocumented_and_mistyped_fields():
    schema = {"$ref": "#/components/schemas/ContainerCreateResponse"}
    assert conforms({"Id": "abc", "Warnings": []}, schema) == []
    assert conforms({"Id": "abc", "Warnings": [], "Bogus": 1}, schema) == ["$.Bogus: undocumented field"]
    assert conforms({"Id": 5, "Warnings": []}, schema) == ["$.Id: int is not string"]


# -- integration: a real pouchd answers only documented fields --------------------------------
@pytest.mark.integration
def test_real_pouchd_answers_match_the_document(pouchd):
    problems: list[str] = []

    def check(method, path, doc_path, status, body=None):
        # the document describes the Moby face; bare paths answer Pouch's (tests/api/test_contract_pouch.py)
        path = path if path.startswith("/v1.") else "/v1.41" + path
        got, payload = pouchd.api(method, path, body)
        assert got == status, (method, path, got, payload)
        schema = response_schema(method, doc_path, status)
        if schema is not None:
            problems.extend(f"{method} {path}: {p}" for p in conforms(payload, schema))
        return payload

    check("GET", "/v1.41/version", "/version", 200)
    check("GET", "/info", "/info", 200)
    check("GET", "/images/json", "/images/json", 200)
    check("GET", "/images/busybox:latest/json", "/images/{name}/json", 200)
    check("GET", "/images/busybox:latest/history", "/images/{name}/history", 200)
    check("GET", "/networks", "/networks", 200)
    check("GET", "/networks/bridge", "/networks/{id}", 200)
    vol = check("POST", "/volumes/create", "/volumes/create", 201, {"Name": "openapi-test-vol"})
    try:
        check("GET", "/volumes", "/volumes", 200)
        check("GET", f"/volumes/{vol['Name']}", "/volumes/{name}", 200)
    finally:
        check("DELETE", f"/volumes/{vol['Name']}", "/volumes/{name}", 204)

    created = check("POST", "/containers/create?name=openapi-test", "/containers/create", 201,
                    {"Image": "busybox:latest", "Cmd": ["sleep", "30"], "Labels": {"t": "openapi"},
                     "HostConfig": {"Memory": 64 << 20}})
    cid = created["Id"]
    try:
        check("GET", f"/containers/{cid}/json", "/containers/{id}/json", 200)
        check("POST", f"/containers/{cid}/start", "/containers/{id}/start", 204)
        check("POST", f"/containers/{cid}/start", "/containers/{id}/start", 304)
        check("GET", "/containers/json", "/containers/json", 200)
        check("GET", f"/containers/{cid}/json", "/containers/{id}/json", 200)
        check("GET", f"/containers/{cid}/top", "/containers/{id}/top", 200)
        check("GET", f"/containers/{cid}/stats?stream=false", "/containers/{id}/stats", 200)
        check("POST", f"/containers/{cid}/update", "/containers/{id}/update", 200, {"Memory": 96 << 20})
        ex = check("POST", f"/containers/{cid}/exec", "/containers/{id}/exec", 201, {"Cmd": ["true"]})
        check("GET", f"/exec/{ex['Id']}/json", "/exec/{id}/json", 200)
        check("POST", f"/containers/{cid}/pause", "/containers/{id}/pause", 204)
        check("POST", f"/containers/{cid}/pause", "/containers/{id}/pause", 409)
        check("POST", f"/containers/{cid}/unpause", "/containers/{id}/unpause", 204)
        check("DELETE", f"/containers/{cid}", "/containers/{id}", 409)
    finally:
        check("DELETE", f"/containers/{cid}?force=1", "/containers/{id}", 204)
    check("GET", f"/containers/{cid}/json", "/containers/{id}/json", 404)
    assert problems == [], "\n".join(problems)

"""Image routes (the image bridge): load/save/import, list, inspect, tag, remove."""
from __future__ import annotations

import asyncio
import json
import os

from aiohttp import web

from pouch.errtypes import InvalidArgument

from ..mgr.image import ImageManager, config_changes, created_seconds, image_summary
from .app import json_response, qbool, qfilters
from .face import face


def routes(images: ImageManager, users_of, pull=None) -> list[tuple[str, str, object]]:
    """``pull``: the registry's handler for ``POST /images/create?fromImage=`` (None: no registry)."""
    async def _spool(request: web.Request) -> str:
        path = images.tmpfile()
        with open(path, "wb") as f:
            async for chunk in request.content.iter_chunked(1 << 20):
                await asyncio.to_thread(f.write, chunk)
        return path

    async def load(request: web.Request):
        path = await _spool(request)
        try:
            lines = await images.load_archive(path, name=request.query.get("name") or None)
        finally:
            os.unlink(path)
        body = "".join(json.dumps({"stream": l + "\n"}) + "\n" for l in lines)
        return web.Response(text=body, content_type="application/json")

    async def create(request: web.Request):
        src = request.query.get("fromSrc")
        if src is None:
            if request.query.get("fromImage") and pull is not None:
                return await pull(request)
            raise InvalidArgument("pulling from a registry is not available: use load or import")
        if src != "-":
            raise InvalidArgument("import: only '-' (the request body) is supported as fromSrc")
        repo = request.query.get("repo") or ""
        tag = request.query.get("tag") or ""
        ref = f"{repo}:{tag}" if repo and tag else repo or None
        changes = config_changes(request.query.getall("changes", []))
        path = await _spool(request)
        try:
            img = await images.import_rootfs(path, ref, changes, request.query.get("message", ""))
        finally:
            os.unlink(path)
        return web.Response(text=json.dumps({"status": img.id}) + "\n", content_type="application/json")

    async def list_(request: web.Request):
        filters = qfilters(request)
        keep, refs = _image_filter(images, filters), filters.get("reference")
        out = []
        view = face(request).image_summary
        for img in images.list():
            if keep(img):
                entry = image_summary(img, len(users_of(img.id)))
                if refs:  # as Moby: only the tags the reference filter matched
                    entry["RepoTags"] = [t for t in entry["RepoTags"] if any(_ref_match(t, r) for r in refs)]
                    entry["RepoDigests"] = [d for d in entry["RepoDigests"] or []
                                            if any(_ref_match(d.split("@")[0], r) for r in refs)]
                out.append(view(entry, img))
        out.sort(key=lambda i: i["Created"], reverse=True)
        return json_response(out)

    async def inspect(request: web.Request):
        return json_response(images.inspect(images.get(request.match_info["name"])))

    async def history(request: web.Request):
        img = images.get(request.match_info["name"])
        hist = img.config.get("history") or []
        out = []
        for h in reversed(hist):
            out.append({"Id": "<missing>", "Created": created_seconds(h.get("created")),
                        "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": 0,
                        "Comment": h.get("comment", "")})
        if out:
            out[0]["Id"] = img.id
            out[0]["Tags"] = img.repo_tags
        return json_response(out)

    async def tag(request: web.Request):
        repo = request.query.get("repo")
        if not repo:
            raise InvalidArgument("repository name is required (repo)")
        t = request.query.get("tag") or "latest"
        await images.tag(request.match_info["name"], f"{repo}:{t}", qbool(request, "force"))
        return web.Response(status=201)

    async def remove(request: web.Request):
        name = request.match_info["name"]
        img = images.get(name)
        out = await images.remove(name, qbool(request, "force"), users_of(img.id))
        status, body = face(request).image_removed(out)
        return web.Response(status=status) if body is None else json_response(body, status)

    async def save(request: web.Request):
        names = request.query.getall("names", []) + request.query.getall("name", [])  # Moby's, Pouch's
        if "name" in request.match_info:
            names = [request.match_info["name"]]
        if not names:
            raise InvalidArgument("no image names given")
        for n in names:
            images.get(n)  # 404 before any byte is sent
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
        await resp.prepare(request)
        loop = asyncio.get_running_loop()

        class Out:
            def write(self, data):
                asyncio.run_coroutine_threadsafe(resp.write(bytes(data)), loop).result()
                return len(data)

            def flush(self):
                pass

        await images.save(names, Out())
        await resp.write_eof()
        return resp

    return [
        ("POST", "/images/load", load),
        ("POST", "/images/create", create),
        ("GET", "/images/json", list_),
        ("GET", "/images/get", save),
        ("GET", "/images/save", save),
        ("GET", "/images/{name:.+}/get", save),
        ("GET", "/images/{name:.+}/json", inspect),
        ("GET", "/images/{name:.+}/history", history),
        ("POST", "/images/{name:.+}/tag", tag),
        ("DELETE", "/images/{name:.+}", remove),
    ]


_IMAGE_FILTERS = ("reference", "dangling", "before", "since", "label")


def _image_filter(images: ImageManager, filters: dict[str, list[str]]):
    """Docker's image list filters (reference, dangling, before, since, label) as one predicate;
    an unknown key or a bad value is a 400 before anything is listed."""
    for key in filters:
        if key not in _IMAGE_FILTERS:
            raise InvalidArgument(f"invalid filter '{key}'")
    dangling = None
    for v in filters.get("dangling", []):
        if v.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={v}'")
        dangling = v.lower() in ("true", "1")
    bounds = {k: [created_seconds(images.get(ref).config.get("created")) for ref in filters.get(k, [])]
              for k in ("before", "since")}
    refs, labels = filters.get("reference"), filters.get("label", [])

    def keep(img) -> bool:
        if refs and not any(_ref_match(t, r) for t in img.repo_tags for r in refs):
            return False
        if dangling is not None and dangling != (not img.repo_tags):
            return False
        created = created_seconds(img.config.get("created"))
        if any(created >= b for b in bounds["before"]) or any(created <= b for b in bounds["since"]):
            return False
        have = (img.config.get("config") or {}).get("Labels") or {}
        for cond in labels:
            k, eq, v = cond.partition("=")
            if k not in have or (eq and have[k] != v):
                return False
        return True
    return keep


def _ref_match(tag: str, pattern: str) -> bool:
    import fnmatch
    if ":" not in pattern.rsplit("/", 1)[-1]:
        return fnmatch.fnmatch(tag.rsplit(":", 1)[0], pattern)
    return fnmatch.fnmatch(tag, pattern)

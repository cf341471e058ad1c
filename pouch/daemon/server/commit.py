"""``POST /commit``: make an image from a container's changes (see mgr/commit.py)."""
from __future__ import annotations

import json

from aiohttp import web

from ..mgr.commit import commit
from ..mgr.image import ImageManager, config_changes
from .app import json_response


def routes(images: ImageManager, containers) -> list[tuple[str, str, object]]:
    async def commit_(request: web.Request):
        q = request.query
        c = containers.get(q.get("container", ""))
        repo, tag = q.get("repo") or "", q.get("tag") or ""
        ref = f"{repo}:{tag}" if repo and tag else repo or None
        changes = q.getall("changes", [])
        if len(changes) == 1 and changes[0].startswith("["):  # a JSON list from pouch's client
            changes = json.loads(changes[0])
        pause = q.get("pause", "1").lower() not in ("0", "false", "no")
        img = await commit(images, c, ref, q.get("comment", ""), q.get("author", ""), config_changes(changes),
                           pauser=containers if pause else None)
        return json_response({"Id": img.id}, 201)

    return [("POST", "/commit", commit_)]

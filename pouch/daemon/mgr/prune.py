"""Image prune: remove dangling images (no tag), or every image no container uses."""
from __future__ import annotations

import logging
from typing import Callable

from pouch.errtypes import PouchError

from .image import ImageManager

log = logging.getLogger(__name__)


async def prune_images(images: ImageManager, users_of: Callable[[str], list[str]],
                       dangling_only: bool = True) -> dict:
    """Docker's ``POST /images/prune`` answer: {"ImagesDeleted": [...], "SpaceReclaimed": n}."""
    deleted: list[dict] = []
    reclaimed = 0
    for img in list(images.list()):
        if dangling_only and img.repo_tags:
            continue
        if users_of(img.id):
            continue
        try:
            out = await images.remove(img.id, force=True, users=[], collect=False)
        except PouchError as e:  # removed meanwhile, or refused: keep pruning the others
            log.info("prune: skipping %s: %s", img.id, e)
            continue
        deleted += out
        reclaimed += img.size
    if deleted:
        await images.ctrd.collect_garbage()  # once for all of them
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

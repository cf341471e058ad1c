"""``GET /system/df`` (``docker system df``): the disk used by images, containers and volumes.

Image and layer sizes are containerd's usage of each committed snapshot (the unpacked layer);
a layer counted in several images is their shared size.  A container's ``SizeRw`` is the usage
of its writable snapshot; a volume's size is the bytes under its mount point.
"""
from __future__ import annotations

import asyncio
import os

from pouch.errtypes import NotFound

from .image import chain_ids, image_summary


async def disk_usage(ctrd, images, containers, volumes) -> dict:
    layer_size: dict[str, int] = {}

    async def size_of(key: str) -> int:
        if key not in layer_size:
            try:
                layer_size[key] = (await ctrd.snapshot_usage(key))[0]
            except NotFound:
                layer_size[key] = 0
        return layer_size[key]

    chains = {img.id: chain_ids(img.diff_ids) for img in images.list()}
    uses: dict[str, int] = {}
    for cs in chains.values():
        for c in cs:
            uses[c] = uses.get(c, 0) + 1
    out_images, image_size = [], {}
    for img in images.list():
        sizes = [await size_of(c) for c in chains[img.id]]
        image_size[img.id] = sum(sizes)
        entry = image_summary(img, len(containers.users_of_image(img.id)))
        entry.update(Size=image_size[img.id], VirtualSize=image_size[img.id],
                     SharedSize=sum(s for c, s in zip(chains[img.id], sizes) if uses[c] > 1))
        out_images.append(entry)
    out_containers = []
    for c in containers.list():
        rw = await size_of(c.id)
        entry = c.summary()
        entry.update(SizeRw=rw, SizeRootFs=rw + image_size.get(c.meta.get("Image", ""), 0))
        out_containers.append(entry)
    out_volumes = []
    for v in volumes.list():
        entry = volumes.inspect(v.name)
        entry["UsageData"] = {"Size": await asyncio.to_thread(_du, v.mountpoint), "RefCount": len(v.refs)}
        out_volumes.append(entry)
    return {"LayersSize": sum(layer_size[c] for c in uses), "Images": out_images,
            "Containers": out_containers, "Volumes": out_volumes, "BuildCache": []}


def _du(path: str) -> int:
    """Bytes allocated under ``path`` (hard links counted once), not following symlinks."""
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total

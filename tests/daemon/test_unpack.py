"""LayerUnpacker against a real containerd: a chain applied ahead of order (each layer before its
parent is committed, as a parallel pull does) is byte-for-byte and attribute-for-attribute the
chain applied in order, including whiteouts, opaque directories, directories a layer implies
without listing (which take the parent's owner, mode, times and xattrs), and implied parents
reached through a symlink of a lower layer."""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
import time

import pytest

from pouch.daemon.containerd import Containerd
from pouch.daemon.ctrd.client import Ctrd
from pouch.daemon.mgr.image import chain_ids
from pouch.daemon.mgr.unpack import LayerUnpacker
from tests.fixtures.daemon import lazy_umount_under

pytestmark = pytest.mark.integration
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
T0 = 1_600_000_000


def _tar(entries: list[dict]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.mtime = e.get("mtime", T0)
            info.mode = e.get("mode", 0o644)
            info.uid = info.gid = e.get("uid", 0)
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.get("xattrs", {}).items()}
            data = e.get("data")
            if e.get("dir"):
                info.type = tarfile.DIRTYPE
            elif "link" in e:
                info.type, info.linkname = tarfile.SYMTYPE, e["link"]
            elif "hardlink" in e:
                info.type, info.linkname = tarfile.LNKTYPE, e["hardlink"]
            else:
                data = data or b""
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


LAYERS = [
    [  # base: a sticky, user-owned dir with an xattr; files to remove and to hide
        {"name": "data/", "dir": True, "mode": 0o1777, "uid": 1000, "xattrs": {"user.origin": "base"}},
        {"name": "data/base.txt", "data": b"base\n"},
        {"name": "etc/", "dir": True}, {"name": "etc/removed", "data": b"gone\n"},
        {"name": "opq/", "dir": True, "mode": 0o750, "uid": 7}, {"name": "opq/old", "data": b"old\n"},
        {"name": "link", "link": "data"},
    ],
    [  # data/ and data/sub/ implied; a whiteout; an opaque dir; a hard link inside the layer
        {"name": "data/sub/f", "data": b"f\n"},
        {"name": "etc/.wh.removed"},
        {"name": "opq/.wh..wh..opq"}, {"name": "opq/new", "data": b"new\n"},
        {"name": "fresh/", "dir": True, "mode": 0o700, "uid": 5},
        {"name": "fresh/a", "data": b"a\n"}, {"name": "fresh/b", "hardlink": "fresh/a"},
    ],
    [  # implied through the lower layer's symlink "link" -> data; nested implied dirs
        {"name": "link/z/deep/file", "data": b"z\n"},
        {"name": "opq/newer", "data": b"newer\n"},
    ],
]


def _snapshot_tree(root: str) -> dict:
    """Everything apply could have set, per path of an upper dir."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files, ""] if dirpath != root else [*dirs, *files]:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            rec = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid, "rdev": st.st_rdev,
                   "xattrs": {a: os.getxattr(p, a, follow_symlinks=False)
                              for a in sorted(os.listxattr(p, follow_symlinks=False))}}
            if stat.S_ISREG(st.st_mode):
                rec["data"] = open(p, "rb").read()
                rec["nlink"] = st.st_nlink
            elif stat.S_ISLNK(st.st_mode):
                rec["link"] = os.readlink(p)
            if st.st_mtime < T0 + 10:  # set from a header (not the time of the apply: differs per run)
                rec["mtime"] = st.st_mtime_ns
            out[os.path.relpath(p, root)] = rec
    return out


async def _uppers(ctrd: Ctrd, chain: str) -> list[str]:
    key = f"view-{time.monotonic_ns()}"
    mounts = await ctrd.snapshot_prepare(key, chain)  # active on top: lowerdir lists the chain
    opts = dict(o.split("=", 1) for o in mounts[0].options if "=" in o)
    await ctrd.snapshot_remove(key)
    return opts["lowerdir"].split(":")[::-1]  # bottom first


@pytest.fixture(scope="module")
def containerd():
    if not shutil.which("containerd"):
        pytest.skip("containerd is not installed")
    base = tempfile.mkdtemp(prefix="pouch-unpack-")
    loop = asyncio.new_event_loop()
    c = Containerd(os.path.join(base, "home"), os.path.join(base, "run"))
    loop.run_until_complete(c.start())
    yield loop, c.address
    loop.run_until_complete(c.stop())
    loop.close()
    lazy_umount_under(base)
    shutil.rmtree(base, ignore_errors=True)


def test_ahead_of_order_equals_in_order(containerd):
    loop, address = containerd
    blobs = [_tar(entries) for entries in LAYERS]
    raws = [gzip.decompress(b) for b in blobs]
    diff_ids = ["sha256:" + hashlib.sha256(r).hexdigest() for r in raws]
    descs = [("sha256:" + hashlib.sha256(b).hexdigest(), len(b), GZIP_LAYER) for b in blobs]
    chains = chain_ids(diff_ids)

    async def unpack(namespace: str, ahead: bool) -> list[dict]:
        ctrd = Ctrd(address, namespace=namespace, snapshotter="overlayfs")
        try:
            async with ctrd.lease():
                for (digest, size, _), blob in zip(descs, blobs):
                    await ctrd.write_content(digest, size, [blob])
                unpacker = LayerUnpacker(ctrd)
                if not ahead:
                    await unpacker.unpack_all(descs, diff_ids, chains)
                else:
                    # every layer but the first applied before any parent exists
                    early = [await unpacker.apply_ahead(d, i) for d, i in zip(descs[1:], diff_ids[1:])]
                    assert all(early), "overlayfs must allow applying ahead"
                    await unpacker.unpack_layer(descs[0], diff_ids[0], chains[0], "")
                    for a, chain, parent in zip(early, chains[1:], chains):
                        assert await unpacker.attach(a, chain, parent)
                uppers = await _uppers(ctrd, chains[-1])
            return [_snapshot_tree(u) for u in uppers]
        finally:
            await ctrd.close()

    in_order = loop.run_until_complete(unpack("in-order", ahead=False))
    ahead = loop.run_until_complete(unpack("ahead", ahead=True))
    assert len(in_order) == 3
    # what the in-order chain shows, so the comparison is not of two empty trees
    l2, l3 = in_order[1], in_order[2]
    assert l2["data"]["mode"] & 0o7777 == 0o1777 and l2["data"]["uid"] == 1000
    assert l2["data"]["xattrs"] == {"user.origin": b"base"}
    assert l2["data/sub"]["mode"] & 0o7777 == 0o755
    assert stat.S_ISCHR(l2["etc/removed"]["mode"]) and l2["etc/removed"]["rdev"] == 0
    assert l2["opq"]["xattrs"].get("trusted.overlay.opaque") == b"y"
    assert l2["fresh/a"]["nlink"] == 2
    assert l3["link"]["mode"] & 0o7777 == 0o1777 and l3["link"]["uid"] == 1000
    for layer, (a, b) in enumerate(zip(in_order, ahead)):
        diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
        assert not diff, f"layer {layer + 1}: in order vs ahead: {diff}"

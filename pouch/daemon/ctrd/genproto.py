"""Generate containerd's gRPC stubs from the .proto files Debian ships.

Source: golang-github-containerd-containerd-dev (under /usr/share/gocode/src).
The protos are staged under the Python package path ``pouch/daemon/ctrd/pb``
with their imports rewritten, so the generated modules import each other as
``pouch.daemon.ctrd.pb...``.  Nothing generated is committed: ``make proto``
(and scripts/setup.sh) run this at build time.

    python -m pouch.daemon.ctrd.genproto [--src DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

GOSRC = "/usr/share/gocode/src"
CTRD = "github.com/containerd/containerd"
PKG = "pouch/daemon/ctrd/pb"

# (source path relative to GOSRC, staged path relative to PKG)
EXTRA = [
    ("github.com/gogo/protobuf/gogoproto/gogo.proto", "gogoproto/gogo.proto"),
    ("github.com/gogo/googleapis/google/rpc/status.proto", "google/rpc/status.proto"),
    (CTRD + "/protobuf/plugin/fieldpath.proto", "protobuf/plugin/fieldpath.proto"),
]
TREES = ["api/services", "api/types", "api/events", "runtime/v2/runc/options"]


def _rewrite(text: str) -> str:
    text = text.replace('import weak "', 'import "')
    text = text.replace('"gogoproto/gogo.proto"', f'"{PKG}/gogoproto/gogo.proto"')
    text = text.replace('"google/rpc/status.proto"', f'"{PKG}/google/rpc/status.proto"')
    text = text.replace(f'"{CTRD}/', f'"{PKG}/')
    return text


def stage(src: str, dst: str) -> list[str]:
    files = []
    for rel_src, rel_dst in EXTRA:
        files.append(_copy(os.path.join(src, rel_src), os.path.join(dst, PKG, rel_dst)))
    for tree in TREES:
        root = os.path.join(src, CTRD, tree)
        for dirpath, _, names in os.walk(root):
            for name in names:
                if not name.endswith(".proto"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), os.path.join(src, CTRD))
                files.append(_copy(os.path.join(dirpath, name), os.path.join(dst, PKG, rel)))
    return files


def _copy(path: str, out: str) -> str:
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(path) as f:
        text = _rewrite(f.read())
    with open(out, "w") as f:
        f.write(text)
    return out


def generate(src: str, outdir: str) -> None:
    from grpc_tools import protoc
    import grpc_tools

    std_include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    with tempfile.TemporaryDirectory() as stage_dir:
        files = stage(src, stage_dir)
        rel = [os.path.relpath(f, stage_dir) for f in files]
        args = ["protoc", f"-I{stage_dir}", f"-I{std_include}",
                f"--python_out={outdir}", f"--grpc_python_out={outdir}", *rel]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
    # make every generated directory a package
    for dirpath, _, names in os.walk(os.path.join(outdir, PKG)):
        init = os.path.join(dirpath, "__init__.py")
        if not os.path.exists(init):
            open(init, "w").close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=GOSRC)
    ap.add_argument("--out", default=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))))
    a = ap.parse_args()
    if not os.path.isdir(os.path.join(a.src, CTRD, "api")):
        sys.exit(f"containerd protos not found under {a.src}: install golang-github-containerd-containerd-dev")
    target = os.path.join(a.out, PKG)
    shutil.rmtree(target, ignore_errors=True)
    generate(a.src, a.out)
    print(f"generated containerd stubs in {target}")


if __name__ == "__main__":
    main()

"""Generate the CRI runtime.v1 gRPC stubs from pouch/cri/api.proto.

The stubs land in ``pouch/cri/pb`` (gitignored) as ``api_pb2`` and
``api_pb2_grpc``; ``make proto`` and scripts/setup.sh run this at build time,
beside the containerd stubs.

    python -m pouch.cri.genproto
"""
from __future__ import annotations

import os
import shutil
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PKG = "pouch/cri/pb"


def generate(out: str = ROOT) -> str:
    from grpc_tools import protoc

    target = os.path.join(out, PKG)
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    with tempfile.TemporaryDirectory() as stage:
        os.makedirs(os.path.join(stage, PKG))
        shutil.copy(os.path.join(HERE, "api.proto"), os.path.join(stage, PKG, "api.proto"))
        args = ["protoc", f"-I{stage}", f"--python_out={out}", f"--grpc_python_out={out}",
                f"{PKG}/api.proto"]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed on pouch/cri/api.proto")
    open(os.path.join(target, "__init__.py"), "w").close()
    return target


def main() -> None:
    print(f"generated CRI stubs in {generate()}")


if __name__ == "__main__":
    main()

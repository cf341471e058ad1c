"""The one place that maps containerd's gRPC status codes to pouch errors."""
from __future__ import annotations

import grpc

import re

from pouch import errtypes

# The layers containerd, the shim and runc wrap around why a task could not be created or started.
_RUNTIME_WRAPPERS = re.compile(
    r"^(?:containerd: |failed to create shim task: |failed to start shim: |OCI runtime (?:create|start|exec) "
    r"failed: |runc (?:create|start|exec) failed: |unable to start container process: |error during container "
    r"init: |failed to create task for container: )+")

_MAP = {
    grpc.StatusCode.NOT_FOUND: errtypes.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errtypes.AlreadyExists,
    grpc.StatusCode.INVALID_ARGUMENT: errtypes.InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: errtypes.Conflict,
    grpc.StatusCode.UNAVAILABLE: errtypes.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errtypes.Timeout,
    grpc.StatusCode.UNIMPLEMENTED: errtypes.NotImplementedYet,
}


def translate(err: grpc.aio.AioRpcError) -> errtypes.PouchError:
    cls = _MAP.get(err.code(), errtypes.SystemError_)
    return cls(f"containerd: {err.details()}")


def runtime_message(msg: str) -> str:
    """A task create/start error as a user reads it: containerd's, the shim's and runc's wrapping
    prefixes and the trailing gRPC ``: unknown`` removed (``exec: "nosuch": executable file not
    found in $PATH``)."""
    core = _RUNTIME_WRAPPERS.sub("", msg.strip())
    core = re.sub(r"(?::\s*unknown)+$", "", core).strip()
    return core or msg

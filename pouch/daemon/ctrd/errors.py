"""The one place that maps containerd's gRPC status codes to pouch errors."""
from __future__ import annotations

import grpc

from pouch import errtypes

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

"""pouchd's CRI face: the gRPC server (grpcio asyncio) for RuntimeService and ImageService.

Handlers raise pouch's typed errors; this module maps them to gRPC status codes
in one place (400 InvalidArgument, 401 Unauthenticated, 404 NotFound, AlreadyExists, 409
FailedPrecondition, 501 Unimplemented, 504 DeadlineExceeded, else Internal),
with the error's one-line message.
"""
from __future__ import annotations

import functools
import logging
import os

import grpc

from pouch.errtypes import AlreadyExists

from .pb import api_pb2_grpc

log = logging.getLogger(__name__)

CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
         409: grpc.StatusCode.FAILED_PRECONDITION, 501: grpc.StatusCode.UNIMPLEMENTED,
         503: grpc.StatusCode.UNAVAILABLE, 504: grpc.StatusCode.DEADLINE_EXCEEDED,
         403: grpc.StatusCode.PERMISSION_DENIED, 401: grpc.StatusCode.UNAUTHENTICATED}


def status_of(e: Exception) -> tuple[grpc.StatusCode, str]:
    msg = getattr(e, "message", None) or str(e)
    if isinstance(e, AlreadyExists):
        return grpc.StatusCode.ALREADY_EXISTS, msg
    status = getattr(e, "http_status", None)
    return CODES.get(status, grpc.StatusCode.INTERNAL), msg


def _wrap(fn):
    @functools.wraps(fn)
    async def handler(request, context):
        try:
            return await fn(request, context)
        except Exception as e:
            if isinstance(e, grpc.aio.AbortError):
                raise
            code, msg = status_of(e)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("CRI %s failed", fn.__name__)
            await context.abort(code, msg)
    return handler


class _Servicer:
    """Exposes ``impl``'s handlers for the service's methods; the rest answer Unimplemented."""

    def __init__(self, impl, base) -> None:
        for name in dir(base):
            if name.startswith("_"):
                continue
            fn = getattr(impl, name, None)
            if fn is not None:
                setattr(self, name, _wrap(fn))
            else:
                setattr(self, name, _wrap(_unimplemented(name)))


def _unimplemented(name: str):
    async def call(request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented by pouchd")
    call.__name__ = name
    return call


class CriServer:
    def __init__(self, address: str, runtime, images) -> None:
        if not address.startswith("unix://"):
            raise ValueError(f"CRI listens on unix:///path, not {address!r}")
        self.path = address[len("unix://"):]
        self.server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 << 20),
                                               ("grpc.max_send_message_length", 16 << 20)])
        api_pb2_grpc.add_RuntimeServiceServicer_to_server(
            _Servicer(runtime, api_pb2_grpc.RuntimeServiceServicer), self.server)
        api_pb2_grpc.add_ImageServiceServicer_to_server(
            _Servicer(images, api_pb2_grpc.ImageServiceServicer), self.server)

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.server.add_insecure_port("unix://" + self.path)
        await self.server.start()
        os.chmod(self.path, 0o660)
        log.info("CRI listening on unix://%s", self.path)

    async def stop(self) -> None:
        await self.server.stop(1)

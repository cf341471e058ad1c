"""The CRI streaming server: URLs for Exec, Attach and PortForward, and the HTTP side behind them.

The CRI service calls :meth:`StreamServer.get_exec_url` (and attach / port-forward) with what
kubelet asked; the request waits in a :class:`~pouch.cri.streaming.cache.RequestCache` behind a
single-use token, and the URL ``http://ADDR:PORT/exec/TOKEN`` goes back to the client, which
upgrades a GET (or POST) on it to SPDY/3.1 or to a WebSocket.

Interface with the runtime (the object given to the constructor)::

    async exec(container_id, cmd, stdin, stdout, stderr, tty, resize) -> int   # exit code
    async attach(container_id, stdin, stdout, stderr, tty, resize) -> None
    async port_forward(sandbox_id, port, reader, writer) -> None

``stdin`` is an ``asyncio.StreamReader`` (EOF when the client closes its stdin) or None;
``stdout``/``stderr`` have ``async write(bytes)`` or are None; ``resize`` is an
``asyncio.Queue`` of ``(width, height)`` for a TTY, else None; the client's initial size is
normally already queued when exec/attach is called (the server waits up to half a second for
it), so a runtime can create the terminal with it before starting the process. ``reader``/``writer`` of
port_forward are the client's byte stream (``writer.write`` is async); returning ends the
forwarded connection, raising reports the error to the client. If the client goes away before
exec/attach returns, their coroutine is cancelled (the runtime should then stop copying; whether
the exec'd process is killed is the runtime's choice). Exceptions other than cancellation become
an InternalError status on the error stream.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging

from aiohttp import web

from pouch.cri.streaming import portforward, protocol, remotecommand
from pouch.cri.streaming.cache import DEFAULT_TTL, RequestCache
from pouch.cri.streaming.requests import AttachRequest, ExecRequest, PortForwardRequest
from pouch.cri.streaming.upgrade import is_websocket
from pouch.errtypes import InvalidArgument

log = logging.getLogger(__name__)

DEFAULT_STREAM_CREATION_TIMEOUT = 30.0


def _check_streams(tty: bool, stdin: bool, stdout: bool, stderr: bool) -> None:
    if tty and stderr:
        raise InvalidArgument("tty and stderr cannot both be true")
    if not (stdin or stdout or stderr):
        raise InvalidArgument("one of stdin, stdout, or stderr must be set")


class StreamServer:
    def __init__(self, runtime, address: str, port: int, *, token_ttl: float = DEFAULT_TTL,
                 stream_creation_timeout: float = DEFAULT_STREAM_CREATION_TIMEOUT) -> None:
        self.runtime = runtime
        self.address = address
        self.port = port
        self.stream_creation_timeout = stream_creation_timeout
        self.cache = RequestCache(ttl=token_ttl)
        self._runner: web.AppRunner | None = None
        self._active: set[asyncio.Task] = set()
        app = web.Application(middlewares=[self._track])
        for kind, handler in (("exec", self._serve_exec), ("attach", self._serve_attach),
                              ("portforward", self._serve_portforward)):
            app.router.add_route("GET", f"/{kind}/{{token}}", handler)
            app.router.add_route("POST", f"/{kind}/{{token}}", handler)
        self.app = app

    # ---- lifecycle
    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address or None, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:  # an ephemeral port: the URLs must name the one we got
            self.port = self._runner.addresses[0][1]
        log.info("CRI streaming server on %s", self.base_url)

    async def stop(self) -> None:
        """Stop listening and end every session (their runtime coroutines are cancelled)."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        for site in list(runner.sites):
            await site.stop()
        for task in list(self._active):
            task.cancel()
        await asyncio.gather(*self._active, return_exceptions=True)
        await runner.cleanup()

    @web.middleware
    async def _track(self, request: web.Request, handler):
        task = asyncio.current_task()
        self._active.add(task)
        try:
            return await handler(request)
        finally:
            self._active.discard(task)

    @property
    def base_url(self) -> str:
        host = self.address
        try:
            ip = ipaddress.ip_address(host) if host else None
        except ValueError:
            ip = None
        if not host or (ip is not None and ip.is_unspecified):
            host = "127.0.0.1" if ip is None or ip.version == 4 else "::1"
            ip = ipaddress.ip_address(host)
        if ip is not None and ip.version == 6:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # ---- URLs (called by the CRI service)
    def _url(self, kind: str, request) -> str:
        return f"{self.base_url}/{kind}/{self.cache.insert(request)}"

    def get_exec_url(self, container_id: str, cmd: list[str], tty: bool, stdin: bool,
                     stdout: bool, stderr: bool) -> str:
        if not container_id:
            raise InvalidArgument("missing required container id")
        if not cmd:
            raise InvalidArgument("cmd must not be empty")
        _check_streams(tty, stdin, stdout, stderr)
        return self._url("exec", ExecRequest(container_id, list(cmd), bool(tty), bool(stdin),
                                             bool(stdout), bool(stderr)))

    def get_attach_url(self, container_id: str, tty: bool, stdin: bool, stdout: bool,
                       stderr: bool) -> str:
        if not container_id:
            raise InvalidArgument("missing required container id")
        _check_streams(tty, stdin, stdout, stderr)
        return self._url("attach", AttachRequest(container_id, bool(tty), bool(stdin),
                                                 bool(stdout), bool(stderr)))

    def get_portforward_url(self, sandbox_id: str, ports: list[int]) -> str:
        if not sandbox_id:
            raise InvalidArgument("missing required pod sandbox id")
        for p in ports:
            if not 0 < int(p) < 65536:
                raise InvalidArgument(f"invalid port {p}: must be between 1 and 65535")
        return self._url("portforward", PortForwardRequest(sandbox_id, [int(p) for p in ports]))

    # ---- HTTP
    def _take(self, request: web.Request, cls):
        req = self.cache.consume(request.match_info["token"])
        if not isinstance(req, cls):
            raise web.HTTPNotFound(text="404 page not found: unknown or expired token\n")
        return req

    async def _remote_command(self, request: web.Request, opts, run) -> web.StreamResponse:
        if is_websocket(request):
            return await remotecommand.serve_websocket(request, opts, run)
        return await remotecommand.serve_spdy(
            request, opts, run, stream_creation_timeout=self.stream_creation_timeout)

    async def _serve_exec(self, request: web.Request) -> web.StreamResponse:
        req = self._take(request, ExecRequest)

        async def run(stdin, stdout, stderr, resize) -> dict:
            try:
                code = await self.runtime.exec(req.container_id, req.cmd, stdin, stdout, stderr,
                                               req.tty, resize)
            except Exception as e:
                log.warning("exec in %s failed: %s", req.container_id, e)
                return protocol.internal_error_status(f"error executing command in container: {e}")
            if code:
                return protocol.exit_status(req.cmd, int(code))
            return protocol.success_status()

        return await self._remote_command(request, req, run)

    async def _serve_attach(self, request: web.Request) -> web.StreamResponse:
        req = self._take(request, AttachRequest)

        async def run(stdin, stdout, stderr, resize) -> dict:
            try:
                await self.runtime.attach(req.container_id, stdin, stdout, stderr, req.tty,
                                          resize)
            except Exception as e:
                log.warning("attach to %s failed: %s", req.container_id, e)
                return protocol.internal_error_status(f"error attaching to container: {e}")
            return protocol.success_status()

        return await self._remote_command(request, req, run)

    async def _serve_portforward(self, request: web.Request) -> web.StreamResponse:
        req = self._take(request, PortForwardRequest)

        async def forward(port, reader, writer) -> None:
            await self.runtime.port_forward(req.sandbox_id, port, reader, writer)

        if is_websocket(request):
            return await portforward.serve_websocket(request, req.sandbox_id, req.ports, forward)
        return await portforward.serve_spdy(
            request, req.sandbox_id, forward,
            stream_creation_timeout=self.stream_creation_timeout)

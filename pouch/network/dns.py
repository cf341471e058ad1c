"""Embedded DNS for user networks, as Docker's and Pouch's: 127.0.0.11:53 inside each container
on a user bridge network answers the names of the containers on its networks (name, aliases,
hostname, short id) and forwards every other query to the host's nameservers.

One UDP socket per container, made inside the container's network namespace by a short-lived
thread that enters it (setns) and served by pouchd's event loop; no iptables rule and no process
per container.  Queries are parsed by hand (RFC 1035 header, one question; A and AAAA answered,
the rest forwarded): a few dozen lines, which did not justify a dependency.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import struct
import threading
from typing import Callable

from .netns import CLONE_NEWNET

log = logging.getLogger(__name__)
ADDRESS = "127.0.0.11"
TTL = 600
_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

Lookup = Callable[[str, str], tuple[list[str], list[str]]]   # (cid, name) -> (ipv4s, ipv6s)


def socket_in_netns(netns_path: str) -> socket.socket:
    """A UDP socket bound to 127.0.0.11:53 in the namespace at ``netns_path``."""
    out: list = []

    def body() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ADDRESS, 53))
            s.setblocking(False)
            out.append(s)
        except BaseException as e:
            out.append(e)

    t = threading.Thread(target=body, name="pouch-dns-netns", daemon=True)  # dies in that netns
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def parse_question(data: bytes) -> tuple[int, str, int, int] | None:
    """(id, lower-case name without the final dot, qtype, offset after the question)."""
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or qd != 1:
        return None
    labels, i = [], 12
    while i < len(data):
        n = data[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0 or i + 1 + n > len(data):
            return None
        labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 4 > len(data):
        return None
    qtype = struct.unpack("!H", data[i:i + 2])[0]
    return qid, ".".join(labels).lower(), qtype, i + 4


def answer(query: bytes, end: int, qtype: int, addrs: list[str]) -> bytes:
    """A NOERROR response to ``query`` (question copied) with one record per address."""
    rd = struct.unpack("!H", query[2:4])[0] & 0x0100
    head = struct.pack("!HHHHHH", struct.unpack("!H", query[:2])[0], 0x8480 | rd, 1, len(addrs), 0, 0)
    body = query[12:end]
    for a in addrs:
        raw = socket.inet_pton(socket.AF_INET6 if qtype == 28 else socket.AF_INET, a)
        body += struct.pack("!HHHIH", 0xC00C, qtype, 1, TTL, len(raw)) + raw
    return head + body


def failure(query: bytes, end: int, rcode: int) -> bytes:
    rd = struct.unpack("!H", query[2:4])[0] & 0x0100
    return struct.pack("!HHHHHH", struct.unpack("!H", query[:2])[0], 0x8080 | rd | rcode, 1, 0, 0, 0) + query[12:end]


class _Server(asyncio.DatagramProtocol):
    def __init__(self, owner: "EmbeddedDNS", cid: str) -> None:
        self.owner, self.cid = owner, cid
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        q = parse_question(data)
        if q is None:
            return
        _, name, qtype, end = q
        v4, v6 = self.owner.lookup(self.cid, name) if qtype in (1, 28) else ([], [])
        if v4 or v6:
            self.transport.sendto(answer(data, end, qtype, v4 if qtype == 1 else v6), addr)
            return
        asyncio.get_running_loop().create_task(self._forward(data, end, addr))

    async def _forward(self, data: bytes, end: int, addr) -> None:
        loop = asyncio.get_running_loop()
        for server in self.owner.upstream(self.cid):
            fut: asyncio.Future = loop.create_future()

            class _Client(asyncio.DatagramProtocol):
                def datagram_received(self, reply, _addr) -> None:
                    if not fut.done():
                        fut.set_result(reply)
            try:
                tr, _ = await loop.create_datagram_endpoint(
                    _Client, remote_addr=(server, 53),
                    family=socket.AF_INET6 if ":" in server else socket.AF_INET)
            except OSError:
                continue
            try:
                tr.sendto(data)
                reply = await asyncio.wait_for(fut, 3)
                if self.transport is not None:
                    self.transport.sendto(reply, addr)
                return
            except asyncio.TimeoutError:
                continue
            finally:
                tr.close()
        if self.transport is not None:
            self.transport.sendto(failure(data, end, 2), addr)   # SERVFAIL


class EmbeddedDNS:
    """The responders of the containers on user networks, by container id."""

    def __init__(self, lookup: Lookup, upstream: Callable[[str], list[str]]) -> None:
        self.lookup = lookup
        self.upstream = upstream
        self._servers: dict[str, asyncio.DatagramTransport] = {}

    async def serve(self, cid: str, netns_path: str) -> None:
        if cid in self._servers:
            return
        sock = await asyncio.get_running_loop().run_in_executor(None, _new_thread_socket, netns_path)
        tr, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: _Server(self, cid), sock=sock)
        self._servers[cid] = tr

    def stop(self, cid: str) -> None:
        tr = self._servers.pop(cid, None)
        if tr is not None:
            tr.close()

    def close(self) -> None:
        for cid in list(self._servers):
            self.stop(cid)


def _new_thread_socket(netns_path: str) -> socket.socket:
    # socket_in_netns enters the namespace in a thread of its own, never in the executor's
    return socket_in_netns(netns_path)

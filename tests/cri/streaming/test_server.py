"""The streaming server end to end: real HTTP, SPDY and WebSocket clients, real local processes
and a real TCP listener behind a local-process runtime (see localruntime.py)."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from pouch.cri.streaming import client, protocol
from pouch.cri.streaming.server import StreamServer
from pouch.errtypes import InvalidArgument
from tests.cri.streaming.localruntime import LocalRuntime

SPLIT = ["sh", "-c", "printf out; printf err >&2; exit 0"]


@pytest.fixture
async def server():
    rt = LocalRuntime()
    rt.containers["c1"] = ["sh", "-c", "cat; echo attached-end"]
    srv = StreamServer(rt, "127.0.0.1", 0, token_ttl=5.0, stream_creation_timeout=2.0)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def echo_port():
    """A TCP service on loopback: answers each line upper-cased, closes at EOF."""
    async def handle(r, w):
        while line := await r.readline():
            w.write(line.upper())
            await w.drain()
        w.close()
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield srv.sockets[0].getsockname()[1]
    srv.close()


# ---- SPDY exec / attach
async def test_spdy_exec_separates_stdout_and_stderr(server):
    url = server.get_exec_url("c1", SPLIT, tty=False, stdin=False, stdout=True, stderr=True)
    assert url.startswith(f"http://127.0.0.1:{server.port}/exec/")
    res = await client.spdy_remote_command(url)
    assert res.protocol == protocol.V4
    assert (res.stdout, res.stderr) == (b"out", b"err")
    assert json.loads(res.error)["status"] == "Success"
    assert res.exit_code == 0


async def test_spdy_exec_stdin_and_exit_code(server):
    url = server.get_exec_url("c1", ["sh", "-c", "tr a-z A-Z; exit 7"], tty=False, stdin=True,
                              stdout=True, stderr=False)
    data = b"hello stream\n" * 20000          # ~260 KB each way: several frames, backpressure
    res = await client.spdy_remote_command(url, stdin=data, stderr=False)
    assert res.stdout == data.upper()
    status = json.loads(res.error)
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]
    assert res.exit_code == 7


@pytest.mark.parametrize("proto", [protocol.V3, protocol.V2, protocol.V1])
async def test_spdy_older_protocols_report_failure_as_text(server, proto):
    url = server.get_exec_url("c1", ["sh", "-c", "echo hi; exit 3"], False, False, True, True)
    res = await client.spdy_remote_command(url, protocols=[proto])
    assert res.protocol == proto
    assert res.stdout == b"hi\n"
    assert b"non-zero exit code" in res.error and b"exit code 3" in res.error
    url = server.get_exec_url("c1", ["true"], False, False, True, True)
    res = await client.spdy_remote_command(url, protocols=[proto])
    assert res.error == b"" and res.exit_code == 0


async def test_spdy_runtime_error_is_internal_error_status(server):
    url = server.get_exec_url("nope", ["true"], False, False, True, True)
    res = await client.spdy_remote_command(url)
    st = json.loads(res.error)
    assert st["status"] == "Failure" and st["reason"] == "InternalError"
    assert "no such container: nope" in st["message"]


async def test_spdy_tty_resize(server):
    # the initial size is there when the command starts; a later one reaches the terminal too
    url = server.get_exec_url("c1", ["sh", "-c", "stty size; read x; stty size"], tty=True,
                              stdin=True, stdout=True, stderr=False)

    async def sizes():
        yield 123, 45
        await asyncio.sleep(0.2)
        yield 60, 20

    async def stdin():
        await asyncio.sleep(0.6)
        yield b"go\n"
    res = await client.spdy_remote_command(url, stdin=stdin(), tty=True, stderr=False,
                                           resizes=sizes())
    assert res.stdout.startswith(b"45 123\r\n")
    assert res.stdout.endswith(b"20 60\r\n")
    assert res.exit_code == 0


async def test_spdy_attach(server):
    url = server.get_attach_url("c1", tty=False, stdin=True, stdout=True, stderr=True)
    assert "/attach/" in url
    res = await client.spdy_remote_command(url, stdin=b"typed\n")
    assert res.stdout == b"typed\nattached-end\n"
    assert res.exit_code == 0


async def test_spdy_client_gone_cancels_runtime(server):
    url = server.get_exec_url("c1", ["sleep", "30"], False, False, True, True)
    conn = await client.spdy_connect(url, [protocol.V4])
    for kind in ("error", "stdout", "stderr"):
        await conn.session.open_stream({"streamType": kind})
    await asyncio.sleep(0.3)
    conn._writer.transport.abort()
    for _ in range(50):
        if server.runtime.cancelled:
            break
        await asyncio.sleep(0.1)
    assert server.runtime.cancelled == 1


# ---- tokens and refusals
async def test_token_is_single_use(server):
    url = server.get_exec_url("c1", ["true"], False, False, True, True)
    assert (await client.spdy_remote_command(url)).exit_code == 0
    with pytest.raises(client.UpgradeFailed) as e:
        await client.spdy_remote_command(url)
    assert e.value.status == 404


async def test_token_expires():
    srv = StreamServer(LocalRuntime(), "127.0.0.1", 0, token_ttl=0.2)
    await srv.start()
    try:
        url = srv.get_exec_url("c1", ["true"], False, False, True, True)
        await asyncio.sleep(0.4)
        with pytest.raises(client.UpgradeFailed) as e:
            await client.spdy_remote_command(url)
        assert e.value.status == 404
    finally:
        await srv.stop()


async def test_token_of_another_kind_is_refused(server):
    url = server.get_exec_url("c1", ["true"], False, False, True, True)
    with pytest.raises(client.UpgradeFailed) as e:
        await client.spdy_remote_command(url.replace("/exec/", "/attach/"))
    assert e.value.status == 404


async def test_unknown_protocol_is_forbidden(server):
    url = server.get_exec_url("c1", ["true"], False, False, True, True)
    with pytest.raises(client.UpgradeFailed) as e:
        await client.spdy_remote_command(url, protocols=["v9.channel.k8s.io"])
    assert e.value.status == 403
    assert "v4.channel.k8s.io" in e.value.headers["x-accepted-stream-protocol-versions"]


async def test_plain_request_without_upgrade_is_bad_request(server):
    url = server.get_exec_url("c1", ["true"], False, False, True, True)
    async with aiohttp.ClientSession() as http:
        async with http.post(url) as r:
            assert r.status == 400
            assert "upgrade" in (await r.text())


async def test_missing_streams_time_out(server):
    url = server.get_exec_url("c1", ["echo", "x"], False, False, True, True)
    conn = await client.spdy_connect(url, [protocol.V4])
    await conn.session.open_stream({"streamType": "error"})   # stdout, stderr never come
    await asyncio.wait_for(conn.session.closed.wait(), 5)      # the server hangs up (2 s)
    await conn.close()


def test_bad_requests_are_refused():
    srv = StreamServer(LocalRuntime(), "127.0.0.1", 0)
    with pytest.raises(InvalidArgument, match="tty and stderr"):
        srv.get_exec_url("c1", ["sh"], tty=True, stdin=True, stdout=True, stderr=True)
    with pytest.raises(InvalidArgument, match="one of stdin, stdout, or stderr"):
        srv.get_attach_url("c1", tty=False, stdin=False, stdout=False, stderr=False)
    with pytest.raises(InvalidArgument):
        srv.get_exec_url("c1", [], False, False, True, True)
    with pytest.raises(InvalidArgument):
        srv.get_portforward_url("p1", [0])
    assert len(srv.cache) == 0


def test_unspecified_address_gives_a_reachable_url():
    assert StreamServer(None, "0.0.0.0", 10010).base_url == "http://127.0.0.1:10010"
    assert StreamServer(None, "::", 10010).base_url == "http://[::1]:10010"
    assert StreamServer(None, "10.1.2.3", 5).base_url == "http://10.1.2.3:5"


# ---- WebSocket exec / attach
@pytest.mark.parametrize("proto", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"])
async def test_ws_exec_v4(server, proto):
    url = server.get_exec_url("c1", ["sh", "-c", "printf out; printf err >&2; exit 4"],
                              False, False, True, True)
    res = await client.ws_remote_command(url, protocols=[proto])
    assert res.protocol == proto
    assert (res.stdout, res.stderr) == (b"out", b"err")
    assert res.exit_code == 4


async def test_ws_v1_text_error(server):
    url = server.get_exec_url("c1", ["sh", "-c", "exit 2"], False, False, True, True)
    res = await client.ws_remote_command(url, protocols=["channel.k8s.io"])
    assert res.protocol == "channel.k8s.io"
    assert b"exit code 2" in res.error and not res.error.startswith(b"{")


async def test_ws_v5_stdin_close(server):
    url = server.get_exec_url("c1", ["sh", "-c", "wc -c"], False, True, True, False)
    res = await client.ws_remote_command(url, stdin=b"x" * 100000, stderr=False,
                                         protocols=[protocol.V5])
    assert res.protocol == protocol.V5
    assert res.stdout.strip() == b"100000"
    assert res.exit_code == 0


async def test_ws_tty_resize(server):
    url = server.get_exec_url("c1", ["stty", "size"], True, False, True, False)
    res = await client.ws_remote_command(url, tty=True, stderr=False, resizes=[(90, 33)])
    assert b"33 90" in res.stdout


# ---- port forward
async def test_spdy_port_forward(server, echo_port):
    url = server.get_portforward_url("p1", [])
    conn = await client.spdy_connect(url, [protocol.PORTFORWARD_PROTOCOL])
    assert conn.protocol == protocol.PORTFORWARD_PROTOCOL
    try:
        results = await asyncio.gather(*(
            client.spdy_port_forward(url, echo_port, f"conn {i}\n".encode() * 3, conn, i)
            for i in range(3)))
    finally:
        await conn.close()
    for i, (data, err) in enumerate(results):
        assert data == f"CONN {i}\n".encode() * 3 and err == b""


async def test_spdy_port_forward_closed_port_reports_error(server):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                   # nothing listens there now
    url = server.get_portforward_url("p1", [port])
    data, err = await client.spdy_port_forward(url, port, b"x")
    assert data == b""
    assert f"error forwarding port {port} to pod p1".encode() in err


@pytest.mark.parametrize("proto", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"])
async def test_ws_port_forward(server, echo_port, proto):
    # the echo service closes at EOF, which a WebSocket cannot send: a one-line service instead
    async def one_line(r, w):
        w.write((await r.readline()).upper())
        await w.drain()
        w.close()
    srv = await asyncio.start_server(one_line, "127.0.0.1", 0)
    port2 = srv.sockets[0].getsockname()[1]
    try:
        url = server.get_portforward_url("p1", [port2, port2])
        res = await asyncio.wait_for(
            client.ws_port_forward(url, [port2, port2], [b"one\n", b"two\n"], [proto]), 10)
    finally:
        srv.close()
    assert res == [(b"ONE\n", b"", port2), (b"TWO\n", b"", port2)]


async def test_ws_port_forward_needs_ports(server):
    url = server.get_portforward_url("p1", [])
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await client.ws_port_forward(url, [], [])
    assert e.value.status == 400


async def test_stop_ends_running_sessions():
    rt = LocalRuntime()
    rt.containers["c1"] = ["true"]
    srv = StreamServer(rt, "127.0.0.1", 0)
    await srv.start()
    spdy_url = srv.get_exec_url("c1", ["sleep", "30"], False, False, True, True)
    ws_url = srv.get_exec_url("c1", ["sleep", "30"], False, False, True, True)
    spdy_run = asyncio.create_task(client.spdy_remote_command(spdy_url))
    ws_run = asyncio.create_task(client.ws_remote_command(ws_url))
    await asyncio.sleep(0.5)
    await asyncio.wait_for(srv.stop(), 10)
    done, _ = await asyncio.wait({spdy_run, ws_run}, timeout=10)
    assert len(done) == 2                      # both clients saw the end of their connection
    assert rt.cancelled == 2                   # and the runtime's coroutines were stopped
    for t in done:
        t.exception()


@pytest.mark.parametrize("transport", ["spdy", "ws"])
async def test_large_stdin_to_a_slow_reader(server, transport):
    # 8 MB while the command sleeps first: the server pauses reading instead of buffering all
    data = bytes(range(256)) * (8 * 4096)
    url = server.get_exec_url("c1", ["sh", "-c", "sleep 1; md5sum"], False, True, True, False)
    if transport == "spdy":
        res = await client.spdy_remote_command(url, stdin=data, stderr=False)
    else:
        res = await client.ws_remote_command(url, stdin=data, stderr=False,
                                             protocols=[protocol.V5])
    import hashlib
    assert res.stdout.split()[0].decode() == hashlib.md5(data).hexdigest()
    assert res.exit_code == 0

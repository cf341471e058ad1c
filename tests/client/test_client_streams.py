"""Stream tests: JSON progress streams, multiplexed logs, hijacked attach/exec, detach keys."""
import io
import json
import socket
import threading

import pytest

from fake_pouchd import Hijack, Stream, frame
from pouch.client import NotFound
from pouch.client.terminal import EscapeFilter, parse_detach_keys, pump


def test_pull_json_stream_split_across_chunks(fake, client):
    msgs = [{"status": "Pulling fs layer", "id": "abc"}, {"status": "Download complete", "id": "abc"},
            {"status": "Status: Downloaded newer image for busybox:latest"}]
    data = b"".join(json.dumps(m).encode() + b"\r\n" for m in msgs)
    chunks = [data[i:i + 7] for i in range(0, len(data), 7)]
    fake.route("POST", "/images/create", reply=Stream(chunks))
    assert list(client.pull("busybox", "latest")) == msgs
    assert fake.requests[0].q("fromImage") == "busybox"


def test_logs_demultiplexes_stdout_and_stderr(fake, client):
    data = frame(1, b"out line\n") + frame(2, b"err line\n") + frame(1, b"x" * 70000)
    chunks = [data[:5], data[5:20], data[20:]]
    fake.route("GET", r"/containers/(\w+)/logs", reply=Stream(chunks, "application/vnd.docker.raw-stream"))
    got = list(client.logs("c1", tail="2", timestamps=True))
    assert got[0] == (1, b"out line\n")
    assert got[1] == (2, b"err line\n")
    assert b"".join(d for s, d in got[2:]) == b"x" * 70000
    req = fake.requests[0]
    assert req.q("tail") == "2" and req.q("timestamps") == "1" and req.q("follow") is None


def test_logs_tty_is_raw(fake, client):
    fake.route("GET", r"/containers/(\w+)/logs", reply=Stream([b"raw\r\n", b"more"]))
    assert b"".join(d for _, d in client.logs("c1", tty=True)) == b"raw\r\nmore"


def _echo_upper(sock):
    """Read stdin until the client half-closes, then answer on stdout and stderr frames."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.sendall(frame(1, data.upper()) + frame(2, b"done\n"))
    sock.shutdown(socket.SHUT_WR)


def test_attach_hijack_both_ways_with_half_close(fake, client):
    fake.route("POST", r"/containers/(\w+)/attach", lambda req, cid: (101, Hijack(_echo_upper)))
    hs = client.attach_socket("c1", stdin=True)
    out, err = io.BytesIO(), io.BytesIO()
    detached = pump(hs, io.BytesIO(b"hello pouch\n"), out, err, tty=False)
    hs.close()
    assert detached is False
    assert out.getvalue() == b"HELLO POUCH\n"
    assert err.getvalue() == b"done\n"
    req = fake.requests[0]
    assert req.headers["Connection"] == "Upgrade" and req.headers["Upgrade"] == "tcp"
    assert req.q("stdin") == "1" and req.q("stream") == "1"


def test_exec_start_tty_raw_stream(fake, client):
    def tty_echo(sock):
        sock.sendall(b"$ ")
        data = sock.recv(100)
        sock.sendall(data + b"\r\n")
    fake.route("POST", r"/exec/(\w+)/start", lambda req, eid: (101, Hijack(tty_echo)))
    hs = client.exec_start("e1", tty=True)
    out = io.BytesIO()
    r, w = socket.socketpair()
    w.sendall(b"ls")
    pump(hs, r.makefile("rb", buffering=0), out, None, tty=True)
    hs.close()
    r.close()
    w.close()
    assert out.getvalue() == b"$ ls\r\n"
    assert fake.requests[0].json == {"Detach": False, "Tty": True}


def test_hijack_error_is_typed(fake, client):
    fake.route("POST", r"/containers/(\w+)/attach", reply={"message": "no such container: zz"}, status=404)
    with pytest.raises(NotFound, match="no such container: zz"):
        client.attach_socket("zz")


def test_detach_keys_stop_the_session(fake, client):
    seen = []
    gone = threading.Event()

    def holder(sock):
        while True:
            chunk = sock.recv(100)
            if not chunk:
                break
            seen.append(chunk)
        gone.set()

    fake.route("POST", r"/containers/(\w+)/attach", lambda req, cid: (101, Hijack(holder)))
    hs = client.attach_socket("c1", stdin=True, detach_keys="ctrl-p,ctrl-q")
    detached = pump(hs, io.BytesIO(b"ab\x10\x11cd"), io.BytesIO(), None, tty=True,
                    detach_keys="ctrl-p,ctrl-q")
    hs.close()
    assert detached is True
    assert gone.wait(5)
    # the keys go on to the daemon, which detaches (without closing the container's stdin)
    assert b"".join(seen) == b"ab\x10\x11"


def test_parse_detach_keys_and_escape_filter():
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    with pytest.raises(ValueError):
        parse_detach_keys("ctrl-pq")
    f = EscapeFilter(b"\x10\x11")
    assert f.feed(b"a\x10") == b"a"        # partial match held back
    assert f.feed(b"b") == b"\x10b"         # mismatch flushes it
    assert f.feed(b"\x10") == b"" and f.feed(b"\x11") == b"" and f.detached


def test_wait_begin_is_sent_before_start(fake, client):
    fake.route("POST", r"/containers/(\w+)/start", lambda req, cid: (fake.started.set(), (204, None))[1])
    # wait_begin returns once the daemon answered (pouchd sends the headers as soon as the wait
    # is registered), so the wait is registered before start is even sent
    fake.route("POST", r"/containers/(\w+)/wait", lambda req, cid: (200, {"StatusCode": 7}))
    finish = client.wait_begin("c1", condition="next-exit")
    assert not fake.started.is_set()
    client.start("c1")
    assert finish() == {"StatusCode": 7}
    assert [r.path for r in fake.requests] == ["/containers/c1/wait", "/containers/c1/start"]
    assert fake.requests[0].q("condition") == "next-exit"

"""AttachSession and the detach-key scanner, without a daemon (the stream plumbing of attach and exec)."""
from __future__ import annotations

import asyncio

import pytest

from pouch.daemon.mgr.attach import AttachSession, DetachScanner, detach_sequence
from pouch.errtypes import InvalidArgument

CP, CQ = b"\x10", b"\x11"


def feed_all(keys: bytes, chunks: list[bytes]) -> tuple[bytes, bool]:
    s = DetachScanner(keys)
    out = b""
    for ch in chunks:
        data, detached = s.feed(ch)
        out += data
        if detached:
            return out, True
    return out, False


def test_default_keys_detach_in_one_read_and_split_across_reads():
    keys = detach_sequence(None)
    assert keys == CP + CQ
    assert feed_all(keys, [b"ls" + CP + CQ + b"rest"]) == (b"ls", True)
    assert feed_all(keys, [b"ls" + CP, CQ]) == (b"ls", True)


def test_ctrl_p_twice_then_ctrl_q_detaches_and_passes_the_first_ctrl_p():
    keys = detach_sequence(None)
    assert feed_all(keys, [CP + CP + CQ]) == (CP, True)
    assert feed_all(keys, [CP, CP, CQ]) == (CP, True)
    assert feed_all(keys, [b"a" + CP, CP + CQ]) == (b"a" + CP, True)


def test_a_broken_prefix_is_passed_on_unchanged():
    keys = detach_sequence(None)
    assert feed_all(keys, [CP + b"x", b"y"]) == (CP + b"xy", False)
    s = DetachScanner(keys)
    assert s.feed(b"ab" + CP) == (b"ab", False)  # held back: may start the sequence
    assert s.feed(b"c") == (CP + b"c", False)


def test_custom_keys_with_a_self_overlapping_sequence():
    keys = detach_sequence("a,a,b")
    assert keys == b"aab"
    assert feed_all(keys, [b"xaaab"]) == (b"xa", True)
    assert feed_all(keys, [b"a", b"a", b"a", b"b"]) == (b"a", True)
    assert feed_all(keys, [b"aac"]) == (b"aac", False)
    assert feed_all(detach_sequence("ctrl-x"), [b"12\x18"]) == (b"12", True)


def test_no_keys_pass_everything():
    assert DetachScanner(b"").feed(CP + CQ) == (CP + CQ, False)


@pytest.mark.parametrize("bad", ["ctrl-", "ctrl-1", "foo", "a,,b"])
def test_bad_detach_keys_are_invalid_argument(bad):
    with pytest.raises(InvalidArgument):
        detach_sequence(bad)


class FakeConn:
    def __init__(self) -> None:
        self.input: asyncio.Queue = asyncio.Queue()
        self.out: list[tuple[str, bytes]] = []
        self.closed = False

    def write(self, stream: str, data: bytes) -> None:
        self.out.append((stream, data))

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


async def test_session_forwards_output_and_stdin_until_the_output_ends():
    conn, subs, stdin = FakeConn(), set(), []

    async def write_stdin(data):
        stdin.append(data)

    s = AttachSession(conn, subs, {"stdout"}, detach_sequence(None), write_stdin=write_stdin)
    task = asyncio.ensure_future(s.run())
    await asyncio.sleep(0)
    assert len(subs) == 1
    q = next(iter(subs))
    conn.input.put_nowait(b"hello")
    q.put_nowait(("stdout", b"out"))
    q.put_nowait(("stderr", b"not wanted"))
    await asyncio.sleep(0.01)
    q.put_nowait(None)
    assert await asyncio.wait_for(task, 1) == "ended"
    assert conn.out == [("stdout", b"out")] and stdin == [b"hello"]
    assert conn.closed and not subs


async def test_session_detach_returns_at_once_without_waiting_for_the_process():
    conn, subs = FakeConn(), set()

    async def write_stdin(data):
        pass

    s = AttachSession(conn, subs, {"stdout"}, detach_sequence(None), write_stdin=write_stdin)
    task = asyncio.ensure_future(s.run())
    conn.input.put_nowait(CP)
    conn.input.put_nowait(CP + CQ)
    assert await asyncio.wait_for(task, 1) == "detached"
    assert conn.closed and not subs  # no handler left waiting on the process's output


async def test_stdin_eof_keeps_the_output_flowing():
    conn, subs, closed = FakeConn(), set(), []

    async def write_stdin(data):
        pass

    async def close_stdin():
        closed.append(True)

    s = AttachSession(conn, subs, {"stdout", "stderr"}, b"", write_stdin=write_stdin, close_stdin=close_stdin)
    task = asyncio.ensure_future(s.run())
    conn.input.put_nowait(None)
    await asyncio.sleep(0.01)
    assert closed == [True] and not task.done()
    q = next(iter(subs))
    q.put_nowait(("stderr", b"late"))
    q.put_nowait(None)
    assert await asyncio.wait_for(task, 1) == "ended"
    assert conn.out == [("stderr", b"late")]

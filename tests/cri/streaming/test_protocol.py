"""Channel protocol pieces and the token cache."""
from __future__ import annotations

import json

import pytest

from pouch.cri.streaming import protocol
from pouch.cri.streaming.cache import RequestCache
from pouch.errtypes import Unavailable


def test_negotiation_prefers_the_clients_order():
    sup = protocol.SPDY_REMOTECOMMAND_PROTOCOLS
    assert protocol.negotiate(["v3.channel.k8s.io", "v4.channel.k8s.io"], sup) == protocol.V3
    assert protocol.negotiate(["v9", "channel.k8s.io"], sup) == protocol.V1
    assert protocol.negotiate([], sup) == ""
    with pytest.raises(protocol.NegotiationError, match="unable to negotiate"):
        protocol.negotiate(["v9.channel.k8s.io"], sup)
    assert protocol.client_protocols(["a, b", "c"]) == ["a", "b", "c"]


def test_status_payloads():
    st = protocol.exit_status(["sh", "-c", "exit 3"], 3)
    wire = protocol.encode_status(st, True)
    assert protocol.exit_code_from_status(wire) == 3
    assert json.loads(wire)["details"]["causes"][0] == {"reason": "ExitCode", "message": "3"}
    ok = protocol.encode_status(protocol.success_status(), True)
    assert json.loads(ok)["status"] == "Success" and protocol.exit_code_from_status(ok) == 0
    # up to v3 the error stream carries text, and nothing on success
    assert protocol.encode_status(protocol.success_status(), False) == b""
    assert protocol.encode_status(st, False).startswith(b"command terminated with non-zero")
    with pytest.raises(RuntimeError, match="boom"):
        protocol.exit_code_from_status(
            protocol.encode_status(protocol.internal_error_status("boom"), True))


def test_resize_decoder_handles_split_and_joined_messages():
    d = protocol.ResizeDecoder()
    wire = protocol.encode_resize(80, 24) + protocol.encode_resize(100, 50)
    assert d.feed(wire[:7]) == []
    assert d.feed(wire[7:]) == [(80, 24), (100, 50)]
    assert d.feed(b'{"Width":1,"Height":2}{"Width":3,"Height":4}') == [(1, 2), (3, 4)]


@pytest.mark.parametrize("binary", [True, False])
def test_ws_channel_framing(binary):
    msg = protocol.ws_encode(2, b"\x00\xffdata", binary)
    assert isinstance(msg, bytes if binary else str)
    if binary:
        assert msg[0] == 2
    else:
        assert msg[0] == "2"
    assert protocol.ws_decode(msg) == (2, b"\x00\xffdata")
    with pytest.raises(ValueError):
        protocol.ws_decode(b"" if binary else "")


def test_tokens_are_single_use_and_expire():
    now = [100.0]
    cache = RequestCache(ttl=10, max_in_flight=2, clock=lambda: now[0])
    t1 = cache.insert("req1")
    t2 = cache.insert("req2")
    assert t1 != t2 and len(t1) >= 11
    with pytest.raises(Unavailable, match="in-flight"):
        cache.insert("req3")
    assert cache.consume(t1) == "req1"
    assert cache.consume(t1) is None
    now[0] += 10
    assert cache.consume(t2) is None                 # expired
    assert len(cache) == 0
    cache.insert("a"), cache.insert("b")             # room again once the old ones expired
    assert cache.consume("no-such-token") is None

"""Upstream failures (502/504) and malformed client requests (400/431), answered by the
proxy itself within a bounded time without bothering the origin."""

import socket
import time

import pytest

from client import PeerClosed, RawConn, free_port, pattern_bytes


def _assert_short_plain(r):
    assert 0 < len(r.body) <= 512, f"body {len(r.body)} bytes: {r.body[:100]!r}"
    ct = r.header("Content-Type")
    if ct is not None:
        assert ct.lower().startswith("text/plain"), ct


def test_upstream_down_gives_502(turnout):
    dead = free_port()  # nothing listens here
    proxy = turnout([f"127.0.0.1:{dead}"])
    with RawConn(proxy.port, timeout=10) as c:
        t0 = time.monotonic()
        r = c.request("GET", "/anything")
        elapsed = time.monotonic() - t0
    assert r.status == 502
    assert elapsed < 6.0, f"502 took {elapsed:.1f}s"
    _assert_short_plain(r)


def test_upstream_slow_gives_504(turnout, origin):
    proxy = turnout([origin.addr], timeouts={"upstream_response": "500ms"})
    with RawConn(proxy.port, timeout=10) as c:
        t0 = time.monotonic()
        r = c.request("GET", "/slow/3000")
        elapsed = time.monotonic() - t0
    assert r.status == 504
    assert 0.4 <= elapsed < 2.5, f"504 after {elapsed:.2f}s"
    _assert_short_plain(r)
    # The proxy still serves afterwards.
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/bytes/10")
        assert r.status == 200 and r.body == pattern_bytes(10)


def test_upstream_connect_timeout_gives_504_or_502(turnout):
    # 192.0.2.1 (TEST-NET-1) normally blackholes; a route error gives 502 quickly instead.
    proxy = turnout(["192.0.2.1:81"], timeouts={"upstream_connect": "300ms"})
    with RawConn(proxy.port, timeout=10) as c:
        t0 = time.monotonic()
        r = c.request("GET", "/x")
        elapsed = time.monotonic() - t0
    assert r.status in (502, 504)
    assert elapsed < 3.0, f"answer after {elapsed:.2f}s with upstream_connect 300ms"


MALFORMED = [
    pytest.param(
        b"POST /echo HTTP/1.1\r\nHost: e2e.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400, id="cl-and-te"),
    pytest.param(b"GET /echo HTTP/1.1\nHost: e2e.test\n\n", 400, id="bare-lf"),
    pytest.param(b"GET /echo HTTP/1.1\r\nHost: e2e.test\nX-A: 1\r\n\r\n", 400, id="bare-lf-in-header"),
    pytest.param(b"GET /echo HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400, id="missing-host-1.1"),
    pytest.param(b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, id="two-hosts"),
    pytest.param(b"POST /echo HTTP/1.1\r\nHost: e2e.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                 400, id="conflicting-content-length"),
    pytest.param(b"GET /echo HTTP/1.1\r\nHost : e2e.test\r\n\r\n", 400, id="space-before-colon"),
    pytest.param(b"GET /echo HTTP/1.1\r\nHost: e2e.test\r\nX-Big: " + b"a" * (40 * 1024) + b"\r\n\r\n",
                 431, id="oversized-header"),
]


@pytest.mark.parametrize("wire,status", MALFORMED)
def test_malformed_request_rejected(proxy, origin, wire, status):
    with RawConn(proxy.port, timeout=5) as c:
        try:
            c.send(wire)
            r = c.read_response()
        except (PeerClosed, ConnectionResetError) as e:
            pytest.fail(f"no {status} response, connection ended: {e!r}")
    assert r.status == status, f"sent {wire[:120]!r}, got {r.status} {r.headers}"
    time.sleep(0.3)
    assert origin.requests == [], f"origin saw {origin.requests}"
    # The proxy keeps serving well-formed requests.
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/bytes/10").status == 200


def test_body_that_arrives_with_the_upstream_close_is_delivered(turnout, raw_origin_factory):
    # The origin writes head, body and FIN at once; the proxy reads the end of the stream
    # before it has passed the body on, and must still deliver the whole body.
    def respond(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        return False

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    for i in range(40):
        with RawConn(proxy.port) as c:
            r = c.request("GET", f"/close/{i}")
            assert (r.status, r.body) == (200, b"hello"), i
    assert not [rec for rec in proxy.wait_access_records(40) if rec.get("note")], "a response was cut short"


def test_short_body_reaches_a_slow_client_whole_before_the_cut(turnout, raw_origin_factory):
    # The origin promises more than it sends and closes. The client reads slowly, so the
    # end of the stream reaches the proxy while it still holds bytes the client has not
    # taken: every byte sent must still arrive before the connection is cut.
    sent = 8 << 20

    def respond(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * sent) + pattern_bytes(sent))
        return False

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)  # before connect: a fixed window
        sock.settimeout(10)
        sock.connect(("127.0.0.1", proxy.port))
        sock.sendall(b"GET /short HTTP/1.1\r\nHost: e2e.test\r\n\r\n")
        got = bytearray()
        while b"\r\n\r\n" not in got:
            got += sock.recv(65536)
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        assert b" 200 " in head
        got = bytearray(body)
        while True:
            time.sleep(0.002)  # about 30 MB/s: the proxy always has output waiting
            data = sock.recv(65536)
            if not data:
                break
            got += data
    finally:
        sock.close()
    assert len(got) == sent and bytes(got) == pattern_bytes(sent)

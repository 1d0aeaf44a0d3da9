"""Hostile and ambiguous input, sent as raw bytes through the real binary.

REQUESTS: every request that must be refused, with the status the client gets; the
proxy closes the connection after answering, and the origin never receives a complete
request (checked after each case with a sentinel request the origin must see alone).
ACCEPTED: borderline requests that are valid and reach the origin normalized.
RESPONSES: invalid upstream responses become 502 and their connection is not reused."""

from __future__ import annotations

import threading
import time

import pytest

from client import PeerClosed, RawConn, free_port
from origins import Origin
from proxyctl import make_config, start_turnout

H = b"Host: e2e.test\r\n"


def req(line: bytes, fields: bytes = H, body: bytes = b"") -> bytes:
    return line + b"\r\n" + fields + b"\r\n" + body


POST = b"POST /echo HTTP/1.1"
REQUESTS = [
    # Request smuggling: framing that two parsers could read differently.
    ("cl-and-te", req(POST, H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("te-and-cl", req(POST, H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"), 400),
    ("te-gzip", req(POST, H + b"Transfer-Encoding: gzip\r\n"), 400),
    ("te-chunked-then-gzip", req(POST, H + b"Transfer-Encoding: chunked, gzip\r\n"), 400),
    ("te-gzip-then-chunked", req(POST, H + b"Transfer-Encoding: gzip, chunked\r\n"), 400),
    ("te-chunked-twice", req(POST, H + b"Transfer-Encoding: chunked, chunked\r\n"), 400),
    ("te-two-lines", req(POST, H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n"), 400),
    ("te-identity", req(POST, H + b"Transfer-Encoding: identity\r\n"), 400),
    ("te-xchunked", req(POST, H + b"Transfer-Encoding: xchunked\r\n"), 400),
    ("te-chunked-param", req(POST, H + b"Transfer-Encoding: chunked;q=1\r\n"), 400),
    ("te-empty", req(POST, H + b"Transfer-Encoding: \r\n"), 400),
    ("te-in-http10", req(b"POST /echo HTTP/1.0", H + b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("te-space-before-colon", req(POST, H + b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), 400),
    ("te-vertical-tab", req(POST, H + b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n"), 400),
    ("cl-conflicting-lines", req(POST, H + b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"), 400),
    ("cl-conflicting-list", req(POST, H + b"Content-Length: 5, 6\r\n", b"hello!"), 400),
    ("cl-plus-sign", req(POST, H + b"Content-Length: +5\r\n", b"hello"), 400),
    ("cl-negative", req(POST, H + b"Content-Length: -1\r\n"), 400),
    ("cl-hex", req(POST, H + b"Content-Length: 0x5\r\n", b"hello"), 400),
    ("cl-two-numbers", req(POST, H + b"Content-Length: 5 5\r\n", b"hello"), 400),
    ("cl-empty", req(POST, H + b"Content-Length: \r\n"), 400),
    ("cl-overflow", req(POST, H + b"Content-Length: 99999999999999999999999\r\n"), 400),
    ("cl-letters", req(POST, H + b"Content-Length: five\r\n"), 400),
    ("cl-decimal", req(POST, H + b"Content-Length: 5.0\r\n", b"hello"), 400),
    # Chunked bodies (refused while streaming: the client gets 400, the origin no complete request).
    ("chunk-size-not-hex", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-signed", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"+5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-negative", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-overflow", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"fffffffffffffffff1\r\nx\r\n0\r\n\r\n"), 400),
    ("chunk-size-0x-prefix", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-ext-bad", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"5;a b\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-ext-empty-name", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"5;=x\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-data-too-long", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"3\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-bare-lf", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"5\nhello\n0\n\n"), 400),
    ("chunk-missing-crlf", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"5\r\nhelloXX0\r\n\r\n"), 400),
    ("chunk-trailer-obs-fold", req(POST, H + b"Transfer-Encoding: chunked\r\n", b"0\r\nX: a\r\n b\r\n\r\n"), 400),
    # Line endings and header syntax.
    ("bare-lf-everywhere", b"GET /echo HTTP/1.1\nHost: e2e.test\n\n", 400),
    ("bare-lf-in-fields", b"GET /echo HTTP/1.1\r\nHost: e2e.test\nX-A: 1\r\n\r\n", 400),
    ("bare-cr-in-request-line", b"GET /echo HTTP/1.1\rHost: e2e.test\r\n\r\n", 400),
    ("bare-cr-in-value", req(b"GET /echo HTTP/1.1", H + b"X-A: a\rb\r\n"), 400),
    ("obs-fold", req(b"GET /echo HTTP/1.1", H + b"X-A: 1\r\n 2\r\n"), 400),
    ("obs-fold-tab", req(b"GET /echo HTTP/1.1", H + b"X-A: 1\r\n\t2\r\n"), 400),
    ("space-before-colon", req(b"GET /echo HTTP/1.1", b"Host : e2e.test\r\n"), 400),
    ("tab-before-colon", req(b"GET /echo HTTP/1.1", H + b"X-A\t: 1\r\n"), 400),
    ("nul-in-value", req(b"GET /echo HTTP/1.1", H + b"X-A: a\x00b\r\n"), 400),
    ("nul-in-name", req(b"GET /echo HTTP/1.1", H + b"X-\x00A: 1\r\n"), 400),
    ("ctl-in-value", req(b"GET /echo HTTP/1.1", H + b"X-A: a\x01b\r\n"), 400),
    ("del-in-value", req(b"GET /echo HTTP/1.1", H + b"X-A: a\x7fb\r\n"), 400),
    ("field-without-colon", req(b"GET /echo HTTP/1.1", H + b"X-A 1\r\n"), 400),
    ("empty-field-name", req(b"GET /echo HTTP/1.1", H + b": 1\r\n"), 400),
    ("bad-char-in-name", req(b"GET /echo HTTP/1.1", H + b"X(A): 1\r\n"), 400),
    ("leading-space-first-field", b"GET /echo HTTP/1.1\r\n Host: e2e.test\r\n\r\n", 400),
    # Request line.
    ("bad-method-char", req(b"G(ET /echo HTTP/1.1"), 400),
    ("method-leading-space", req(b" GET /echo HTTP/1.1"), 400),
    ("two-spaces", req(b"GET  /echo HTTP/1.1"), 400),
    ("space-in-target", req(b"GET /a b HTTP/1.1"), 400),
    ("ctl-in-target", req(b"GET /a\x01b HTTP/1.1"), 400),
    ("nul-in-target", req(b"GET /a\x00b HTTP/1.1"), 400),
    ("fragment-in-target", req(b"GET /a#b HTTP/1.1"), 400),
    ("asterisk-for-get", req(b"GET * HTTP/1.1"), 400),
    ("authority-form-for-get", req(b"GET e2e.test:80 HTTP/1.1"), 400),
    ("relative-target", req(b"GET echo HTTP/1.1"), 400),
    ("http09", b"GET /echo\r\n\r\n", 400),
    ("lowercase-version", req(b"GET /echo http/1.1"), 400),
    ("version-11", req(b"GET /echo HTTP/11"), 400),
    ("trailing-space-after-version", req(b"GET /echo HTTP/1.1 "), 400),
    ("http2-version", req(b"GET /echo HTTP/2.0"), 505),
    ("http12-version", req(b"GET /echo HTTP/1.2"), 505),
    ("connect", req(b"CONNECT e2e.test:443 HTTP/1.1", b"Host: e2e.test:443\r\n"), 405),
    ("connect-without-port", req(b"CONNECT e2e.test HTTP/1.1", b"Host: e2e.test\r\n"), 400),
    ("connect-origin-form", req(b"CONNECT /echo HTTP/1.1"), 400),
    # Host.
    ("missing-host", req(b"GET /echo HTTP/1.1", b"Accept: */*\r\n"), 400),
    ("two-hosts", req(b"GET /echo HTTP/1.1", b"Host: a\r\nHost: b\r\n"), 400),
    ("host-with-space", req(b"GET /echo HTTP/1.1", b"Host: a b\r\n"), 400),
    ("host-with-userinfo", req(b"GET /echo HTTP/1.1", b"Host: evil@e2e.test\r\n"), 400),
    ("host-with-path", req(b"GET /echo HTTP/1.1", b"Host: e2e.test/admin\r\n"), 400),
    # Limits and expectations.
    ("request-line-too-long", req(b"GET /" + b"a" * 9000 + b" HTTP/1.1"), 414),
    ("header-section-too-large", req(b"GET /echo HTTP/1.1", H + b"X-Big: " + b"a" * 40000 + b"\r\n"), 431),
    ("too-many-fields", req(b"GET /echo HTTP/1.1", H + b"".join(b"X-%d: v\r\n" % i for i in range(120))), 431),
    ("expect-unknown", req(b"GET /echo HTTP/1.1", H + b"Expect: 200-ok\r\n"), 417),
]

ACCEPTED = [
    # (id, raw request, what the origin must see: method, path, and header checks)
    ("absolute-form", req(b"GET http://e2e.test/echo?q=1 HTTP/1.1", b"Host: other\r\n"), "/echo?q=1", {"host": "e2e.test"}),
    ("cl-identical-list", req(POST, H + b"Content-Length: 5, 5\r\n", b"hello"), "/echo", {"content-length": "5"}),
    ("cl-ows", req(POST, H + b"Content-Length:  5 \r\n", b"hello"), "/echo", {"content-length": "5"}),
    ("te-case-insensitive", req(POST, H + b"Transfer-Encoding: Chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), "/echo",
     {"transfer-encoding": "chunked"}),
    ("te-tab-ows", req(POST, H + b"Transfer-Encoding:\tchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"), "/echo",
     {"transfer-encoding": "chunked"}),
    ("host-ipv6-literal", req(b"GET /echo HTTP/1.1", b"Host: [::1]:8080\r\n"), "/echo", {"host": "[::1]:8080"}),
    ("obs-text-in-value", req(b"GET /echo HTTP/1.1", H + b"X-Name: caf\xe9\r\n"), "/echo", {"x-name": "caf\xe9"}),
    ("one-leading-empty-line", b"\r\n" + req(b"GET /echo HTTP/1.1"), "/echo", {}),
]

RESPONSES = [
    ("cl-and-te", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("conflicting-cl", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    ("bad-cl", b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"),
    ("te-gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"),
    ("bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    ("obs-fold", b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok"),
    ("nul-in-header", b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok"),
    ("space-before-colon", b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"),
    ("bad-status", b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok"),
    ("status-out-of-range", b"HTTP/1.1 600 Nope\r\nContent-Length: 2\r\n\r\nok"),
    ("http2-version", b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ("garbage", b"hello there\r\n\r\n"),
    ("switching-unasked", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One origin and one proxy for the whole table (the cases must not disturb them)."""
    from conftest import require_binary

    origin = Origin()
    port = free_port()
    proxy = start_turnout(require_binary(), tmp_path_factory.mktemp("hardening"),
                          make_config(port, {"blue": [origin.addr], "green": [origin.addr]}, "blue"), port)
    try:
        yield proxy, origin
    finally:
        proxy.stop()
        origin.stop()


def _sentinel(proxy, origin, name):
    """A valid request after each case: the origin must see it, and nothing else new."""
    with RawConn(proxy.port) as c:
        assert c.request("GET", f"/sentinel/{name}").status == 404
    return f"/sentinel/{name}"


def test_tables_are_large_enough():
    assert len(REQUESTS) >= 60 and len({n for n, _, _ in REQUESTS}) == len(REQUESTS)


@pytest.mark.parametrize("name,wire,status", REQUESTS, ids=[c[0] for c in REQUESTS])
def test_refused_request(shared, name, wire, status):
    proxy, origin = shared
    before = len(origin.requests)
    with RawConn(proxy.port, timeout=5) as c:
        c.send(wire)
        try:
            r = c.read_response()
        except (PeerClosed, ConnectionResetError) as e:
            pytest.fail(f"no {status} answer, the connection ended: {e!r}")
        assert r.status == status, f"{name}: got {r.status} {r.headers}"
        assert r.has_token("Connection", "close"), "the connection must close after a refused request"
        with pytest.raises((PeerClosed, ConnectionResetError)):
            c.read_response()  # and it does: nothing else comes
    path = _sentinel(proxy, origin, name)
    assert [q["path"] for q in origin.requests[before:]] == [path], f"{name}: the origin saw {origin.requests[before:]}"


@pytest.mark.parametrize("name,wire,path,expect", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_request_is_normalized(shared, name, wire, path, expect):
    proxy, origin = shared
    with RawConn(proxy.port, timeout=5) as c:
        c.send(wire)
        r = c.read_response()
        assert r.status == 200, f"{name}: {r.status}"
        seen = r.json()
    assert seen["path"] == path
    headers = {}
    for k, v in seen["headers"]:
        headers.setdefault(k.lower(), v)
    for k, v in expect.items():
        assert headers.get(k) == v, f"{name}: origin saw {k}: {headers.get(k)!r}"
    # Framing is regenerated: never both length and chunked, never a list.
    assert not ("content-length" in headers and "transfer-encoding" in headers)


def test_request_after_connection_close_is_not_forwarded(shared):
    proxy, origin = shared
    before = len(origin.requests)
    with RawConn(proxy.port, timeout=5) as c:
        c.send(b"GET /status/204 HTTP/1.1\r\nHost: e2e.test\r\nConnection: close\r\n\r\n"
               b"GET /smuggled HTTP/1.1\r\nHost: e2e.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 204
        with pytest.raises((PeerClosed, ConnectionResetError)):
            c.read_response()
    time.sleep(0.2)
    assert [q["path"] for q in origin.requests[before:]] == ["/status/204"]


@pytest.mark.parametrize("name,response", RESPONSES, ids=[c[0] for c in RESPONSES])
def test_invalid_response_becomes_502_and_is_not_reused(turnout, raw_origin_factory, name, response):
    served = []

    def respond(sock, request):
        served.append(request["conn"])
        if request["path"] == "/good":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return True
        sock.sendall(response)
        return True  # keep the connection: the proxy must be the one to drop it

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    with RawConn(proxy.port, timeout=5) as c:
        assert c.request("GET", "/good").status == 200
        r = c.request("GET", "/bad")
        assert r.status == 502, f"{name}: {r.status} {r.body[:100]!r}"
        assert b"hello" not in r.body and b"ok" != r.body
    with RawConn(proxy.port, timeout=5) as c:
        assert c.request("GET", "/good").status == 200
    # The connection that carried the bad response was not used again.
    assert served[0] == served[1] and served[2] != served[1], served


def test_invalid_chunked_response_body_cuts_the_client_off(turnout, raw_origin_factory):
    def respond(sock, request):
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
        return True

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    with RawConn(proxy.port, timeout=5) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: e2e.test\r\n\r\n")
        with pytest.raises((PeerClosed, ConnectionResetError, ValueError)):
            c.read_response()  # the head was already sent: the body ends short, never with the bad bytes


def test_body_over_the_limit_gets_413(turnout, origin):
    proxy = turnout([origin.addr], limits={"max_body_size": "1KiB"})
    with RawConn(proxy.port, timeout=5) as c:
        r = c.request("POST", "/upload", body=b"x" * 2000)
        assert r.status == 413
    with RawConn(proxy.port, timeout=5) as c:
        c.send(req(POST, H + b"Transfer-Encoding: chunked\r\n", b"400\r\n" + b"x" * 1024 + b"\r\n400\r\n" + b"y" * 1024
                   + b"\r\n0\r\n\r\n"))
        assert c.read_response().status == 413
    with RawConn(proxy.port, timeout=5) as c:
        assert c.request("POST", "/upload", body=b"x" * 1000).status == 200
    assert len(origin.requests) == 1


def test_refused_body_is_drained_not_reset(turnout, origin):
    # A client that asked to close sends a head whose body is over the limit, reads the
    # 413, and only then sends its body. The proxy must linger and discard that body (as
    # nginx's lingering close does) rather than close at once and reset the connection,
    # which can destroy the answer before a slower client reads it.
    import time

    proxy = turnout([origin.addr], limits={"max_body_size": "1KiB"})
    with RawConn(proxy.port, timeout=5) as c:
        c.send(b"POST /upload HTTP/1.0\r\nHost: e2e.test\r\nContent-Length: 300000\r\n\r\n")
        r = c.read_response()
        assert r.status == 413
        time.sleep(0.2)
        for _ in range(30):
            c.send(b"z" * 10_000)  # a reset would surface here as ConnectionResetError/BrokenPipeError
            time.sleep(0.005)
        assert c.wait_closed(5.0)
    assert origin.requests == []

"""Self-checks of the test origins and client helpers, run directly (no proxy). If these
fail, the end-to-end results mean nothing."""

import hashlib
import http.client
import os

from client import RawConn, build_request, chunked, pattern_bytes, pattern_sha256, ws_accept_key_check
from origins import ws_frame, ws_read_frame


def test_pattern_is_position_dependent():
    a = pattern_bytes(3 * 65536)
    assert a[:65536][8:] == a[65536:131072][8:]
    assert a[:65536] != a[65536:131072]
    assert pattern_sha256(3 * 65536) == hashlib.sha256(a).hexdigest()


def test_origin_echo_preserves_header_order_and_spelling(origin):
    with RawConn(origin.port) as c:
        r = c.request("GET", "/echo?x=1", headers=[("X-Zeta", "1"), ("x-alpha", "2"), ("X-Dup", "a"), ("X-Dup", "b")])
        assert r.status == 200
        j = r.json()
        assert j["headers"] == [["Host", "e2e.test"], ["X-Zeta", "1"], ["x-alpha", "2"], ["X-Dup", "a"], ["X-Dup", "b"]]
        assert j["path"] == "/echo?x=1"
        # keep-alive on the origin itself
        r2 = c.request("POST", "/echo", body=b"hello")
        assert r2.json()["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert origin.connections_accepted == 1
    assert len(origin.requests) == 2


def test_origin_bytes_chunked_close_status(origin):
    with RawConn(origin.port) as c:
        r = c.request("GET", "/bytes/200000")
        assert r.framing == "length" and r.body == pattern_bytes(200000)
        r = c.request("GET", "/chunked/200000")
        assert r.framing == "chunked" and r.body == pattern_bytes(200000)
        assert r.trailers == [("X-Body-Sha256", pattern_sha256(200000))]
        r = c.request("HEAD", "/bytes/1000")
        assert r.header("Content-Length") == "1000" and r.body == b""
        for code in (204, 304):
            r = c.request("GET", f"/status/{code}")
            assert r.status == code and r.body == b""
        r = c.request("GET", "/status/418")
        assert r.status == 418
        r = c.request("GET", "/close/100000")
        assert r.framing == "close" and r.body == pattern_bytes(100000)


def test_origin_upload_chunked_and_expect(origin):
    body = os.urandom(300000)
    with RawConn(origin.port) as c:
        c.send(build_request("POST", "/upload", [("Transfer-Encoding", "chunked")])
               + chunked([body[:1], body[1:70000], body[70000:]], trailers=[("X-T", "1")]))
        r = c.read_response()
        assert r.json() == {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}
        assert origin.requests[-1]["trailers"] == [["X-T", "1"]]
        c.send(build_request("POST", "/upload", [("Content-Length", str(len(body))), ("Expect", "100-continue")]))
        r = c.read_response()
        assert r.status == 100
        c.send(body)
        r = c.read_response()
        assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()


def test_origin_with_http_client_streaming(origin):
    n = 5 * 1024 * 1024
    conn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    try:
        conn.putrequest("POST", "/upload")
        conn.putheader("Content-Length", str(n))
        conn.endheaders()
        from client import pattern_chunks
        for chunk in pattern_chunks(n):
            conn.send(chunk)
        resp = conn.getresponse()
        assert resp.status == 200
        import json
        assert json.loads(resp.read())["sha256"] == pattern_sha256(n)
    finally:
        conn.close()


def test_raw_origin_interim(raw_origin_factory):
    def respond(sock, req):
        sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        return True

    o = raw_origin_factory(respond)
    with RawConn(o.port) as c:
        c.send(build_request("GET", "/"))
        r = c.read_response()
        assert r.status == 103 and r.header("Link")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello"
    assert o.requests[0]["path"] == "/"


def test_ws_origin_echo(ws_origin):
    with RawConn(ws_origin.port) as c:
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        c.send(build_request("GET", "/ws", [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]))
        r = c.read_response()
        assert r.status == 101
        assert ws_accept_key_check(key, r.header("Sec-WebSocket-Accept"))
        big = os.urandom(100000)
        c.send(ws_frame(0x1, b"hello", mask=True) + ws_frame(0x2, big, mask=True))
        assert ws_read_frame(c) == (0x1, b"hello")
        assert ws_read_frame(c) == (0x2, big)
        c.send(ws_frame(0x8, b"\x03\xe8", mask=True))
        assert ws_read_frame(c)[0] == 0x8

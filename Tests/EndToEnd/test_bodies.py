"""Message bodies and framing: chunked both ways, close-delimited responses re-framed,
Expect: 100-continue, interim 1xx relayed."""

import hashlib
import os
import time

from client import RawConn, build_request, chunked, curl, pattern_bytes


def test_chunked_request_with_trailer_reaches_origin(proxy, origin):
    body = os.urandom(200_000)
    pieces = [body[:1], body[1:1000], body[1000:70_000], body[70_000:]]
    with RawConn(proxy.port) as c:
        c.send(build_request("POST", "/upload", [("Transfer-Encoding", "chunked")])
               + chunked(pieces, trailers=[("X-Checksum", "abc")]))
        r = c.read_response()
        assert r.status == 200
        assert r.json() == {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}
        # The connection is still in sync after the trailer.
        r = c.request("GET", "/bytes/10")
        assert r.status == 200 and r.body == pattern_bytes(10)


def test_chunked_request_with_extensions(proxy, origin):
    body = b"hello world"
    wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    with RawConn(proxy.port) as c:
        c.send(build_request("POST", "/upload", [("Transfer-Encoding", "chunked")]) + wire)
        r = c.read_response()
    assert r.json() == {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}


def test_chunked_response_intact(proxy, origin):
    n = 1_000_000
    with RawConn(proxy.port) as c:
        r = c.request("GET", f"/chunked/{n}")
        assert r.status == 200
        assert r.framing in ("chunked", "length")
        assert r.body == pattern_bytes(n)
        r = c.request("GET", "/bytes/10")
        assert r.status == 200


def test_chunked_response_with_curl(proxy, origin):
    r = curl(proxy.url("/chunked/300000"))
    assert r.returncode == 0, r.stderr
    assert r.status == 200 and r.body == pattern_bytes(300000)


def test_close_delimited_response_reframed_for_http11(proxy, origin):
    n = 200_000
    with RawConn(proxy.port) as c:
        r = c.request("GET", f"/close/{n}")
        assert r.status == 200
        assert r.framing in ("chunked", "length"), f"proxy relayed a close-delimited body: {r.headers}"
        assert r.body == pattern_bytes(n)
        r2 = c.request("GET", "/bytes/10")
        assert r2.status == 200 and r2.body == pattern_bytes(10)


def test_expect_100_continue(proxy, origin):
    body = os.urandom(1 << 20)
    with RawConn(proxy.port) as c:
        c.send(build_request("POST", "/upload", [("Content-Length", str(len(body))), ("Expect", "100-continue")]))
        interim = c.read_response()
        assert interim.status == 100, f"expected 100 Continue, got {interim.status} {interim.headers}"
        c.send(body)
        r = c.read_response()
        assert r.status == 200
        assert r.json() == {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}
        assert c.request("GET", "/bytes/10").status == 200


def test_interim_103_relayed(turnout, raw_origin_factory):
    def respond(sock, req):
        sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        time.sleep(0.1)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
        return True

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    with RawConn(proxy.port) as c:
        c.send(build_request("GET", "/hints"))
        r = c.read_response()
        assert r.status == 103, f"expected 103 first, got {r.status}"
        assert r.header("Link") == "</style.css>; rel=preload"
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello"
        r = c.request("GET", "/again")
        assert r.status == 200 and r.body == b"hello"


def test_origin_head_response_with_content_length(turnout, raw_origin_factory):
    # A HEAD response announcing a length but carrying no body must not stall the proxy.
    def respond(sock, req):
        if req["method"] == "HEAD":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n")
        else:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    with RawConn(proxy.port, timeout=5) as c:
        r = c.request("HEAD", "/x")
        assert r.status == 200 and r.header("Content-Length") == "123456"
        r = c.request("GET", "/y")
        assert r.status == 200 and r.body == b"ok"

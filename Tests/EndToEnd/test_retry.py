"""A pooled upstream connection that the origin closed while the proxy was reusing it:
safe requests are retried once on a fresh connection, unsafe ones are not repeated."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from client import RawConn, build_request


def _stale_on_second_request():
    """An origin that answers the first request on each connection with keep-alive and
    then, like a server whose idle timeout just fired, closes the connection when the
    second request arrives, without answering it."""
    seen: dict[int, int] = {}
    lock = threading.Lock()

    def respond(sock, req):
        with lock:
            n = seen.get(req["conn"], 0) + 1
            seen[req["conn"]] = n
        if n >= 2:
            return False  # close without a response byte
        body = f"conn {req['conn']}".encode()
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return True

    return respond


def test_idempotent_request_retried_after_stale_keepalive_close(turnout, raw_origin_factory):
    o = raw_origin_factory(_stale_on_second_request())
    proxy = turnout([o.addr])
    with RawConn(proxy.port) as c:
        first = c.request("GET", "/one")
        assert first.status == 200 and first.body == b"conn 1"
        # Goes out on the pooled connection, which the origin closes: retried on a new one.
        second = c.request("GET", "/two")
        assert second.status == 200, second.body
        assert second.body == b"conn 2"
    paths = [(r["conn"], r["path"]) for r in o.requests]
    assert paths == [(1, "/one"), (1, "/two"), (2, "/two")]


def test_post_with_body_is_not_repeated(turnout, raw_origin_factory):
    o = raw_origin_factory(_stale_on_second_request())
    proxy = turnout([o.addr])
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/warm").status == 200
        c.send(build_request("POST", "/pay", body=b"amount=10"))
        r = c.read_response()
        assert r.status == 502
    posts = [r for r in o.requests if r["method"] == "POST"]
    assert len(posts) == 1, "a non-idempotent request reached the origin more than once"


@contextlib.contextmanager
def _unanswered_member():
    """The address of a listener whose accept queue is full, so a connection attempt to it
    hangs (its SYNs are dropped) until upstream_connect gives up."""
    stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(0)
    fillers = []
    try:
        for _ in range(2):  # the accept queue holds one; the second may already be dropped
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex(stuck.getsockname())
            fillers.append(f)
        time.sleep(0.05)
        yield "127.0.0.1:%d" % stuck.getsockname()[1]
    finally:
        for f in fillers:
            f.close()
        stuck.close()


def test_request_retried_after_a_connect_timeout_onto_a_pooled_connection_is_sent(turnout, origin):
    # Members: the origin, then the hanging one. Round robin sends the first request to the
    # origin (whose connection then waits in the pool) and the second to the hanging member;
    # the retry goes back to the origin and takes the pooled connection. The request must go
    # out on it at once, not wait for upstream_response (a 504 after 5 s).
    with _unanswered_member() as stuck_addr:
        proxy = turnout([origin.addr, stuck_addr], timeouts={"upstream_connect": "300ms", "upstream_response": "5s"})
        with RawConn(proxy.port) as c:
            assert c.request("GET", "/bytes/10").status == 200
            started = time.monotonic()
            r = c.request("GET", "/bytes/20")
            elapsed = time.monotonic() - started
    assert r.status == 200, r.body
    assert elapsed < 2.0, f"answered after {elapsed:.2f}s: the retried request waited for a timeout"
    seen = [(q["conn"], q["path"]) for q in origin.requests]
    assert [path for _, path in seen] == ["/bytes/10", "/bytes/20"]
    assert seen[0][0] == seen[1][0], f"the retry did not take the pooled connection: {seen}"


def test_connect_retried_after_a_connect_timeout_opens_its_own_connection(turnout, raw_origin_factory):
    # As above, but the retried request is a CONNECT: like its first attempt it must not
    # ride the pooled keep-alive connection (a tunnel takes its upstream connection for
    # good), so the member sees it on a connection of its own and the tunnel works.
    def respond(sock, req):
        if req["method"] != "CONNECT":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return True
        sock.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        while data := sock.recv(65536):
            sock.sendall(data)
        return False

    member = raw_origin_factory(respond)
    with _unanswered_member() as stuck_addr:
        proxy = turnout([member.addr, stuck_addr], timeouts={"upstream_connect": "300ms"},
                        connect={"enabled": True, "ports": [443], "pools": ["blue"]})
        with RawConn(proxy.port) as c:
            assert c.request("GET", "/warm").status == 200
        with RawConn(proxy.port) as c:
            c.send(b"CONNECT tunnel.test:443 HTTP/1.1\r\nHost: tunnel.test:443\r\n\r\n")
            assert c.read_response(method="CONNECT").status == 200
            c.send(b"ping")
            assert c.read_exact(4) == b"ping"
    seen = [(q["conn"], q["method"]) for q in member.requests]
    assert [method for _, method in seen] == ["GET", "CONNECT"], seen
    assert seen[0][0] != seen[1][0], f"the retried CONNECT rode the pooled connection: {seen}"

"""CONNECT: refused (405) unless `connect.enabled`; when enabled, forwarded to a member of
the routed pool, tunnelled after its 2xx, and refused for ports outside `connect.ports`."""

import os
import socket
from pathlib import Path

from client import RawConn, free_port
from proxyctl import short_socket_path, start_turnout

ENABLED = {"enabled": True, "ports": [443, 8443], "pools": ["blue"]}


def connect_head(target: str, extra: bytes = b"") -> bytes:
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + extra + b"\r\n"


def test_connect_is_refused_by_default(turnout, connect_origin):
    proxy = turnout([connect_origin.addr])
    with RawConn(proxy.port) as c:
        c.send(connect_head("tunnel.test:443"))
        r = c.read_response()
        assert r.status == 405
        assert c.wait_closed(3.0)
    assert connect_origin.requests == []


def test_connect_tunnels_both_ways_after_member_answers_2xx(turnout, connect_origin):
    proxy = turnout([connect_origin.addr], connect=ENABLED)
    with RawConn(proxy.port) as c:
        # Early tunnel data sent with the head is held until the member says 200.
        c.send(connect_head("tunnel.test:443") + b"early-bytes;")
        r = c.read_response(method="CONNECT")
        assert r.status == 200, r.headers
        assert r.header("X-Tunnel") == "yes"
        # A 2xx to CONNECT has no content: the stray Content-Length is not passed on.
        assert r.header("Content-Length") is None and r.header("Transfer-Encoding") is None
        assert c.read_exact(len(b"early-bytes;")) == b"early-bytes;"
        big = os.urandom(400_000)
        c.send(big)
        assert c.read_exact(len(big)) == big
        for i in range(20):
            msg = b"message %d\n" % i
            c.send(msg)
            assert c.read_exact(len(msg)) == msg
        # Half-close: the member sees EOF and ends the tunnel; the proxy closes the client.
        c.sock.shutdown(socket.SHUT_WR)
        assert c.wait_closed(5.0), "the tunnel stayed open after both sides finished"
    seen = connect_origin.requests
    assert len(seen) == 1
    assert (seen[0]["method"], seen[0]["path"]) == ("CONNECT", "tunnel.test:443")
    names = {k.lower() for k, _ in seen[0]["headers"]}
    assert "x-forwarded-for" in names
    records = [rec for rec in proxy.wait_access_records(1) if rec.get("method") == "CONNECT"]
    assert len(records) == 1 and records[0].get("status") == 200, records


def test_connect_to_port_not_allowed_is_403_and_never_forwarded(turnout, connect_origin):
    proxy = turnout([connect_origin.addr], connect=ENABLED)
    for target in ("tunnel.test:22", "tunnel.test:80", "[::1]:25"):
        with RawConn(proxy.port) as c:
            c.send(connect_head(target))
            r = c.read_response(method="CONNECT")
            assert r.status == 403, target
            assert r.has_token("Connection", "close")
            assert c.wait_closed(3.0)
    assert connect_origin.requests == []


def test_connect_with_content_or_bad_authority_is_400(turnout, connect_origin):
    proxy = turnout([connect_origin.addr], connect=ENABLED)
    cases = [
        connect_head("tunnel.test:443", b"Content-Length: 5\r\n") + b"hello",
        connect_head("tunnel.test:443", b"Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n",
        b"CONNECT tunnel.test HTTP/1.1\r\nHost: tunnel.test\r\n\r\n",
        b"CONNECT /tunnel.test:443 HTTP/1.1\r\nHost: tunnel.test\r\n\r\n",
        b"CONNECT http://tunnel.test:443/ HTTP/1.1\r\nHost: tunnel.test\r\n\r\n",
        b"CONNECT user@tunnel.test:443 HTTP/1.1\r\nHost: tunnel.test\r\n\r\n",
    ]
    for raw in cases:
        with RawConn(proxy.port) as c:
            c.send(raw)
            r = c.read_response(method="CONNECT")
            assert r.status == 400, raw
            assert c.wait_closed(3.0)
    assert connect_origin.requests == []


def test_member_refusal_is_relayed_and_the_connection_closes(turnout, connect_origin):
    # The member refuses a target on 8443 (allowed by the proxy): its answer reaches the
    # client as a normal response and the client's early bytes never turn into a request.
    proxy = turnout([connect_origin.addr], connect=ENABLED)
    with RawConn(proxy.port) as c:
        c.send(connect_head("tunnel.test:8443") + b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(method="CONNECT")
        assert r.status == 403
        assert r.body == b"refused"
        assert c.wait_closed(3.0)
    assert [q["path"] for q in connect_origin.requests] == ["tunnel.test:8443"]


def test_tunnel_ends_when_the_member_closes(turnout, connect_origin):
    # The member answers 2xx (with framing fields a 2xx to CONNECT must not carry, which
    # are ignored), sends "bye" and closes; the client has not closed, yet the tunnel ends
    # once "bye" is delivered (RFC 9110 §9.3.6), not at the idle timeout.
    proxy = turnout([connect_origin.addr], connect=ENABLED, timeouts={"body_idle": "30s"})
    with RawConn(proxy.port) as c:
        c.send(connect_head("bye.test:443"))
        r = c.read_response(method="CONNECT")
        assert r.status == 200 and r.header("Transfer-Encoding") is None
        assert c.read_exact(3) == b"bye"
        assert c.wait_closed(3.0), "the tunnel outlived the member's close"


def test_connect_only_reaches_pools_listed_in_connect_pools(turnout, origin, connect_origin):
    # blue is an ordinary origin and must never see a CONNECT; green terminates tunnels
    # and gets them by a host rule on the CONNECT target (the Host field does not count).
    proxy = turnout(pools={"blue": [origin.addr], "green": [connect_origin.addr]}, active="blue",
                    connect={"enabled": True, "ports": [443], "pools": ["green"]},
                    routing={"rules": [{"host": "tunnel.test", "active": "green"}]})
    with RawConn(proxy.port) as c:
        c.send(b"CONNECT other.test:443 HTTP/1.1\r\nHost: tunnel.test\r\n\r\n")
        r = c.read_response(method="CONNECT")
        assert r.status == 403
        assert c.wait_closed(3.0)
    with RawConn(proxy.port) as c:
        c.send(b"CONNECT tunnel.test:443 HTTP/1.1\r\nHost: other.test\r\n\r\nping")
        assert c.read_response(method="CONNECT").status == 200
        assert c.read_exact(4) == b"ping"
    assert origin.requests == []
    assert [q["path"] for q in connect_origin.requests] == ["tunnel.test:443"]


def test_shipped_connect_example(turnout_bin, tmp_path, connect_origin):
    """config/examples/connect-tunnel.yaml, as shipped but for its addresses."""
    text = (Path(__file__).resolve().parents[2] / "config/examples/connect-tunnel.yaml").read_text()
    port = free_port()
    shipped = text
    text = text.replace("0.0.0.0:8080", f"127.0.0.1:{port}")
    text = text.replace("[10.0.3.10:3128, 10.0.3.11:3128]", f"[{connect_origin.addr}]")
    assert text != shipped
    text += f"admin:\n  socket: {short_socket_path()}\n"
    proxy = start_turnout(turnout_bin, tmp_path / "shipped", text, port)
    try:
        with RawConn(port) as c:
            c.send(connect_head("tunnel.test:443") + b"ping")
            assert c.read_response(method="CONNECT").status == 200
            assert c.read_exact(4) == b"ping"
        with RawConn(port) as c:
            c.send(connect_head("tunnel.test:25"))
            assert c.read_response(method="CONNECT").status == 403
    finally:
        proxy.stop()

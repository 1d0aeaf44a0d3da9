"""Upgrade (WebSocket) tunnelling: 101 relayed, then bytes flow both ways."""

import base64
import os

from client import RawConn, build_request, ws_accept_key_check
from origins import header_value, ws_frame, ws_read_frame


def test_websocket_echo_through_proxy(turnout, ws_origin):
    proxy = turnout([ws_origin.addr])
    c, r, key = _open_websocket(proxy.port)
    with c:
        assert (r.header("Upgrade") or "").lower() == "websocket"
        assert r.has_token("Connection", "upgrade")
        assert ws_accept_key_check(key, r.header("Sec-WebSocket-Accept"))

        c.send(ws_frame(0x1, b"hello through turnout", mask=True))
        assert ws_read_frame(c) == (0x1, b"hello through turnout")

        big = os.urandom(300_000)
        c.send(ws_frame(0x2, big, mask=True))
        assert ws_read_frame(c) == (0x2, big)

        for i in range(20):
            msg = b"msg %d" % i
            c.send(ws_frame(0x1, msg, mask=True))
            assert ws_read_frame(c) == (0x1, msg)

        c.send(ws_frame(0x8, b"\x03\xe8", mask=True))
        assert ws_read_frame(c) == (0x8, b"\x03\xe8")
        assert c.wait_closed(5.0), "proxy kept the tunnel open after the origin closed"

    seen = ws_origin.requests[0]
    assert (header_value(seen["headers"], "Upgrade") or "").lower() == "websocket"
    assert "upgrade" in (header_value(seen["headers"], "Connection") or "").lower()
    # The tunnel's access-log line is written when it ends, from a copy of the head
    # (tunnel bytes reuse the client buffer), and the proxy is still up afterwards.
    records = proxy.wait_access_records(1)
    assert [(r["method"], r["path"], r["status"]) for r in records] == [("GET", "/chat", 101)]
    assert records[0]["bytes_in"] > 300_000 and records[0]["bytes_out"] > 300_000
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/after").status in (200, 426)


def test_upgrade_refused_by_origin_is_plain_response(turnout, origin):
    # The HTTP origin does not upgrade; the answer is an ordinary response and the
    # connection keeps working as HTTP.
    proxy = turnout([origin.addr])
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/echo?up=1", headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                                    ("Sec-WebSocket-Version", "13")])
        assert r.status == 200
        if r.has_token("Connection", "close"):
            assert c.wait_closed(3.0)
            return
        r = c.request("GET", "/echo?after=1")
        assert r.status == 200 and r.json()["path"] == "/echo?after=1"


def _open_websocket(port: int):
    """A WebSocket handshake through the proxy: (connection, the 101 response, the key sent)."""
    c = RawConn(port)
    key = base64.b64encode(os.urandom(16)).decode()
    c.send(build_request("GET", "/chat", [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]))
    r = c.read_response()
    assert r.status == 101, f"{r.status} {r.headers}"
    return c, r, key


def test_idle_tunnels_hold_no_buffer_memory(turnout, ws_origin):
    # A WebSocket that is quiet between messages (most of them, most of the time) holds
    # no I/O buffer: each of its four buffers goes back to the worker's pool once what it
    # held was passed on, as an idle keep-alive connection's do. Each tunnel here first
    # moves a 40 000-byte message both ways, which fills (touches) a block in each
    # direction; a tunnel that kept its blocks would cost about 40 KiB of RSS.
    proxy = turnout([ws_origin.addr])
    message = os.urandom(40_000)
    warm = [_open_websocket(proxy.port)[0] for _ in range(8)]
    for c in warm:
        c.send(ws_frame(0x2, message, mask=True))
        assert ws_read_frame(c) == (0x2, message)
    before = proxy.rss_kib()
    count = 500
    tunnels = []
    try:
        for _ in range(count):
            c = _open_websocket(proxy.port)[0]
            tunnels.append(c)
            c.send(ws_frame(0x2, message, mask=True))
            assert ws_read_frame(c) == (0x2, message)
        grown = proxy.rss_kib() - before
        assert grown < count * 12, f"{count} idle tunnels grew the RSS by {grown} KiB ({grown / count:.1f} KiB each)"
        # Released buffers come back when the tunnel speaks again.
        for c in tunnels[::50]:
            c.send(ws_frame(0x1, b"still here", mask=True))
            assert ws_read_frame(c) == (0x1, b"still here")
    finally:
        for c in tunnels + warm:
            c.close()

"""What goes on the wire: the TCP segments the proxy sends a client, captured on the
loopback interface with an AF_PACKET socket (Linux, root; skipped otherwise).

A response after which the connection closes ends with a segment that carries the FIN as
well (one packet and one wake-up of the client instead of two); a keep-alive response
carries no FIN and is not held back. A response head that came from the origin without its
body waits for the body's first bytes (in the buffers for a small body, in the splice pipe
for a large one), so the head is never a segment of its own, and an upstream that fails
before the body gets the client a 502 or 504 rather than a head with nothing after it."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest

from client import RawConn, build_request, pattern_bytes

FIN, PSH = 0x01, 0x08


class LoopbackCapture:
    """Records (payload length, flags) of every TCP segment sent from `port` on lo (with
    `to_port`, of every segment sent to that port instead)."""

    def __init__(self, port: int | None = None, *, to_port: int | None = None):
        self.port = port
        self.to_port = to_port
        self.segments: list[tuple[int, int]] = []
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        # Room for every frame of a large response even while the reading thread waits
        # (the default buffer drops frames of a 300 KB body); SO_RCVBUFFORCE (root) is
        # not capped by net.core.rmem_max.
        self.sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 16 << 20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        time.sleep(0.2)  # let the last segments arrive
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _run(self):
        while not self._stop.is_set():
            try:
                frame, meta = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            if meta[2] == socket.PACKET_OUTGOING:
                continue  # lo shows each packet twice: keep the incoming copy
            ip = frame[14:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_TCP:
                continue
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            tcp = ip[ihl:total]
            sport, dport = struct.unpack("!HH", tcp[0:4])
            if (dport != self.to_port) if self.to_port is not None else (sport != self.port):
                continue
            offset = (tcp[12] >> 4) * 4
            self.segments.append((len(tcp) - offset, tcp[13]))


def _can_capture() -> bool:
    if not hasattr(socket, "AF_PACKET") or os.geteuid() != 0:
        return False
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003)).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _can_capture(), reason="needs root and AF_PACKET to capture on lo")


def _read_until_eof(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


@pytest.mark.parametrize("size", [64, 5000])
def test_last_segment_of_a_response_before_close_carries_the_fin(proxy, size):
    with LoopbackCapture(proxy.port) as cap:
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        try:
            s.sendall(build_request("GET", f"/bytes/{size}", headers=[("Connection", "close")]))
            data = _read_until_eof(s)
        finally:
            s.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(pattern_bytes(size))
    carrying = [(n, f) for n, f in cap.segments if n > 0 or f & FIN]
    assert sum(n for n, _ in carrying) == len(data), cap.segments
    assert carrying[-1][1] & FIN and carrying[-1][0] > 0, f"the FIN went in a segment of its own: {cap.segments}"
    assert sum(1 for _, f in cap.segments if f & FIN) == 1


def test_keepalive_response_is_sent_at_once_without_fin(proxy):
    with LoopbackCapture(proxy.port) as cap:
        with RawConn(proxy.port, timeout=5) as c:
            for _ in range(3):
                started = time.monotonic()
                r = c.request("GET", "/bytes/64")
                assert r.status == 200 and r.body == pattern_bytes(64)
                # Nothing held back for a later send: the answer comes well before any
                # delayed-push timer (200 ms) could have released it.
                assert time.monotonic() - started < 0.15
            during = list(cap.segments)
    assert not any(f & FIN for _, f in during), during


# A 10-byte body is copied through the proxy's buffers; 300,000 bytes are spliced through a
# pipe, where a held head waits ahead of its body.
BODY_SIZES = [10, 300_000]


def test_a_head_sent_apart_from_its_small_body_reaches_the_client_with_it(turnout, raw_origin_factory):
    # An origin that writes the head and then the body (nginx before a sendfile) has the
    # proxy read them apart. Sent at once, the head would be a segment of its own, and the
    # client's kernel answers two short segments with an immediate ACK. The proxy holds a
    # head whose small body has not come until its first bytes do: one segment.
    def respond(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n")
        time.sleep(0.1)
        sock.sendall(b"0123456789")
        return True

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    with LoopbackCapture(proxy.port) as cap:
        with RawConn(proxy.port, timeout=5) as c:
            for _ in range(3):
                r = c.request("GET", "/split")
                assert r.status == 200 and r.body == b"0123456789"
    data = [n for n, _ in cap.segments if n > 0]
    assert len(data) == 3, f"expected one segment per response, got {cap.segments}"


def test_a_head_sent_apart_from_its_spliced_body_leaves_with_the_body(turnout, raw_origin_factory):
    # The same for a body spliced through a pipe: the head waits in the pipe ahead of the
    # body, and the first segment the client gets carries body bytes too, in every response.
    body = pattern_bytes(300_000)

    def respond(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        time.sleep(0.1)
        sock.sendall(body)
        return True

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    firsts = []
    with RawConn(proxy.port, timeout=5) as c:
        for _ in range(3):
            with LoopbackCapture(proxy.port) as cap:
                r = c.request("GET", "/split-large")
            assert r.status == 200 and r.body == body
            data = [n for n, _ in cap.segments if n > 0]
            assert sum(data) >= len(body), cap.segments
            firsts.append((data[0], sum(data) - len(body)))  # the first segment, the head's length
    for first, head_length in firsts:
        assert first > head_length, f"the head went out alone: first segments and head lengths {firsts}"


@pytest.mark.parametrize("size", BODY_SIZES)
def test_a_held_head_goes_out_when_the_upstream_ends_without_the_body(turnout, raw_origin_factory, size):
    # The wait for the body ends with the upstream: the client gets the head and then the
    # connection closes (the body is incomplete), as when the head was sent at once.
    def respond(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        time.sleep(0.1)
        return False  # close without the body

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    try:
        s.sendall(build_request("GET", "/cut"))
        data = _read_until_eof(s)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200") and b"Content-Length: %d\r\n" % size in data, data
    assert data.endswith(b"\r\n\r\n"), data


@pytest.mark.parametrize("size", BODY_SIZES)
def test_a_head_held_for_a_body_that_never_comes_becomes_a_504(turnout, raw_origin_factory, size):
    # Nothing of the response reached the client while its head waited, so when the body
    # timer fires the client gets a clean 504, and the connection stays usable.
    stall = threading.Event()

    def respond(sock, req):
        if req["path"] == "/stall":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            stall.wait(5)
            return False
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr], timeouts={"body_idle": "300ms"})
    try:
        with RawConn(proxy.port, timeout=5) as c:
            started = time.monotonic()
            r = c.request("GET", "/stall")
            assert r.status == 504, (r.status, r.headers, r.body)
            assert 0.25 < time.monotonic() - started < 3
            r = c.request("GET", "/after")
            assert r.status == 200 and r.body == b"ok"
    finally:
        stall.set()


@pytest.mark.parametrize("size", BODY_SIZES)
def test_a_head_held_when_the_upstream_resets_becomes_a_502(turnout, raw_origin_factory, size):
    # The same when the upstream fails after the head: it never left, so the client gets
    # a 502 in its place.
    def respond(sock, req):
        if req["path"] == "/reset":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            time.sleep(0.1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False  # closed with a reset
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    with RawConn(proxy.port, timeout=5) as c:
        r = c.request("GET", "/reset")
        assert r.status == 502, (r.status, r.headers, r.body)
        r = c.request("GET", "/after")
        assert r.status == 200 and r.body == b"ok"


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_medium_response_goes_out_in_one_segment_once_the_member_is_known_for_them(
        turnout, raw_origin_factory, framing):
    # A 20 KB body is more than one 16 KiB buffer and below the splice line. Read into a
    # buffer, it took two reads and left in two sends (two segments, two wake-ups of the
    # client). Once half of the member's last eight responses were of that size, the proxy
    # reads the next head into a large block: the whole response in one read and one send.
    # A chunked response counts by the size it turned out to have.
    body = pattern_bytes(20_000)
    if framing == "length":
        wire = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    else:
        wire = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body
                + b"\r\n0\r\n\r\n")

    def respond(sock, req):
        sock.sendall(wire)
        return True

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    per_response = []
    with RawConn(proxy.port, timeout=5) as c:
        for _ in range(10):
            with LoopbackCapture(proxy.port) as cap:
                r = c.request("GET", "/medium")
            assert r.status == 200 and r.body == body
            data = [n for n, _ in cap.segments if n > 0]
            assert sum(data) > len(body), cap.segments
            per_response.append(len(data))
    # The first four are read through one buffer, before the history says medium.
    assert per_response == [2] * 4 + [1] * 6, f"data segments per response: {per_response}"


def test_a_medium_request_body_goes_upstream_in_one_segment_after_the_first(turnout, raw_origin_factory):
    # The same for uploads: a 20 KB request body read through one 16 KiB buffer took two
    # reads and reached the upstream in two sends. Once a client's request had a body of
    # that size, its next request is read into a large block: one read, one send.
    body = pattern_bytes(20_000)

    def respond(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    o = raw_origin_factory(respond)
    proxy = turnout([o.addr])
    per_request = []
    with RawConn(proxy.port, timeout=5) as c:
        for _ in range(6):
            with LoopbackCapture(to_port=o.port) as cap:
                r = c.request("POST", "/upload", body=body)
            assert r.status == 200 and r.body == b"ok"
            data = [n for n, _ in cap.segments if n > 0]
            assert sum(data) > len(body), cap.segments
            per_request.append(len(data))
    assert [req["body"] for req in o.requests] == [body] * 6
    assert per_request[1:] == [1] * 5, f"data segments per request to the upstream: {per_request}"

"""Clients that vanish mid-request or mid-response must not leak descriptors, and the
proxy must keep serving."""

import socket
import struct
import time

from client import RawConn, pattern_bytes, pattern_chunks, wait_until


def _baseline(proxy) -> int:
    # Warm up: one request so the upstream pool holds its idle connection, then settle.
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/bytes/10").status == 200
    time.sleep(0.3)
    return proxy.fd_count()


def _assert_back_to_baseline(proxy, baseline):
    # Large bodies move through pipes that the worker keeps for reuse once empty (a pipe
    # left holding bytes is closed): at most one pooled pipe (two fds) may remain here;
    # every other descriptor must be gone.
    ok = wait_until(lambda: proxy.fd_count() - proxy.pipe_fd_count() <= baseline, timeout=2.0, interval=0.05)
    assert ok, f"proxy fds {proxy.fd_count()} ({proxy.pipe_fd_count()} pipe ends) > baseline {baseline} 2s after the client left"
    assert proxy.pipe_fd_count() <= 2, f"{proxy.pipe_fd_count()} pipe ends open after one transfer"
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/bytes/100")
        assert r.status == 200 and r.body == pattern_bytes(100)


def test_client_gone_mid_upload(proxy, origin):
    baseline = _baseline(proxy)
    declared = 10 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: e2e.test\r\nContent-Length: %d\r\n\r\n" % declared)
        sent = 0
        for chunk in pattern_chunks(declared // 2):
            s.sendall(chunk)
            sent += len(chunk)
        assert origin.wait_for_request(lambda r: r["path"] == "/upload", timeout=3), "upload never reached origin"
    finally:
        s.close()
    _assert_back_to_baseline(proxy, baseline)
    up = [r for r in origin.requests if r["path"] == "/upload"]
    assert up and not up[0]["complete"], "origin should never see a complete upload"


def test_client_gone_mid_download(proxy, origin):
    baseline = _baseline(proxy)
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: e2e.test\r\n\r\n" % (50 * 1024 * 1024))
        got = 0
        deadline = time.monotonic() + 10
        while got < (1 << 20) and time.monotonic() < deadline:
            data = s.recv(65536)
            assert data, "proxy closed early"
            got += len(data)
        assert got >= (1 << 20)
    finally:
        s.close()
    _assert_back_to_baseline(proxy, baseline)


def test_client_gone_while_waiting_for_slow_origin(proxy, origin):
    baseline = _baseline(proxy)
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        s.sendall(b"GET /slow/1500 HTTP/1.1\r\nHost: e2e.test\r\n\r\n")
        assert origin.wait_for_request(lambda r: r["path"] == "/slow/1500", timeout=3)
    finally:
        s.close()
    # Either the proxy drops the upstream at once or when the answer arrives (1.5 s).
    ok = wait_until(lambda: proxy.fd_count() <= baseline, timeout=3.5, interval=0.05)
    assert ok, f"proxy fds {proxy.fd_count()} > baseline {baseline}"
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/bytes/10").status == 200


def test_client_reset_while_waiting_for_slow_origin_is_noticed_before_the_answer(proxy, origin):
    # The client fd of a request that waits for its upstream enters epoll only after a short
    # deferral (most such connections close before that); a reset in the meantime must still
    # end the exchange and free the upstream connection long before the origin answers.
    baseline = _baseline(proxy)
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        s.sendall(b"GET /slow/3000 HTTP/1.1\r\nHost: e2e.test\r\n\r\n")
        assert origin.wait_for_request(lambda r: r["path"] == "/slow/3000", timeout=3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    finally:
        s.close()
    started = time.monotonic()
    ok = wait_until(lambda: proxy.fd_count() <= baseline, timeout=1.5, interval=0.02)
    assert ok, f"proxy fds {proxy.fd_count()} > baseline {baseline} {time.monotonic() - started:.2f}s after the reset"
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/bytes/10").status == 200


def test_many_idle_clients_closed_do_not_leak(proxy, origin):
    baseline = _baseline(proxy)
    conns = [RawConn(proxy.port) for _ in range(50)]
    try:
        for c in conns[:25]:
            assert c.request("GET", "/bytes/10").status == 200
    finally:
        for c in conns:
            c.close()
    ok = wait_until(lambda: proxy.fd_count() <= baseline + 1, timeout=2.0, interval=0.05)
    assert ok, f"proxy fds {proxy.fd_count()} vs baseline {baseline}"

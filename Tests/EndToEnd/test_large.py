"""Large transfers through the proxy, streamed at both ends, with the proxy's RSS
sampled throughout: streaming must not buffer whole bodies.

100 MiB each way by default; `TURNOUT_LARGE_MIB=1024` (what `make soak` sets) runs the
same tests with 1 GiB bodies."""

import hashlib
import http.client
import json
import os

import pytest

from client import RssSampler, pattern_chunks, pattern_sha256

SIZE = int(os.environ.get("TURNOUT_LARGE_MIB", "100")) * 1024 * 1024
RSS_LIMIT_KIB = 64 * 1024


def _conn(proxy):
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)


@pytest.mark.timeout(180 + SIZE // (4 << 20))
def test_large_upload_content_length(proxy, origin):
    conn = _conn(proxy)
    try:
        with RssSampler(proxy.pid) as rss:
            conn.putrequest("POST", "/upload")
            conn.putheader("Content-Length", str(SIZE))
            conn.endheaders()
            for chunk in pattern_chunks(SIZE):
                conn.send(chunk)
            resp = conn.getresponse()
            data = resp.read()
        assert resp.status == 200, data[:200]
        assert json.loads(data) == {"sha256": pattern_sha256(SIZE), "length": SIZE}
    finally:
        conn.close()
    assert rss.samples > 0
    print(f"{SIZE >> 20} MiB: proxy RSS peak {rss.max_kib} KiB over {rss.samples} samples")
    assert rss.max_kib < RSS_LIMIT_KIB, f"proxy RSS peaked at {rss.max_kib} KiB during the upload"


@pytest.mark.timeout(180 + SIZE // (4 << 20))
def test_large_upload_chunked(proxy, origin):
    sizes = [65536, 1000, 32768, 7, 65536 * 2]
    conn = _conn(proxy)
    try:
        with RssSampler(proxy.pid) as rss:
            conn.putrequest("POST", "/upload")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            i = 0
            pending = bytearray()
            for chunk in pattern_chunks(SIZE):
                pending += chunk
                while len(pending) >= 200_000:
                    n = sizes[i % len(sizes)]
                    i += 1
                    conn.send(b"%x\r\n" % n + pending[:n] + b"\r\n")
                    del pending[:n]
            while pending:
                n = min(len(pending), sizes[i % len(sizes)])
                i += 1
                conn.send(b"%x\r\n" % n + pending[:n] + b"\r\n")
                del pending[:n]
            conn.send(b"0\r\nX-Trailer: done\r\n\r\n")
            resp = conn.getresponse()
            data = resp.read()
        assert resp.status == 200, data[:200]
        assert json.loads(data) == {"sha256": pattern_sha256(SIZE), "length": SIZE}
    finally:
        conn.close()
    print(f"{SIZE >> 20} MiB: proxy RSS peak {rss.max_kib} KiB over {rss.samples} samples")
    assert rss.max_kib < RSS_LIMIT_KIB, f"proxy RSS peaked at {rss.max_kib} KiB during the chunked upload"


@pytest.mark.timeout(180 + SIZE // (4 << 20))
def test_large_download(proxy, origin):
    conn = _conn(proxy)
    try:
        with RssSampler(proxy.pid) as rss:
            conn.request("GET", f"/bytes/{SIZE}")
            resp = conn.getresponse()
            assert resp.status == 200
            h = hashlib.sha256()
            total = 0
            while True:
                data = resp.read(1 << 20)
                if not data:
                    break
                h.update(data)
                total += len(data)
        assert total == SIZE
        assert h.hexdigest() == pattern_sha256(SIZE)
    finally:
        conn.close()
    print(f"{SIZE >> 20} MiB: proxy RSS peak {rss.max_kib} KiB over {rss.samples} samples")
    assert rss.max_kib < RSS_LIMIT_KIB, f"proxy RSS peaked at {rss.max_kib} KiB during the download"


@pytest.mark.timeout(180 + SIZE // (4 << 20))
def test_download_slow_reader_does_not_buffer(proxy, origin):
    # A client that reads slowly must not make the proxy buffer the origin's body.
    import socket
    import time

    n = 64 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: e2e.test\r\n\r\n" % n)
        with RssSampler(proxy.pid) as rss:
            first = s.recv(65536)
            assert first.startswith(b"HTTP/1.1 200")
            time.sleep(2.0)  # stall: the origin keeps writing, the proxy must apply backpressure
        print(f"{SIZE >> 20} MiB: proxy RSS peak {rss.max_kib} KiB over {rss.samples} samples")
        assert rss.max_kib < RSS_LIMIT_KIB, f"proxy RSS reached {rss.max_kib} KiB while the client stalled"
    finally:
        s.close()


def test_large_download_moves_through_a_pipe(proxy, origin):
    # A large Content-Length body goes from the upstream socket to the client through a
    # kernel pipe (splice), not through user-space buffers: while the client stalls
    # mid-body, the proxy holds a pipe, and the body still arrives intact.
    import socket
    import time

    n = 32 * 1024 * 1024
    before = proxy.pipe_fd_count()
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
    try:
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: e2e.test\r\n\r\n" % n)
        got = bytearray()
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        time.sleep(0.5)  # stalled: the proxy is mid-body
        assert proxy.pipe_fd_count() >= before + 2, "no pipe (read and write end) held during the transfer"
        h = hashlib.sha256(body)
        total = len(body)
        while total < n:
            data = s.recv(1 << 20)
            assert data, f"the proxy closed after {total} of {n} bytes"
            h.update(data)
            total += len(data)
        assert total == n and h.hexdigest() == pattern_sha256(n)
    finally:
        s.close()



@pytest.mark.parametrize("first", [8 * 1024, 100 * 1024])
def test_spliced_download_never_holds_back_what_has_arrived(proxy, origin, first):
    # Whatever part of a spliced body has arrived reaches the client at once when the
    # upstream then pauses, head included: with 8 KiB everything fits the first read and
    # the pipe is still empty, with 100 KiB the pipe carries bytes before the pause. Any
    # batching of the head with later bytes (MSG_MORE, TCP_CORK) must not hold them back.
    import socket
    import time

    n, pause_ms = 1024 * 1024, 1500
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=30)
    try:
        start = time.monotonic()
        s.sendall(b"GET /stall/%d/%d/%d HTTP/1.1\r\nHost: e2e.test\r\n\r\n" % (n, first, pause_ms))
        got = bytearray()
        while b"\r\n\r\n" not in got or len(got.partition(b"\r\n\r\n")[2]) < first:
            data = s.recv(1 << 20)
            assert data, "the proxy closed before the first bytes"
            got += data
        early = time.monotonic() - start
        assert early < pause_ms / 2000, f"the head and first {first} bytes took {early:.3f} s: held back"
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: %d" % n in head.lower()
        h = hashlib.sha256(body)
        total = len(body)
        while total < n:
            data = s.recv(1 << 20)
            assert data, f"the proxy closed after {total} of {n} bytes"
            h.update(data)
            total += len(data)
        assert total == n and h.hexdigest() == pattern_sha256(n)
        assert time.monotonic() - start >= pause_ms / 1000
    finally:
        s.close()

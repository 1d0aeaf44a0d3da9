"""Large transfers through the proxy, streamed at both ends, with the proxy's RSS
sampled throughout: streaming must not buffer whole bodies.

100 MiB each way by default; `TURNOUT_LARGE_MIB=1024` (what `make soak` sets) runs the
same tests with 1 GiB bodies."""

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import time

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


def _get(conn, path):
    conn.request("GET", path, headers={"Host": "e2e.test"})
    r = conn.getresponse()
    return r, r.read()


def test_splice_pipes_hold_a_64_KiB_body_whole(proxy, origin):
    # A default pipe has 16 slots, and a spliced fragment takes one however short it is:
    # a 64 KiB body whose first bytes came with the head needed two splices each way. The
    # proxy's pipes are made 128 KiB (32 slots); the one pooled after a download shows it.
    from client import proc_pipe_sizes

    before = proc_pipe_sizes(proxy.pid)
    conn = _conn(proxy)
    try:
        r, body = _get(conn, "/bytes/%d" % (1 << 20))
        assert r.status == 200 and hashlib.sha256(body).hexdigest() == pattern_sha256(1 << 20)
    finally:
        conn.close()
    pipes = {k: v for k, v in proc_pipe_sizes(proxy.pid).items() if k not in before}
    assert pipes, "no splice pipe kept after a 1 MiB download"
    assert set(pipes.values()) == {32 * os.sysconf("SC_PAGE_SIZE")}, f"pipe capacities {pipes}"


@pytest.mark.parametrize("warmup", [256 * 1024, 20_000])
def test_responses_of_every_size_after_large_or_medium_ones_arrive_whole(proxy, origin, warmup):
    # Once a member's responses were large, the proxy reads the next head with a small
    # first read (one page) and splices the rest; once they were medium (above one buffer,
    # below the splice line), it reads the next head into a large block. Whatever then
    # comes (a small response, a head longer than that page, a body just above or below
    # the splice line or a large block, none) must arrive byte for byte on the same
    # keep-alive connection.
    conn = _conn(proxy)
    try:
        for _ in range(8):
            r, body = _get(conn, "/bytes/%d" % warmup)
            assert r.status == 200 and len(body) == warmup
        cases = [(5_000, 0), (100_000, 6_000), (1 << 20, 0), (20_000, 0), (17_000, 3_000), (65_536, 0),
                 (0, 0), (16_384, 9_000), (300, 0), (200_000, 12_000), (65_536, 4_000),
                 (32_768, 0), (36_000, 0), (37_000, 0), (30_000, 20_000), (60_000, 0), (70_000, 0)]
        for n, pad in cases:
            r, body = _get(conn, "/bytes/%d/%d" % (n, pad) if pad else "/bytes/%d" % n)
            assert r.status == 200, (n, pad)
            assert len(r.getheader("X-Pad") or "") == pad, (n, pad)
            assert len(body) == n and hashlib.sha256(body).hexdigest() == pattern_sha256(n), (n, pad)
        conn.request("HEAD", "/bytes/%d" % (1 << 20), headers={"Host": "e2e.test"})
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Length") == str(1 << 20) and r.read() == b""
        r, body = _get(conn, "/bytes/70000")
        assert len(body) == 70_000 and hashlib.sha256(body).hexdigest() == pattern_sha256(70_000)
    finally:
        conn.close()


@contextlib.contextmanager
def _recvfrom_trace(proxy, tmp_path):
    """strace on the proxy's recvfrom calls, attached (a traced response head shows it)
    before the body runs; yields the trace file, complete once the block has ended."""
    strace = shutil.which("strace")
    assert strace, "strace is not installed (make deps installs it)"
    trace = tmp_path / "recvfrom.trace"
    tracer = subprocess.Popen(
        [strace, "-f", "-qq", "-e", "trace=recvfrom", "-s", "12", "-o", str(trace), "-p", str(proxy.pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        conn = _conn(proxy)
        try:
            deadline = time.monotonic() + 10
            while b'"HTTP/1.1 200' not in (trace.read_bytes() if trace.exists() else b""):
                if tracer.poll() is not None:
                    why = tracer.stderr.read().decode()
                    if "Operation not permitted" in why:  # ptrace_scope, or no CAP_SYS_PTRACE
                        pytest.skip(f"strace may not attach here: {why.strip()}")
                    raise AssertionError(f"strace could not attach: {why}")
                assert time.monotonic() < deadline, "strace shows no response head after 10 s"
                _get(conn, "/bytes/10")
                time.sleep(0.05)
        finally:
            conn.close()
        yield trace
        time.sleep(0.2)
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)


def test_the_first_read_of_a_members_heads_follows_the_size_of_its_responses(proxy, origin, tmp_path):
    # The size the first read of a response head asks for follows the member's last eight
    # responses: the whole buffer (16 KiB) while they were small, so that a small response
    # takes one read; a large block (64 KiB) once half were medium (20 KB: one read instead
    # of two); one page once half were large, so that a large body goes through the pipe
    # nearly whole instead of 16 KiB of it through user space. strace shows what each
    # head's recvfrom asked for.
    with _recvfrom_trace(proxy, tmp_path) as trace:
        conn = _conn(proxy)
        try:
            for _ in range(8):
                r, body = _get(conn, "/bytes/1000")
                assert len(body) == 1000
            for _ in range(8):
                r, body = _get(conn, "/bytes/20000")
                assert len(body) == 20_000 and hashlib.sha256(body).hexdigest() == pattern_sha256(20_000)
            for _ in range(8):
                r, body = _get(conn, "/bytes/%d" % (256 * 1024))
                assert len(body) == 256 * 1024 and hashlib.sha256(body).hexdigest() == pattern_sha256(256 * 1024)
        finally:
            conn.close()
    pattern = re.compile(r'recvfrom\(\d+, "HTTP/1\.1 200[^"]*"(?:\.\.\.)?, (\d+),')
    heads = [int(m.group(1)) for m in pattern.finditer(trace.read_text())]
    assert len(heads) >= 24, f"{len(heads)} response heads traced"
    small_phase, medium_phase, large_phase = heads[-24:-16], heads[-16:-8], heads[-8:]
    assert small_phase == [16384] * 8, f"reads after small responses asked for {small_phase}"
    # Each phase starts with a history of eight of the phase before: four make half.
    assert medium_phase == [16384] * 4 + [65536] * 4, f"reads during the medium responses asked for {medium_phase}"
    assert large_phase == [65536] * 4 + [4096] * 4, f"reads during the large responses asked for {large_phase}"


def test_a_request_is_read_into_a_large_block_only_after_a_body_that_did_not_fit_one(proxy, origin, tmp_path):
    # A client connection whose last request did not fit one 16 KiB block (head and body)
    # has its next request read into a 64 KiB block; any other request leaves the next
    # read at 16 KiB. A chunked body counts by the size it reached, not by being chunked;
    # a long head without a body is not a body that did not fit. strace shows what the
    # read of each request head asked for (`X-Step` names the request before it).
    from client import RawConn

    def chunked(body: bytes) -> bytes:
        return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)

    steps = [
        ("small-chunked", [("Transfer-Encoding", "chunked")], chunked(b"x" * 100)),
        ("long-head-no-body", [("Content-Length", "0"), ("X-Pad", "p" * 17_000)], b""),
        ("large-length", [("Content-Length", "20000")], b"y" * 20_000),
        ("small-length", [("Content-Length", "100")], b"z" * 100),
        ("large-chunked", [("Transfer-Encoding", "chunked")], chunked(b"w" * 40_000)),
        ("last", [("Content-Length", "0")], b""),
    ]
    expected = {"small-chunked": 16384, "long-head-no-body": 16384, "large-length": 65536,
                "small-length": 16384, "large-chunked": 65536}
    with _recvfrom_trace(proxy, tmp_path) as trace:
        with RawConn(proxy.port) as c:
            before = "first"
            for name, headers, body in steps:
                head = "POST /echo HTTP/1.1\r\nHost: e2e.test\r\nX-Step: %s\r\n" % before
                head += "".join("%s: %s\r\n" % h for h in headers) + "\r\n"
                c.send(head.encode() + body)
                r = c.read_response("POST")
                assert r.status == 200, (name, r.status)
                before = name
                time.sleep(0.05)  # the proxy's read of the next head starts on an idle connection
    pattern = re.compile(r'recvfrom\(\d+, "POST /echo H"(?:\.\.\.)?, (\d+),')
    asked = [int(m.group(1)) for m in pattern.finditer(trace.read_text())]
    assert len(asked) == len(steps), f"{len(asked)} request heads traced"
    got = dict(zip([s[0] for s in steps[:-1]], asked[1:]))
    assert got == expected, f"the read after each request asked for {got}"


PIPE_SOFT_LIMIT = "/proc/sys/fs/pipe-user-pages-soft"


def test_a_proxy_refused_full_size_pipes_copies_bodies_and_splices_again_later(turnout_bin, origin):
    # An unprivileged process whose user holds more pipe pages than fs.pipe-user-pages-soft
    # gets new pipes of two pages (8 KiB), and may not grow them. Splicing through such a
    # pipe takes a call per 8 KiB; the proxy closes it and copies the body through its
    # buffers instead, skips making pipes for the next 63 large responses, then tries again.
    # The proxy runs as `nobody` (root is exempt from the limit); the limit is lowered to
    # one page for the one download that needs it and restored even on failure. The sysctl
    # is not per namespace: meanwhile every unprivileged process on the machine gets pipes
    # of two pages.
    import shutil
    import tempfile
    from pathlib import Path

    from client import free_port, proc_pipe_sizes
    from proxyctl import make_config, start_turnout

    if os.geteuid() != 0:
        pytest.skip("needs root: sets fs.pipe-user-pages-soft and runs the proxy as nobody")
    with open(PIPE_SOFT_LIMIT) as f:
        soft = f.read().strip()
    try:
        with open(PIPE_SOFT_LIMIT, "w") as f:
            f.write(soft)
    except OSError as e:  # a container with /proc/sys read-only
        pytest.skip(f"{PIPE_SOFT_LIMIT} is not writable here: {e}")
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is not installed"
    # The checkout may sit in a directory only root can enter (mktemp -d): run a copy.
    top = tempfile.mkdtemp(prefix="tpipe")
    proxy = None
    try:
        os.chmod(top, 0o755)
        bin_copy = os.path.join(top, "turnout")
        shutil.copy2(turnout_bin, bin_copy)
        work = os.path.join(top, "w")
        os.mkdir(work)
        os.chmod(work, 0o777)
        port = free_port()
        cfg = make_config(port, {"blue": [origin.addr]}, admin={"socket": os.path.join(work, "admin.sock")})
        proxy = start_turnout(bin_copy, Path(work), cfg, port,
                              prefix=(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"))
        before = proc_pipe_sizes(proxy.pid)
        conn = _conn(proxy)

        def download(n):
            r, body = _get(conn, "/bytes/%d" % n)
            assert r.status == 200 and hashlib.sha256(body).hexdigest() == pattern_sha256(n), n

        def new_pipes():
            return {k: v for k, v in proc_pipe_sizes(proxy.pid).items() if k not in before}

        with open(PIPE_SOFT_LIMIT, "w") as f:
            f.write("1")
        try:
            download(1 << 20)
            assert new_pipes() == {}, "the proxy kept a pipe the kernel made small"
        finally:
            with open(PIPE_SOFT_LIMIT, "w") as f:
                f.write(soft)
        # Under the limit again: the next large responses are copied without making a
        # pipe (63 takes skipped; a response might take none), then one is spliced.
        for _ in range(32):
            download(65_536)
        assert new_pipes() == {}, "a pipe was made while takes were to be skipped"
        for tries in range(64):
            download(65_536)
            if new_pipes():
                break
        assert set(new_pipes().values()) == {32 * os.sysconf("SC_PAGE_SIZE")}, \
            f"after {32 + tries + 1} large responses: pipes {new_pipes()}"
        conn.close()
    finally:
        with open(PIPE_SOFT_LIMIT) as f:
            changed = f.read().strip() != soft
        if changed:
            with open(PIPE_SOFT_LIMIT, "w") as f:
                f.write(soft)
        if proxy is not None:
            proxy.stop()
        shutil.rmtree(top, ignore_errors=True)

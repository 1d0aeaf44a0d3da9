"""Many clients at once, each behaving in one of a dozen ways, good and bad: keep-alive
requests, pipelining, `Connection: close`, half-close, slow readers, uploads, resets while
waiting or mid-download, garbage, abandoned heads, bytes after a close request. Every
well-formed exchange must get its whole, correct answer, every malformed one its 400, and
once all clients are gone the proxy must hold none of their sockets and keep serving.

The choices come from a seeded generator (`CHAOS_SEED`, default 1); `CHAOS_SESSIONS`
(default 2000) sets how many client sessions run, 24 at a time: raise it for a soak run
(docs/proxying.md, "Connections")."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import struct
import threading
import time

import pytest

from client import RawConn, build_request, pattern_bytes, recv_until_closed, wait_until

SEED = int(os.environ.get("CHAOS_SEED", "1"))
SESSIONS = int(os.environ.get("CHAOS_SESSIONS", "2000"))
CONCURRENCY = 24
SIZES = (0, 10, 1500, 20_000, 70_000, 250_000)  # 70 000 and up are spliced


def _proxy_tcp_sockets(pid: int):
    """(local port, remote port, TCP state as its hex code) of each TCP socket `pid` holds."""
    inodes = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                yield int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16), fields[3]


def _proxy_client_sockets(pid: int, port: int) -> int:
    """Sockets the proxy holds whose local port is its listening port, the listener
    excepted: its client connections, in whatever TCP state."""
    return sum(1 for local, _, state in _proxy_tcp_sockets(pid) if local == port and state != "0A")


def _run_sessions(jobs) -> None:
    """Runs `jobs` ((label, callable) pairs) CONCURRENCY at a time and fails the test
    with every job that raised, by label."""
    failures: list[str] = []
    lock = threading.Lock()
    todo = iter(jobs)

    def worker():
        while True:
            with lock:
                job = next(todo, None)
            if job is None:
                return
            label, run = job
            try:
                run()
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                with lock:
                    failures.append(f"{label} (seed {SEED}): {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(60.0, len(jobs) * 0.2))
    assert not any(t.is_alive() for t in threads), "client sessions still running: the proxy stopped answering"
    assert not failures, f"{len(failures)} of {len(jobs)} sessions failed:\n" + "\n".join(failures[:20])


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Session:
    def __init__(self, port: int, rng: random.Random) -> None:
        self.port = port
        self.rng = rng

    def expect_body(self, r, n: int) -> None:
        assert r.status == 200, r.status
        assert r.body == pattern_bytes(n), f"body of {len(r.body)} bytes, wanted {n}"

    # --- well-formed clients: every answer must arrive whole ---------------------------

    def keep_alive(self):
        with RawConn(self.port) as c:
            for _ in range(self.rng.randint(1, 4)):
                n = self.rng.choice(SIZES)
                self.expect_body(c.request("GET", f"/bytes/{n}"), n)

    def pipelined(self):
        sizes = [self.rng.choice(SIZES) for _ in range(3)]
        with RawConn(self.port) as c:
            c.send(b"".join(build_request("GET", f"/bytes/{n}") for n in sizes))
            for n in sizes:
                self.expect_body(c.read_response(), n)

    def close_request(self):
        n = self.rng.choice(SIZES)
        with RawConn(self.port) as c:
            self.expect_body(c.request("GET", f"/bytes/{n}", headers=[("Connection", "close")]), n)
            assert c.wait_closed(5.0), "the connection stayed open after a close request"

    def half_close(self):
        n = self.rng.choice(SIZES)
        with RawConn(self.port) as c:
            c.send(build_request("GET", f"/bytes/{n}"))
            c.sock.shutdown(socket.SHUT_WR)
            self.expect_body(c.read_response(), n)
            assert c.wait_closed(5.0)

    def slow_reader(self):
        n = self.rng.choice((70_000, 250_000))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", self.port))
            s.sendall(build_request("GET", f"/bytes/{n}", headers=[("Connection", "close")]))
            data = bytearray()
            while chunk := s.recv(4096):
                data += chunk
                if self.rng.random() < 0.05:
                    time.sleep(0.002)
        finally:
            s.close()
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:80]
        assert body == pattern_bytes(n), f"body of {len(body)} bytes, wanted {n}"

    def upload(self):
        body = self.rng.randbytes(self.rng.choice((1, 5000, 100_000)))
        with RawConn(self.port) as c:
            r = c.request("POST", "/upload", body=body)
            assert r.status == 200, r.status
            got = json.loads(r.body)
            assert got == {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}, got

    def extra_after_close_request(self):
        # Against the rules but harmless: the answer must not be cut by a reset.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", self.port))
            s.sendall(build_request("GET", "/stall/30000/0/20", headers=[("Connection", "close")]))
            time.sleep(self.rng.uniform(0, 0.01))
            s.sendall(build_request("GET", "/bytes/10"))
            # After the whole answer, a reset is the kernel's reply to extra bytes that
            # came after the close; before it, the checks below fail.
            data = recv_until_closed(s)
        finally:
            s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:80]
        assert body == pattern_bytes(30000), f"body of {len(body)} bytes, wanted 30000"

    # --- clients that misbehave or vanish: the proxy must shrug them off ---------------

    def garbage(self):
        with RawConn(self.port) as c:
            c.send(self.rng.choice((b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nBad Field: x\r\n\r\n",
                                    b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")))
            assert c.read_response().status == 400
            assert c.wait_closed(5.0)

    def abandoned_head(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET /bytes/10 HTTP/1.1\r\nHo")
        time.sleep(self.rng.uniform(0, 0.03))
        (_reset if self.rng.random() < 0.5 else socket.socket.close)(s)

    def reset_while_waiting(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(build_request("GET", f"/slow/{self.rng.randint(10, 120)}"))
        time.sleep(self.rng.uniform(0, 0.08))
        _reset(s)

    def reset_mid_download(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(build_request("GET", "/bytes/250000"))
        s.recv(self.rng.choice((1, 4096, 65536)))
        _reset(s)

    def close_mid_upload(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(build_request("POST", "/upload", headers=[("Content-Length", "100000")], body=b"x" * 3000))
        time.sleep(self.rng.uniform(0, 0.02))
        (_reset if self.rng.random() < 0.5 else socket.socket.close)(s)


BEHAVIOURS = [
    ("keep_alive", 5), ("pipelined", 2), ("close_request", 3), ("half_close", 1), ("slow_reader", 1),
    ("upload", 2), ("extra_after_close_request", 1), ("garbage", 1), ("abandoned_head", 1),
    ("reset_while_waiting", 2), ("reset_mid_download", 1), ("close_mid_upload", 1),
]


@pytest.mark.parametrize("workers", [1, 2])
def test_many_clients_behaving_every_way_get_their_answers_and_leave_nothing_behind(turnout, origin, workers):
    proxy = turnout([origin.addr], workers=workers, timeouts={"client_header": "2s"})
    held = lambda: _proxy_client_sockets(proxy.pid, proxy.port)  # noqa: E731
    with RawConn(proxy.port) as c:  # the count sees a client connection
        assert c.request("GET", "/bytes/10").status == 200
        assert held() == 1
    assert wait_until(lambda: held() == 0, timeout=2.0, interval=0.02)
    rng = random.Random(SEED)
    names = [name for name, weight in BEHAVIOURS for _ in range(weight)]
    jobs = []
    for i in range(SESSIONS):
        name, seed = rng.choice(names), rng.getrandbits(32)
        jobs.append((f"session {i} ({name})", getattr(_Session(proxy.port, random.Random(seed)), name)))
    started = time.monotonic()
    _run_sessions(jobs)
    print(f"{SESSIONS} sessions in {time.monotonic() - started:.1f}s")

    # Everything the clients opened is closed by now (resets at once, the abandoned heads
    # at client_header at the latest): the proxy must hold none of those sockets.
    assert wait_until(lambda: held() == 0, timeout=5.0, interval=0.05), f"{held()} client sockets still held"
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/bytes/100")
        assert r.status == 200 and r.body == pattern_bytes(100)
    assert proxy.stderr().count(" critical ") == 0, proxy.stderr()[-2000:]


def _proxy_upstream_sockets(pid: int, port: int) -> dict[str, int]:
    """The proxy's sockets whose remote port is `port`, counted by TCP state (hex code)."""
    states: dict[str, int] = {}
    for _, remote, state in _proxy_tcp_sockets(pid):
        if remote == port:
            states[state] = states.get(state, 0) + 1
    return states


class _UnreliableOrigin:
    """`respond` for a RawOrigin that fails in every way an origin can. On a connection
    that has answered before, a request is dropped a quarter of the time (the connection
    closes without a byte, as when a keep-alive timeout fires just then); a connection's
    first request is always served. Paths: /ok/N (N pattern bytes), /cut/N (the head and
    half the body, then close), /garbage (not HTTP), /rst (a reset before any byte),
    POST /post/ID (echoes the ID)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.served: dict[int, int] = {}

    def __call__(self, sock, req) -> bool:
        with self.lock:
            n = self.served.get(req["conn"], 0)
            drop = n > 0 and self.rng.random() < 0.25
            self.served[req["conn"]] = n + 1
        if drop:
            return False
        parts = req["path"].strip("/").split("/")
        if parts[0] == "ok":
            body = pattern_bytes(int(parts[1]))
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            return True
        if parts[0] == "cut":
            body = pattern_bytes(int(parts[1]))
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body[: len(body) // 2])
            return False
        if parts[0] == "garbage":
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            return False
        if parts[0] == "rst":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if parts[0] == "post":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(parts[1]), parts[1].encode()))
            return True
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return True


@pytest.mark.parametrize("workers", [1, 2])
def test_an_origin_failing_every_way_costs_only_the_requests_it_failed(turnout, raw_origin_factory, workers):
    # Idempotent requests dropped on a reused connection are retried and succeed; a POST
    # with a body is never sent twice (502 instead); a cut body ends the client connection;
    # garbage and resets are 502s. Afterwards no client socket is held, and once the origin
    # goes away every upstream socket is closed.
    origin = raw_origin_factory(_UnreliableOrigin(SEED))
    origin_port = int(origin.addr.rsplit(":", 1)[1])
    proxy = turnout([origin.addr], workers=workers)
    rng = random.Random(SEED + 1)
    sessions = max(200, SESSIONS // 4)
    outcomes: dict[str, int] = {}
    posts_answered: set[str] = set()
    lock = threading.Lock()

    def count(what: str) -> None:
        with lock:
            outcomes[what] = outcomes.get(what, 0) + 1

    def session(i: int, r: random.Random) -> None:
        with RawConn(proxy.port) as c:
            for k in range(r.randint(1, 5)):
                kind = r.choice(("ok", "ok", "ok", "ok", "post", "post", "cut", "garbage", "rst"))
                if kind == "ok":
                    n = r.choice(SIZES)
                    resp = c.request("GET", f"/ok/{n}")
                    assert resp.status == 200, f"GET /ok/{n}: {resp.status} (a dropped GET must be retried)"
                    assert resp.body == pattern_bytes(n)
                elif kind == "post":
                    pid = f"{i}-{k}"
                    resp = c.request("POST", f"/post/{pid}", body=b"x" * r.choice((1, 3000)))
                    assert resp.status in (200, 502), resp.status
                    if resp.status == 200:
                        assert resp.body == pid.encode()
                        with lock:
                            posts_answered.add(pid)
                    else:
                        count("post 502")
                        return  # the proxy may close after a gateway error
                elif kind == "cut":
                    c.send(build_request("GET", "/cut/40000"))
                    head = c.read_until(b"\r\n\r\n")
                    assert head.startswith(b"HTTP/1.1 200"), head[:80]
                    got = bytes(c.buf) + recv_until_closed(c.sock)  # with what came with the head
                    assert len(got) < 40000 and pattern_bytes(40000).startswith(got), len(got)
                    count("cut")
                    return
                else:
                    resp = c.request("GET", f"/{kind}")
                    assert resp.status == 502, f"/{kind}: {resp.status}"
                    count(kind)
                    return
                count(kind)

    seeds = [rng.getrandbits(32) for _ in range(sessions)]
    _run_sessions([(f"session {i}", lambda i=i, seed=seed: session(i, random.Random(seed)))
                   for i, seed in enumerate(seeds)])
    print(f"{sessions} sessions: {outcomes}")
    assert outcomes.get("ok", 0) > 0 and outcomes.get("post 502", 0) > 0, outcomes

    # A POST reached the origin at most once, and every answered one exactly once.
    seen: dict[str, int] = {}
    for q in origin.requests:
        if q["method"] == "POST":
            seen[q["path"]] = seen.get(q["path"], 0) + 1
    repeated = [p for p, n in seen.items() if n > 1]
    assert not repeated, f"POSTs sent to the origin more than once: {repeated[:10]}"
    assert all(seen.get(f"/post/{p}") == 1 for p in posts_answered)

    assert wait_until(lambda: _proxy_client_sockets(proxy.pid, proxy.port) == 0, timeout=5.0, interval=0.05), \
        f"{_proxy_client_sockets(proxy.pid, proxy.port)} client sockets still held"
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/ok/100").status == 200
    assert _proxy_upstream_sockets(proxy.pid, origin_port), "the pool kept no upstream connection"
    origin.stop()  # closes every connection it holds: the pooled ones must go too
    assert wait_until(lambda: not _proxy_upstream_sockets(proxy.pid, origin_port), timeout=5.0, interval=0.05), \
        f"upstream sockets left after the origin went away: {_proxy_upstream_sockets(proxy.pid, origin_port)}"

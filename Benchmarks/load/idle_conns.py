#!/usr/bin/env python3
"""Idle keep-alive connections and keep-alive request bursts for Benchmarks/load/compare.sh.

Standard library only. Two subcommands, each prints one JSON object on stdout:

  idle      Opens COUNT client connections to 127.0.0.1:PORT, sends one complete
            `GET PATH HTTP/1.1` (with Host) on each and reads its whole response, keeping
            every connection open (keep-alive). Then it waits SETTLE seconds, samples the
            VmRSS sum of PIDS, counts the connections that are still open (on both sides),
            closes them all and waits until the server side holds no more of them than it
            did before (or DRAIN_TIMEOUT seconds).

  requests  Sends exactly REQUESTS keep-alive `GET PATH` requests over CONNS connections
            (one request in flight per connection, the total split evenly), reading every
            response whole; for counting the server's system calls per request.

The soft RLIMIT_NOFILE is raised to the hard limit first: COUNT connections need COUNT
descriptors in this process.
"""

import argparse
import errno
import json
import os
import resource
import select
import selectors
import socket
import sys
import time

# /proc/net/tcp states a server still holds a descriptor for: ESTABLISHED, SYN_RECV,
# CLOSE_WAIT (the client has closed, the server not yet). LAST_ACK, FIN_WAIT*, TIME_WAIT and
# CLOSING sockets are ones the server has already closed.
HELD_STATES = {"01", "03", "08"}


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def server_conns(port):
    """Connections whose local end is 127.0.0.1:port (the server side) and still held."""
    want = f":{port:04X}"
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split(None, 4)
            if fields[1].endswith(want) and fields[3] in HELD_STATES:
                n += 1
    return n


class ResponseParser:
    """Incremental HTTP/1.1 response parser: feed() bytes, get back completed responses
    as (status, body_length, keep_alive). Handles Content-Length and chunked bodies."""

    def __init__(self):
        self.buf = b""
        self.head = None  # (status, keep_alive) while a body is being read
        self.remaining = 0  # Content-Length bytes still to come
        self.chunked = False
        self.chunk_state = "size"  # size | data | data_crlf | trailers
        self.body_len = 0

    def feed(self, data):
        self.buf += data
        done = []
        while True:
            if self.head is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buf) > 65536:
                        raise ValueError("response head too large")
                    return done
                lines = self.buf[:end].decode("latin-1").split("\r\n")
                self.buf = self.buf[end + 4:]
                parts = lines[0].split(" ", 2)
                if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                    raise ValueError(f"bad status line {lines[0]!r}")
                status = int(parts[1])
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                keep_alive = "close" not in headers.get("connection", "").lower() and parts[0] == "HTTP/1.1"
                self.head = (status, keep_alive)
                self.body_len = 0
                self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
                self.chunk_state = "size"
                if self.chunked:
                    self.remaining = 0
                elif status in (204, 304) or 100 <= status < 200:
                    self.remaining = 0
                elif "content-length" in headers:
                    self.remaining = int(headers["content-length"])
                else:
                    raise ValueError("response without Content-Length or chunked framing")
            if not self.chunked:
                take = min(self.remaining, len(self.buf))
                self.buf = self.buf[take:]
                self.remaining -= take
                self.body_len += take
                if self.remaining:
                    return done
                done.append((self.head[0], self.body_len, self.head[1]))
                self.head = None
                continue
            # chunked
            if self.chunk_state == "size":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return done
                size = int(self.buf[:end].split(b";")[0], 16)
                self.buf = self.buf[end + 2:]
                if size == 0:
                    self.chunk_state = "trailers"
                else:
                    self.remaining = size
                    self.chunk_state = "data"
            elif self.chunk_state == "data":
                take = min(self.remaining, len(self.buf))
                self.buf = self.buf[take:]
                self.remaining -= take
                self.body_len += take
                if self.remaining:
                    return done
                self.chunk_state = "data_crlf"
            elif self.chunk_state == "data_crlf":
                if len(self.buf) < 2:
                    return done
                self.buf = self.buf[2:]
                self.chunk_state = "size"
            else:  # trailers: lines until an empty one
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return done
                line = self.buf[:end]
                self.buf = self.buf[end + 2:]
                if not line:
                    done.append((self.head[0], self.body_len, self.head[1]))
                    self.head = None


def error_name(exc):
    if isinstance(exc, socket.timeout):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


def cmd_idle(a):
    nofile = raise_nofile()
    pids = [int(p) for p in a.pids.split(",") if p]
    request = f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n\r\n".encode()
    errors = {}
    held = []  # sockets with a complete keep-alive response read
    baseline = server_conns(a.port)
    rss_before = rss_kb(pids)
    t0 = time.monotonic()
    stopped = ""

    def fail(s, exc):
        name = error_name(exc)
        errors[name] = errors.get(name, 0) + 1
        s.close()

    while len(held) + sum(errors.values()) < a.count:
        if time.monotonic() - t0 > a.deadline:
            stopped = f"stopped after {a.deadline:g} s"
            break
        n = min(a.batch, a.count - len(held) - sum(errors.values()))
        deadline = time.monotonic() + a.timeout
        batch = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                s.connect((a.host, a.port))
                s.sendall(request)
                batch.append(s)
            except Exception as exc:  # noqa: BLE001 - every failure is counted by name
                fail(s, exc)
        ok_in_batch = 0
        for s in batch:
            parser = ResponseParser()
            try:
                while True:
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    data = s.recv(65536)
                    if not data:
                        raise ConnectionResetError(errno.ECONNRESET, "closed before the response ended")
                    got = parser.feed(data)
                    if got:
                        status, _, keep_alive = got[0]
                        if status != 200:
                            raise ValueError(f"status {status}")
                        if not keep_alive:
                            raise ValueError("response says Connection: close")
                        break
                held.append(s)
                ok_in_batch += 1
            except Exception as exc:  # noqa: BLE001
                fail(s, exc)
        if n and not ok_in_batch:
            stopped = "stopped: a whole batch failed"
            break
    open_seconds = time.monotonic() - t0

    time.sleep(a.settle)
    # Connections the server closed since (timeouts, limits) read as EOF now.
    closed_by_server = 0
    poller = select.poll()
    by_fd = {}
    for s in held:
        poller.register(s.fileno(), select.POLLIN | select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        by_fd[s.fileno()] = s
    for fd, _ in poller.poll(0):
        try:
            closed = by_fd[fd].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except OSError:
            closed = True
        closed_by_server += closed
    rss_with = rss_kb(pids)
    server_side = server_conns(a.port)
    still_open = len(held) - closed_by_server

    t1 = time.monotonic()
    for s in held:
        s.close()
    drained = server_conns(a.port)
    while drained > baseline and time.monotonic() - t1 < a.drain_timeout:
        time.sleep(0.05)
        drained = server_conns(a.port)
    out = dict(
        count=a.count,
        nofile=nofile[0],
        responses=len(held),
        still_open=still_open,
        closed_by_server=closed_by_server,
        server_side_conns=server_side - baseline,
        errors=errors,
        stopped=stopped,
        open_seconds=round(open_seconds, 3),
        rss_before_kb=rss_before,
        rss_with_kb=rss_with,
        drain_seconds=round(time.monotonic() - t1, 3),
        conns_left_after_drain=max(0, drained - baseline),
    )
    print(json.dumps(out))
    return 0


def cmd_requests(a):
    raise_nofile()
    request = f"GET {a.path} HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    conns = []
    base, extra = divmod(a.requests, a.conns)
    for i in range(a.conns):
        quota = base + (1 if i < extra else 0)
        if not quota:
            continue
        s = socket.create_connection((a.host, a.port), timeout=a.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = dict(sock=s, left=quota, parser=ResponseParser(), out=b"")
        conns.append(c)
    ok = 0
    bad = {}  # problem -> count: non-200 statuses, errors, early closes
    t0 = time.monotonic()
    deadline = t0 + a.timeout

    def send_next(c):
        c["left"] -= 1
        c["out"] = request
        flush(c)

    def flush(c):
        while c["out"]:
            try:
                n = c["sock"].send(c["out"])
            except BlockingIOError:
                sel.modify(c["sock"], selectors.EVENT_READ | selectors.EVENT_WRITE, c)
                return
            c["out"] = c["out"][n:]
        sel.modify(c["sock"], selectors.EVENT_READ, c)

    for c in conns:
        sel.register(c["sock"], selectors.EVENT_READ, c)
        send_next(c)
    active = len(conns)
    while active:
        if time.monotonic() > deadline:
            bad["timeout"] = bad.get("timeout", 0) + active
            break
        for key, ev in sel.select(timeout=1.0):
            c = key.data
            if ev & selectors.EVENT_WRITE:
                flush(c)
            if not ev & selectors.EVENT_READ:
                continue
            try:
                data = c["sock"].recv(262144)
            except BlockingIOError:
                continue
            except OSError as exc:
                data, name = None, error_name(exc)
            else:
                name = "closed by server"
            finished = False
            if data:
                try:
                    for status, _, keep_alive in c["parser"].feed(data):
                        if status == 200:
                            ok += 1
                        else:
                            bad[f"status {status}"] = bad.get(f"status {status}", 0) + 1
                        if c["left"] and keep_alive:
                            send_next(c)
                        else:
                            finished = True
                except ValueError as exc:
                    data, name = None, f"parse: {exc}"
            if not data:
                bad[name] = bad.get(name, 0) + 1
                finished = True
            if finished:
                sel.unregister(c["sock"])
                c["sock"].close()
                active -= 1
    seconds = time.monotonic() - t0
    for c in conns:
        try:
            c["sock"].close()
        except OSError:
            pass
    print(json.dumps(dict(requests=a.requests, ok=ok, problems=bad, seconds=round(seconds, 3))))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("idle", help="hold COUNT idle keep-alive connections and sample RSS")
    i.add_argument("--port", type=int, required=True)
    i.add_argument("--host", default="127.0.0.1")
    i.add_argument("--path", default="/64")
    i.add_argument("--count", type=int, default=10000)
    i.add_argument("--pids", default="", help="comma-separated PIDs whose VmRSS is summed")
    i.add_argument("--batch", type=int, default=200, help="connections opened and answered at a time")
    i.add_argument("--timeout", type=float, default=10.0, help="seconds per batch")
    i.add_argument("--deadline", type=float, default=120.0, help="stop opening after this many seconds")
    i.add_argument("--settle", type=float, default=1.0, help="seconds between the last response and the sample")
    i.add_argument("--drain-timeout", type=float, default=5.0)
    i.set_defaults(func=cmd_idle)
    r = sub.add_parser("requests", help="send REQUESTS keep-alive requests over CONNS connections")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--path", default="/64")
    r.add_argument("--conns", type=int, default=16)
    r.add_argument("--requests", type=int, default=5000)
    r.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole run")
    r.set_defaults(func=cmd_requests)
    a = p.parse_args()
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())

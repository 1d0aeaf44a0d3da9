"""Client-side helpers for the Turnout end-to-end tests: the deterministic body
pattern, a byte-exact raw HTTP/1.1 connection, a curl wrapper and small utilities.
Standard library only."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field

# --------------------------------------------------------------------------- body pattern

_BLOCK = 65536


@functools.lru_cache(maxsize=1)
def _base_block() -> bytes:
    out = bytearray()
    seed = b"turnout-e2e"
    while len(out) < _BLOCK:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:_BLOCK])


def pattern_chunks(n: int, chunk: int = _BLOCK):
    """The deterministic N-byte body as a sequence of 64 KiB pieces. Every piece starts
    with its own index, so a dropped, repeated or reordered piece changes the sha256."""
    base = _base_block()
    i = 0
    left = n
    while left > 0:
        block = struct.pack(">Q", i) + base[8:]
        piece = block[: min(left, _BLOCK)]
        yield piece
        left -= len(piece)
        i += 1


def pattern_bytes(n: int) -> bytes:
    return b"".join(pattern_chunks(n))


@functools.lru_cache(maxsize=32)
def pattern_sha256(n: int) -> str:
    h = hashlib.sha256()
    for c in pattern_chunks(n):
        h.update(c)
    return h.hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- raw HTTP


class PeerClosed(Exception):
    """The server closed the connection before a full message arrived."""


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list  # [(name, value)] exactly as received, in order
    body: bytes = b""
    trailers: list = field(default_factory=list)
    framing: str = "none"  # none | length | chunked | close
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_token(self, name: str, token: str) -> bool:
        toks = ",".join(self.header_all(name)).lower().split(",")
        return token.lower() in [t.strip() for t in toks]

    def json(self):
        return json.loads(self.body)


class RawConn:
    """A plain TCP client with its own HTTP/1.x response parser, for byte-exact tests."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = bytearray()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise PeerClosed(f"peer closed; {len(self.buf)} unparsed bytes: {bytes(self.buf[:200])!r}")
        self.buf += data

    def read_until(self, delim: bytes, limit: int = 1 << 20) -> bytes:
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise ValueError("line too long")
            start = max(0, len(self.buf) - len(delim) + 1)
            self._fill()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_to_eof(self, limit: int = 1 << 30) -> bytes:
        while len(self.buf) <= limit:
            try:
                self._fill()
            except PeerClosed:
                break
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def wait_closed(self, timeout: float = 3.0) -> bool:
        """True when the peer closes (EOF or reset) within `timeout` without sending more
        bytes; False on timeout. Raises AssertionError if unexpected bytes arrive."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(old)
        if data:
            raise AssertionError(f"unexpected bytes after response: {data[:200]!r}")
        return True

    def read_response(self, method: str = "GET") -> Response:
        """Read the next response (a 1xx interim response counts as one)."""
        head = self.read_until(b"\r\n\r\n", limit=256 * 1024)
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        parts = lines[0].split(" ", 2)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            headers.append((k, v.strip()))
        r = Response(version, status, reason, headers, raw_head=head)
        if status < 200 or status in (204, 304) or method.upper() == "HEAD":
            return r
        if status == 101 or (method.upper() == "CONNECT" and 200 <= status < 300):
            return r
        te = ",".join(r.header_all("Transfer-Encoding")).lower()
        if "chunked" in te:
            r.framing = "chunked"
            body = bytearray()
            while True:
                line = self.read_until(b"\r\n")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                body += self.read_exact(size)
                if self.read_exact(2) != b"\r\n":
                    raise ValueError("missing CRLF after chunk data")
            while True:
                line = self.read_until(b"\r\n")
                if line == b"\r\n":
                    break
                k, _, v = line.decode("latin-1").partition(":")
                r.trailers.append((k, v.strip()))
            r.body = bytes(body)
        elif r.header("Content-Length") is not None:
            r.framing = "length"
            r.body = self.read_exact(int(r.header("Content-Length")))
        else:
            r.framing = "close"
            r.body = self.read_to_eof()
        return r

    def request(self, method: str, path: str, headers=(), body: bytes = b"", host: str = "e2e.test") -> Response:
        """Send one request (Content-Length framed if a body is given) and read the final response."""
        self.send(build_request(method, path, headers, body, host))
        while True:
            r = self.read_response(method)
            if r.status >= 200 or r.status == 101:
                return r


def build_request(method: str, path: str, headers=(), body: bytes = b"", host: str | None = "e2e.test",
                  version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    for k, v in headers:
        lines.append(f"{k}: {v}")
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(pieces, trailers=()) -> bytes:
    out = bytearray()
    for p in pieces:
        if p:
            out += b"%x\r\n%s\r\n" % (len(p), p)
    out += b"0\r\n"
    for k, v in trailers:
        out += f"{k}: {v}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


# --------------------------------------------------------------------------- curl


@dataclass
class CurlResult:
    returncode: int
    status: int
    headers_raw: str
    body: bytes
    stderr: str


def curl(url: str, *args: str, timeout: float = 30.0) -> CurlResult:
    """Run curl against `url`; returns the final status, raw response headers and body."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        body_path = os.path.join(d, "body")
        hdr_path = os.path.join(d, "headers")
        cmd = [
            "curl", "-sS", "--noproxy", "*", "--max-time", str(int(timeout)),
            "-o", body_path, "-D", hdr_path, "-w", "%{http_code}", *args, url,
        ]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
        body = open(body_path, "rb").read() if os.path.exists(body_path) else b""
        hdrs = open(hdr_path, "r", encoding="latin-1").read() if os.path.exists(hdr_path) else ""
        code = p.stdout.decode().strip()
        return CurlResult(p.returncode, int(code) if code.isdigit() else 0, hdrs, body, p.stderr.decode())


# --------------------------------------------------------------------------- misc


def recv_until_closed(sock: socket.socket) -> bytes:
    """Everything `sock` receives until the peer closes. A reset also ends it: what
    arrived before the reset is returned, and the caller judges whether it is whole."""
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def free_port() -> int:
    """A port that was free a moment ago (bind 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(predicate, timeout: float, interval: float = 0.02):
    """Poll `predicate` until truthy or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def proc_fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_pipe_fd_count(pid: int) -> int:
    """Open pipe ends of a process (the proxy's splice pipes)."""
    n = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{name}").startswith("pipe:")
        except OSError:
            pass  # closed while listing
    return n


def proc_pipe_sizes(pid: int) -> dict[str, int]:
    """The capacity (F_GETPIPE_SZ) of each pipe a process holds open, by pipe ("pipe:[inode]"),
    read through /proc."""
    import fcntl

    sizes = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        path = f"/proc/{pid}/fd/{name}"
        try:
            link = os.readlink(path)
            if not link.startswith("pipe:"):
                continue
            # Opening the /proc entry opens the same pipe; O_NONBLOCK so that opening a
            # write end with no reader, or a read end, never waits.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue  # closed while listing
        try:
            sizes[link] = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
        finally:
            os.close(fd)
    return sizes


def proc_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found")


class RssSampler:
    """Samples a process's RSS in the background; use as a context manager."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.max_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.max_kib = max(self.max_kib, proc_rss_kib(self.pid))
                self.samples += 1
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=2)


def ws_accept_key_check(key: str, accept: str | None) -> bool:
    import base64
    want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    return accept == want

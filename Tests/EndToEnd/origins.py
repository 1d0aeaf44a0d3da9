"""Origin servers for the Turnout end-to-end tests.

Everything here runs in-process on 127.0.0.1 (threads) and binds port 0, so the
kernel picks a free port. Every server records what it received so tests can
assert on what the origin saw (or that it saw nothing), and counts the TCP
connections it accepted (to prove upstream keep-alive reuse).

- `Origin`: a ThreadingHTTPServer speaking HTTP/1.1 with the endpoints listed in
  `OriginHandler`.
- `WebSocketOrigin`: answers a WebSocket handshake with 101 and echoes frames.
- `RawOrigin`: reads requests and lets a test callback write arbitrary bytes back
  (interim 1xx responses, odd framing, ...).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from client import pattern_chunks

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


class _Recorder:
    """Thread-safe request log and connection counter shared by all origins."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.connections_accepted = 0
        self._open: set[socket.socket] = set()

    def record(self, entry: dict) -> dict:
        with self.lock:
            self.requests.append(entry)
        return entry

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.requests)

    def wait_for(self, predicate, timeout: float = 5.0) -> dict | None:
        """First recorded request matching `predicate`, polling up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for r in self.snapshot():
                if predicate(r):
                    return r
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def _conn_opened(self, sock: socket.socket) -> int:
        with self.lock:
            self.connections_accepted += 1
            self._open.add(sock)
            return self.connections_accepted

    def _conn_closed(self, sock: socket.socket) -> None:
        with self.lock:
            self._open.discard(sock)

    def _close_all(self) -> None:
        with self.lock:
            socks = list(self._open)
            self._open.clear()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


def header_values(headers: list, name: str) -> list[str]:
    """All values of `name` (case-insensitive) in a [(name, value), ...] list."""
    n = name.lower()
    return [v for (k, v) in headers if k.lower() == n]


def header_value(headers: list, name: str) -> str | None:
    vs = header_values(headers, name)
    return vs[0] if vs else None


# --------------------------------------------------------------------------- HTTP origin


class OriginHandler(BaseHTTPRequestHandler):
    """Endpoints:

    /echo            JSON: method, path, version, headers ([name, value] in received order),
                     body_sha256, body_length, trailers
    /bytes/N         N deterministic bytes (see client.pattern_chunks) with Content-Length
    /bytes/N/PAD     the same, the head made longer by an X-Pad header of PAD bytes
    /chunked/N       the same N bytes, chunked, with trailer X-Body-Sha256
    /close/N         the same N bytes, no Content-Length, body ends by closing
    /status/NNN      that status; 1xx/204/304 without a body, others a short body
    /slow/MS         sleeps MS milliseconds, then 200 "slow MS"
    /upload          streams the body (Content-Length or chunked) into sha256; JSON sha256, length
    /hdrs            response headers with odd order and spelling, body "ok"
    /hop             response carrying hop-by-hop headers (Connection: X-Resp-Hop, Keep-Alive)
    Any request body is always consumed (and hashed) before answering, so keep-alive
    stays correct whatever the endpoint.
    """

    protocol_version = "HTTP/1.1"
    timeout = 30  # socket timeout for each connection, so no handler thread hangs forever
    server_version = "e2e-origin"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - silence stderr logging
        pass

    def setup(self):
        super().setup()
        # The handler writes a head and a body separately: without TCP_NODELAY, Nagle holds
        # the body until the proxy's delayed ACK (40 ms), which only slows the tests down.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn_id = self.server.recorder._conn_opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.recorder._conn_closed(self.connection)

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, socket.timeout, OSError):
            # Peer (the proxy) went away mid-message; that is what some tests do on purpose.
            self.close_connection = True

    # Every method goes through the same dispatcher.
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    # --- body reading -----------------------------------------------------------------

    def _body_chunks(self, trailers: list):
        te = ",".join(self.headers.get_all("Transfer-Encoding") or []).lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    raise ConnectionError("truncated chunk size line")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, 65536))
                    if not data:
                        raise ConnectionError("truncated chunk")
                    left -= len(data)
                    yield data
                if self.rfile.read(2) != b"\r\n":
                    raise ConnectionError("missing CRLF after chunk")
            while True:
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    raise ConnectionError("truncated trailer section")
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                trailers.append([name, value.strip()])
            return
        cl = self.headers.get("Content-Length")
        if cl is not None:
            left = int(cl)
            while left:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    raise ConnectionError("truncated body")
                left -= len(data)
                yield data

    # --- responses --------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", headers=(), content_type="text/plain"):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, obj: dict):
        self._send(200, json.dumps(obj).encode(), content_type="application/json")

    def _dispatch(self):
        url = urlsplit(self.path)
        entry = self.server.recorder.record(
            {
                "method": self.command,
                "path": self.path,
                "version": self.request_version,
                "headers": [[k, v] for k, v in self.headers.items()],
                "conn": self.conn_id,
                "time": time.monotonic(),
                "complete": False,
            }
        )
        trailers: list = []
        sha = hashlib.sha256()
        length = 0
        for data in self._body_chunks(trailers):
            sha.update(data)
            length += len(data)
        entry.update(body_sha256=sha.hexdigest(), body_length=length, trailers=trailers, complete=True)

        parts = url.path.strip("/").split("/")
        ep = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else ""

        if ep == "echo":
            self._send_json(
                {
                    "method": self.command,
                    "path": self.path,
                    "version": self.request_version,
                    "headers": entry["headers"],
                    "body_sha256": entry["body_sha256"],
                    "body_length": length,
                    "trailers": trailers,
                    "conn": self.conn_id,
                }
            )
        elif ep == "upload":
            self._send_json({"sha256": entry["body_sha256"], "length": length})
        elif ep == "bytes":
            n = int(arg)
            pad = int(parts[2]) if len(parts) > 2 else 0
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            if pad:
                self.send_header("X-Pad", "p" * pad)
            self.end_headers()
            if self.command != "HEAD":
                for chunk in pattern_chunks(n):
                    self.wfile.write(chunk)
        elif ep == "chunked":
            n = int(arg)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Body-Sha256")
            self.end_headers()
            if self.command != "HEAD":
                h = hashlib.sha256()
                sizes = [1, 7, 300, 4096, 65536, 12345]
                i = 0
                for chunk in pattern_chunks(n):
                    h.update(chunk)
                    # Re-slice into irregular chunk sizes.
                    off = 0
                    while off < len(chunk):
                        piece = chunk[off : off + sizes[i % len(sizes)]]
                        i += 1
                        off += len(piece)
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\nX-Body-Sha256: %s\r\n\r\n" % h.hexdigest().encode())
        elif ep == "close":
            n = int(arg)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                for chunk in pattern_chunks(n):
                    self.wfile.write(chunk)
            self.close_connection = True
        elif ep == "status":
            code = int(arg)
            if code < 200 or code in (204, 304):
                self.send_response(code)
                if code == 304:
                    self.send_header("ETag", '"e2e"')
                self.end_headers()
            else:
                self._send(code, b"status %d\n" % code)
        elif ep == "stall":
            # /stall/N/FIRST/MS: a Content-Length body of N pattern bytes, FIRST of them
            # sent with the head, the rest after a pause of MS milliseconds.
            n, first, ms = int(arg), int(parts[2]), int(parts[3])
            body = b"".join(pattern_chunks(n))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(body[:first])
            self.wfile.flush()
            time.sleep(ms / 1000.0)
            self.wfile.write(body[first:])
        elif ep == "slow":
            ms = int(arg)
            time.sleep(ms / 1000.0)
            self._send(200, b"slow %d\n" % ms)
        elif ep == "hdrs":
            self._send(
                200,
                b"ok",
                headers=[
                    ("X-Zulu", "z"),
                    ("x-lower-case", "l"),
                    ("X-UPPER-CASE", "U"),
                    ("Set-Cookie", "a=1"),
                    ("X-MiXeD-Resp", "m"),
                    ("Set-Cookie", "b=2"),
                    ("X-Alpha", "a"),
                ],
            )
        elif ep == "hop":
            self._send(
                200,
                b"ok",
                headers=[
                    ("Connection", "X-Resp-Hop"),
                    ("X-Resp-Hop", "secret"),
                    ("Keep-Alive", "timeout=5"),
                    ("X-End-To-End", "yes"),
                ],
            )
        else:
            self._send(404, b"not found\n")


class _OriginServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


class _ServerBase:
    """Common start/stop/recording for all origins."""

    host = "127.0.0.1"
    port: int

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    # Recording passthroughs.
    @property
    def requests(self) -> list[dict]:
        return self.recorder.snapshot()

    @property
    def open_connections(self) -> int:
        with self.recorder.lock:
            return len(self.recorder._open)

    @property
    def connections_accepted(self) -> int:
        with self.recorder.lock:
            return self.recorder.connections_accepted

    def wait_for_request(self, predicate, timeout: float = 5.0):
        return self.recorder.wait_for(predicate, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Origin(_ServerBase):
    """The HTTP/1.1 origin (see OriginHandler for endpoints)."""

    def __init__(self) -> None:
        self.recorder = _Recorder()
        self.server = _OriginServer((self.host, 0), OriginHandler)
        self.server.recorder = self.recorder
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=f"origin-{self.port}"
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.recorder._close_all()
        self.server.server_close()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------- raw socket helpers


class _SockReader:
    """Minimal buffered reader over a socket with a timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def read_until(self, delim: bytes, limit: int = 1 << 20) -> bytes | None:
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            if len(self.buf) > limit or not self._fill():
                return None

    def read_exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _parse_request_head(head: bytes) -> dict:
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        headers.append([k, v.strip()])
    return {"method": method, "path": target, "version": version, "headers": headers}


def _read_request_body(reader: _SockReader, headers: list) -> bytes | None:
    te = (header_value(headers, "Transfer-Encoding") or "").lower()
    if "chunked" in te:
        out = bytearray()
        while True:
            line = reader.read_until(b"\r\n")
            if line is None:
                return None
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:
                    t = reader.read_until(b"\r\n")
                    if t is None:
                        return None
                    if t == b"\r\n":
                        return bytes(out)
            data = reader.read_exact(size + 2)
            if data is None:
                return None
            out += data[:-2]
    cl = header_value(headers, "Content-Length")
    if cl:
        return reader.read_exact(int(cl))
    return b""


class _ThreadedSocketServer(_ServerBase):
    """Accept loop plus one thread per connection; subclasses implement `serve_conn`."""

    def __init__(self) -> None:
        self.recorder = _Recorder()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((self.host, 0))
        self.listener.listen(128)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True, name=f"raw-origin-{self.port}")
        self.thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(30)
            conn_id = self.recorder._conn_opened(sock)
            threading.Thread(target=self._run_conn, args=(sock, conn_id), daemon=True).start()

    def _run_conn(self, sock: socket.socket, conn_id: int) -> None:
        try:
            self.serve_conn(sock, _SockReader(sock), conn_id)
        except (OSError, ValueError):
            pass
        finally:
            self.recorder._conn_closed(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _read_recorded_head(self, reader, conn_id):
        """Reads one request head, records it and returns it (None if the peer closed)."""
        head = reader.read_until(b"\r\n\r\n")
        if head is None:
            return None
        req = _parse_request_head(head)
        req["conn"] = conn_id
        self.recorder.record(req)
        return req

    def serve_conn(self, sock, reader, conn_id):  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:
        self._stopping.set()
        self.thread.join(timeout=5)
        try:
            self.listener.close()
        except OSError:
            pass
        self.recorder._close_all()


class RawOrigin(_ThreadedSocketServer):
    """Reads each request (head + body) and calls `respond(sock, request)`, which writes
    whatever bytes it likes. `respond` returns True to keep reading requests on the
    connection, False to close it."""

    def __init__(self, respond) -> None:
        self.respond = respond
        super().__init__()

    def serve_conn(self, sock, reader, conn_id):
        while not self._stopping.is_set():
            head = reader.read_until(b"\r\n\r\n", limit=1 << 20)
            if head is None:
                return
            req = _parse_request_head(head)
            req["conn"] = conn_id
            body = _read_request_body(reader, req["headers"])
            if body is None:
                return
            req["body"] = body
            self.recorder.record(req)
            if not self.respond(sock, req):
                return


class WebSocketOrigin(_ThreadedSocketServer):
    """Answers a WebSocket handshake (RFC 6455) with 101 and echoes every data frame back
    (unmasked, same opcode). Ping gets pong; close gets close and the connection ends.
    A request without `Upgrade: websocket` gets 426."""

    def serve_conn(self, sock, reader, conn_id):
        req = self._read_recorded_head(reader, conn_id)
        if req is None:
            return
        key = header_value(req["headers"], "Sec-WebSocket-Key")
        upgrade = (header_value(req["headers"], "Upgrade") or "").lower()
        if upgrade != "websocket" or not key:
            sock.sendall(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + ws_accept_for(key).encode() + b"\r\n\r\n"
        )
        while True:
            frame = ws_read_frame(reader)
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x8:
                sock.sendall(ws_frame(0x8, payload[:2], mask=False))
                return
            if opcode == 0x9:
                sock.sendall(ws_frame(0xA, payload, mask=False))
                continue
            sock.sendall(ws_frame(opcode, payload, mask=False))


class ConnectOrigin(_ThreadedSocketServer):
    """A member that terminates CONNECT: for a target on port 443 it answers 200 (with a
    stray `Content-Length: 0` that a proxy must not pass on) and then echoes every byte
    back until the client half-closes; any other target gets 403 with a short body.
    Bytes that arrive after the CONNECT head are tunnel data and are echoed too."""

    def serve_conn(self, sock, reader, conn_id):
        req = self._read_recorded_head(reader, conn_id)
        if req is None:
            return
        if req["method"] != "CONNECT" or not req["path"].endswith(":443"):
            sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nrefused")
            return
        if req["path"].startswith("bye."):
            # Says goodbye and closes at once: the proxy must end the tunnel.
            sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nbye")
            return
        sock.sendall(b"HTTP/1.1 200 Connection Established\r\nContent-Length: 0\r\nX-Tunnel: yes\r\n\r\n")
        if reader.buf:
            sock.sendall(bytes(reader.buf))
            reader.buf.clear()
        while True:
            data = sock.recv(65536)
            if not data:
                return
            sock.sendall(data)


def ws_frame(opcode: int, payload: bytes, mask: bool) -> bytes:
    """One final WebSocket frame."""
    head = bytearray([0x80 | opcode])
    mbit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head.append(mbit | n)
    elif n < 65536:
        head.append(mbit | 126)
        head += struct.pack(">H", n)
    else:
        head.append(mbit | 127)
        head += struct.pack(">Q", n)
    if mask:
        key = b"\x12\x34\x56\x78"
        head += key
        payload = _xor_mask(payload, key)
    return bytes(head) + payload


def _xor_mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big") if n else b""


def ws_read_frame(reader) -> tuple[int, bytes] | None:
    """Read one frame from anything with `read_exact(n) -> bytes | None`."""
    h = reader.read_exact(2)
    if h is None:
        return None
    opcode = h[0] & 0x0F
    masked = h[1] & 0x80
    n = h[1] & 0x7F
    if n == 126:
        ext = reader.read_exact(2)
        if ext is None:
            return None
        n = struct.unpack(">H", ext)[0]
    elif n == 127:
        ext = reader.read_exact(8)
        if ext is None:
            return None
        n = struct.unpack(">Q", ext)[0]
    key = None
    if masked:
        key = reader.read_exact(4)
        if key is None:
            return None
    payload = reader.read_exact(n) if n else b""
    if payload is None:
        return None
    if key:
        payload = _xor_mask(payload, key)
    return opcode, payload

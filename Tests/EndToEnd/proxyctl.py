"""Starting and inspecting a turnout process, and writing its YAML config."""

from __future__ import annotations

import atexit
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from client import proc_fd_count, proc_pipe_fd_count, proc_rss_kib, wait_until


# --------------------------------------------------------------------------- YAML


def _yaml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def to_yaml(obj, indent: int = 0) -> str:
    """Block-style YAML for dicts of dicts/lists/scalars (enough for turnout configs)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                if not v:
                    out.append(f"{pad}{k}: {'{}' if isinstance(v, dict) else '[]'}")
                else:
                    out.append(f"{pad}{k}:")
                    out.append(to_yaml(v, indent + 1))
            else:
                out.append(f"{pad}{k}: {_yaml_scalar(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict):
                inner = to_yaml(v, indent + 1).lstrip()
                out.append(f"{pad}- {inner}")
            else:
                out.append(f"{pad}- {_yaml_scalar(v)}")
    return "\n".join(out)


def make_config(listen_port: int, pools: dict, active: str = "blue", *, workers: int = 1,
                timeouts: dict | None = None, limits: dict | None = None, headers: dict | None = None,
                upstream: dict | None = None, log: dict | None = None, split: dict | None = None,
                routing: dict | None = None, admin: dict | None = None, state: dict | None = None,
                connect: dict | None = None, busy_poll: str | None = None,
                defer_accept: bool | None = None, also_ipv6: bool = False) -> dict:
    cfg: dict = {
        "workers": workers,
        # also_ipv6: a second listener on [::1] with the same port.
        "listen": [f"127.0.0.1:{listen_port}"] + ([f'"[::1]:{listen_port}"'] if also_ipv6 else []),
        "pools": {name: {"members": list(members)} for name, members in pools.items()},
    }
    if split:
        cfg["split"] = dict(split)
    else:
        cfg["active"] = active
    if routing:
        cfg["routing"] = routing
    # Every test proxy gets its own admin socket (short path: sun_path holds 107 bytes),
    # so tests never touch the default socket of a Turnout running on the machine.
    cfg["admin"] = {"socket": short_socket_path(), **(admin or {})}
    if state:
        cfg["state"] = dict(state)
    if timeouts:
        cfg["timeouts"] = dict(timeouts)
    if limits:
        cfg["limits"] = dict(limits)
    if headers:
        cfg["headers"] = dict(headers)
    if upstream:
        cfg["upstream"] = dict(upstream)
    if connect:
        cfg["connect"] = dict(connect)
    if busy_poll is not None:
        cfg["busy_poll"] = busy_poll
    if defer_accept is not None:
        cfg["defer_accept"] = defer_accept
    cfg["log"] = {"level": "info", "access": "stdout", "format": "json", **(log or {})}
    return cfg


_SOCKET_DIRS: list[str] = []


def short_socket_path() -> str:
    d = tempfile.mkdtemp(prefix="tadm")
    _SOCKET_DIRS.append(d)
    return os.path.join(d, "admin.sock")


@atexit.register
def _remove_socket_dirs() -> None:
    for d in _SOCKET_DIRS:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- the proxy


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Proxy:
    """A running turnout process."""

    def __init__(self, proc: subprocess.Popen, port: int, config_path: Path, stdout_path: Path,
                 stderr_path: Path, files) -> None:
        self.proc = proc
        self.port = port
        self.config_path = config_path
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self._files = files

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fd_count(self) -> int:
        return proc_fd_count(self.pid)

    def pipe_fd_count(self) -> int:
        return proc_pipe_fd_count(self.pid)

    def rss_kib(self) -> int:
        return proc_rss_kib(self.pid)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def access_records(self) -> list[dict]:
        """JSON access-log lines from stdout (lines that parse as JSON objects with a status)."""
        out = []
        for line in self.stdout().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "status" in rec:
                out.append(rec)
        return out

    def wait_access_records(self, n: int, timeout: float = 3.0) -> list[dict]:
        wait_until(lambda: len(self.access_records()) >= n, timeout)
        return self.access_records()

    @property
    def socket_path(self) -> str:
        m = re.search(r"^  socket: (\S+)$", self.config_path.read_text(), re.M)
        assert m, "the config has no admin socket"
        return m.group(1)

    def admin(self, method: str, path: str, body=None, headers=(), timeout: float = 20.0) -> tuple[int, dict]:
        """One admin API call over the Unix socket; returns (status, JSON body)."""
        return admin_call(self.socket_path, method, path, body, headers, timeout)

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Runs turnoutctl against this proxy's admin socket."""
        return subprocess.run([turnoutctl_bin(), *args, "--socket", self.socket_path], capture_output=True,
                              text=True, timeout=timeout)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        for f in self._files:
            try:
                f.close()
            except OSError:
                pass
        return self.proc.returncode

    def diagnostics(self) -> str:
        return f"--- turnout stdout ---\n{self.stdout()[-4000:]}\n--- turnout stderr ---\n{self.stderr()[-4000:]}"


def start_turnout(bin_path: str, workdir: Path, config: dict | str, port: int, args=("run",),
                  ready_timeout: float = 10.0, prefix=()) -> Proxy:
    """Starts `bin_path args --config FILE` in `workdir` (`prefix`: a command it runs under,
    for example setpriv) and waits until it accepts on `port`."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "turnout.yaml"
    text = config if isinstance(config, str) else to_yaml(config) + "\n"
    config_path.write_text(text)
    stdout_path = workdir / "stdout.log"
    stderr_path = workdir / "stderr.log"
    out = open(stdout_path, "wb")
    err = open(stderr_path, "wb")
    proc = subprocess.Popen(
        [*prefix, bin_path, *args, "--config", str(config_path)],
        stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=str(workdir),
    )
    proxy = Proxy(proc, port, config_path, stdout_path, stderr_path, [out, err])
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            proxy.stop()
            raise RuntimeError(
                f"turnout exited early with {proc.returncode}\nconfig:\n{text}\n{proxy.diagnostics()}"
            )
        if port_accepts(port):
            return proxy
        if time.monotonic() >= deadline:
            proxy.stop()
            raise RuntimeError(f"turnout did not accept on port {port} within {ready_timeout}s\n{proxy.diagnostics()}")
        time.sleep(0.05)


def turnoutctl_bin() -> str:
    turnout = os.environ.get("TURNOUT_BIN") or str(Path(__file__).resolve().parents[2] / ".build/release/turnout")
    return str(Path(turnout).with_name("turnoutctl"))


def admin_call(socket_path: str, method: str, path: str, body=None, headers=(), timeout: float = 20.0):
    """A raw HTTP/1.1 request over the admin Unix socket; returns (status, parsed JSON)."""
    payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    lines = [f"{method} {path} HTTP/1.1", "Host: turnout", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(socket_path)
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, (json.loads(rest) if rest.strip() else {})

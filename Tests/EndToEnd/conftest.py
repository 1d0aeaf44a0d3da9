"""Fixtures for the Turnout end-to-end tests.

- `origin`: an in-process HTTP/1.1 origin (origins.Origin), stopped after the test.
- `raw_origin_factory`, `ws_origin`, `connect_origin`: raw-socket origins.
- `turnout`: a factory that writes a YAML config, starts the real binary with
  `turnout run --config FILE`, waits for the listen port and returns a `Proxy`.
  Every process started is stopped by PID on teardown (SIGTERM, then SIGKILL after 10 s).

The binary is `$TURNOUT_BIN`, default `<repo>/.build/release/turnout`. Tests that need it
are skipped when it does not exist, unless `TURNOUT_E2E_REQUIRE=1`, which makes them fail.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from client import free_port
from origins import ConnectOrigin, Origin, RawOrigin, WebSocketOrigin
from proxyctl import Proxy, make_config, start_turnout

REPO = Path(__file__).resolve().parents[2]
TURNOUT_BIN = os.environ.get("TURNOUT_BIN", str(REPO / ".build" / "release" / "turnout"))

DEFAULT_TEST_TIMEOUT = 90  # seconds; a hung test fails instead of hanging the suite


# --------------------------------------------------------------------------- per-test watchdog


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test watchdog (SIGALRM) override")


@pytest.fixture(autouse=True)
def _watchdog(request):
    marker = request.node.get_closest_marker("timeout")
    seconds = int(marker.args[0]) if marker else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded its {seconds}s watchdog")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- binary


def require_binary() -> str:
    if not os.access(TURNOUT_BIN, os.X_OK):
        msg = f"turnout binary not found at {TURNOUT_BIN} (set TURNOUT_BIN)"
        if os.environ.get("TURNOUT_E2E_REQUIRE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return TURNOUT_BIN


@pytest.fixture
def turnout_bin() -> str:
    return require_binary()


# --------------------------------------------------------------------------- origins


@pytest.fixture
def origin():
    o = Origin()
    try:
        yield o
    finally:
        o.stop()


@pytest.fixture
def origin2():
    o = Origin()
    try:
        yield o
    finally:
        o.stop()


@pytest.fixture
def ws_origin():
    o = WebSocketOrigin()
    try:
        yield o
    finally:
        o.stop()


@pytest.fixture
def connect_origin():
    o = ConnectOrigin()
    try:
        yield o
    finally:
        o.stop()


@pytest.fixture
def raw_origin_factory():
    started = []

    def make(respond):
        o = RawOrigin(respond)
        started.append(o)
        return o

    try:
        yield make
    finally:
        for o in started:
            o.stop()


@pytest.fixture
def turnout(tmp_path, request):
    """Factory: `turnout(members=[origin.addr], timeouts={...}, ...)` or
    `turnout(pools={"blue": [...], "green": [...]}, active="green")`.
    Returns a started `Proxy`; all are stopped on teardown."""
    bin_path = require_binary()
    started: list[Proxy] = []

    def factory(members=None, *, pools=None, active="blue", **kw) -> Proxy:
        if pools is None:
            pools = {"blue": list(members), "green": list(members)}
        port = free_port()
        cfg = make_config(port, pools, active, **kw)
        proxy = start_turnout(bin_path, tmp_path / f"turnout{len(started)}", cfg, port)
        started.append(proxy)
        return proxy

    try:
        yield factory
    finally:
        failed = getattr(request.node, "rep_call", None)
        for p in started:
            p.stop()
            if failed is not None and failed.failed:
                print(p.diagnostics())


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def proxy(turnout, origin) -> Proxy:
    """A turnout in front of `origin` with default settings."""
    return turnout([origin.addr])

"""Graceful shutdown on SIGTERM: in-flight requests finish, new connections are refused,
the process exits 0."""

import signal
import socket
import threading
import time

from client import RawConn


def test_sigterm_drains_in_flight_request(turnout, origin):
    proxy = turnout([origin.addr])
    # An idle keep-alive client, which the drain should close rather than wait for.
    idle = RawConn(proxy.port)
    assert idle.request("GET", "/bytes/10").status == 200

    result = {}

    def in_flight():
        try:
            with RawConn(proxy.port, timeout=15) as c:
                r = c.request("GET", "/slow/1500")
                result["status"] = r.status
                result["body"] = r.body
        except Exception as e:  # reported by the main thread
            result["error"] = repr(e)

    t = threading.Thread(target=in_flight, daemon=True)
    t.start()
    try:
        assert origin.wait_for_request(lambda r: r["path"] == "/slow/1500", timeout=3), "slow request never reached origin"
        t_signal = time.monotonic()
        proxy.signal(signal.SIGTERM)

        # New connections are refused once the listener is closed (allow a moment for it).
        refused = False
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5)
                s.close()
            except (ConnectionRefusedError, ConnectionResetError):
                # Reset: the connection sat in the backlog of a listener that was then closed.
                refused = True
                break
            time.sleep(0.05)
        assert refused, "new connections still accepted 1s after SIGTERM"

        t.join(timeout=10)
        assert not t.is_alive(), "in-flight request did not finish"
        assert "error" not in result, result.get("error")
        assert result["status"] == 200
        assert result["body"] == b"slow 1500\n"

        code = proxy.proc.wait(timeout=10)
        assert code == 0, f"exit code {code}\n{proxy.diagnostics()}"
        assert time.monotonic() - t_signal < 10
        assert idle.wait_closed(1.0), "idle keep-alive connection was not closed"
    finally:
        idle.close()


def test_sigterm_idle_exits_promptly(turnout, origin):
    proxy = turnout([origin.addr])
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/bytes/10").status == 200
        t0 = time.monotonic()
        proxy.signal(signal.SIGTERM)
        code = proxy.proc.wait(timeout=10)
        assert code == 0
        assert time.monotonic() - t0 < 3.0, "idle proxy took too long to exit"


def test_sigint_also_stops(turnout, origin):
    proxy = turnout([origin.addr])
    proxy.signal(signal.SIGINT)
    proxy.proc.wait(timeout=10)  # exits promptly; the code is not part of the contract

"""busy_poll: a worker polls for events for a while before it sleeps (docs/performance.md).

The statistics in GET /v1/status show which waits were answered while polling and which slept;
with busy_poll off no wait polls, with it on a client sending one request after another is
answered from the polling window, and an idle proxy stops polling (it does not spin)."""
from __future__ import annotations

import http.client
import os
import time


def _event_loop(proxy) -> dict:
    status, reply = proxy.admin("GET", "/v1/status")
    assert status == 200, reply
    return reply["event_loop"]


def _sequential_gets(proxy, n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        for i in range(n):
            conn.request("GET", f"/echo?i={i}")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, body
            assert f"i={i}".encode() in body
    finally:
        conn.close()


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_busy_poll_off_by_default_never_polls(turnout, origin):
    proxy = turnout([origin.addr])
    _sequential_gets(proxy, 200)
    loop = _event_loop(proxy)
    assert loop["busy_poll_us"] == 0
    assert loop["polled_waits"] == 0
    assert loop["blocking_waits"] > 200  # at least one sleep per request with nothing else going on


def test_busy_poll_answers_back_to_back_requests_while_polling(turnout, origin):
    proxy = turnout([origin.addr], busy_poll="1ms")
    before = _event_loop(proxy)
    assert before["busy_poll_us"] == 1000
    _sequential_gets(proxy, 500)
    after = _event_loop(proxy)
    polled = after["polled_waits"] - before["polled_waits"]
    slept = after["blocking_waits"] - before["blocking_waits"]
    # Each request is two waits (its arrival and the origin's answer), both well under 1 ms apart from
    # the previous event: once the window is open most of them are answered by polling.
    assert polled > 250, after
    assert polled > slept, after


def test_busy_poll_stops_polling_when_idle(turnout, origin):
    proxy = turnout([origin.addr], busy_poll="1ms")
    _sequential_gets(proxy, 300)  # opens the window
    time.sleep(0.2)
    start_cpu = _cpu_seconds(proxy.pid)
    start = _event_loop(proxy)
    time.sleep(3)
    end = _event_loop(proxy)
    cpu = _cpu_seconds(proxy.pid) - start_cpu
    # A loop that kept polling would use about 3 s of CPU here; one that closes its window sleeps
    # between its timer ticks and the two admin calls.
    assert cpu < 0.3, f"{cpu:.2f} s of CPU while idle for 3 s"
    assert end["polled_waits"] - start["polled_waits"] < 20, (start, end)

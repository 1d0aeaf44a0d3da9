"""JSON access log on stdout: one line per request, with the agreed keys."""

from client import RawConn
from origins import header_value

KEYS = {"time", "client", "method", "path", "pool", "member", "status", "bytes_in", "bytes_out",
        "duration_ms", "request_id"}


def test_access_log_json_lines(proxy, origin):
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/echo?log=1").status == 200
        assert c.request("POST", "/upload", body=b"z" * 100).status == 200
        assert c.request("GET", "/bytes/1000").status == 200
        assert c.request("GET", "/status/404").status == 404
    recs = proxy.wait_access_records(4, timeout=3.0)
    assert len(recs) == 4, f"expected 4 access lines, got {len(recs)}:\n{proxy.stdout()[-2000:]}"
    for rec in recs:
        missing = KEYS - rec.keys()
        assert not missing, f"missing keys {missing} in {rec}"
        assert rec["pool"] == "blue"
        assert rec["member"] == origin.addr
        assert str(rec["client"]).startswith("127.0.0.1")
        assert isinstance(rec["duration_ms"], (int, float)) and rec["duration_ms"] >= 0
        assert isinstance(rec["status"], int)

    by_path = {r["path"]: r for r in recs}
    echo = next(r for p, r in by_path.items() if p.startswith("/echo"))
    assert echo["method"] == "GET" and echo["status"] == 200
    seen = origin.wait_for_request(lambda r: r["path"] == "/echo?log=1")
    assert echo["request_id"] == header_value(seen["headers"], "X-Request-Id")

    up = by_path["/upload"]
    assert up["method"] == "POST"
    assert up["bytes_in"] >= 100
    assert by_path["/bytes/1000"]["bytes_out"] >= 1000
    assert by_path["/status/404"]["status"] == 404

    for rec in recs:
        p = rec["path"].split("?")[0]
        seen = origin.wait_for_request(lambda r, p=p: r["path"].split("?")[0] == p)
        assert rec["request_id"] == header_value(seen["headers"], "X-Request-Id")


def test_access_log_keeps_client_request_id(proxy, origin):
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/echo?rid", headers=[("X-Request-Id", "abc-123")]).status == 200
    recs = proxy.wait_access_records(1)
    assert [r["request_id"] for r in recs] == ["abc-123"]


def test_access_log_records_proxy_generated_errors(turnout):
    from client import free_port

    proxy = turnout([f"127.0.0.1:{free_port()}"])
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/down").status == 502
    recs = proxy.wait_access_records(1)
    assert len(recs) == 1 and recs[0]["status"] == 502 and recs[0]["path"] == "/down"


def test_access_log_off(turnout, origin):
    proxy = turnout([origin.addr], log={"access": "off"})
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/bytes/10").status == 200
    import time

    time.sleep(0.5)
    assert proxy.access_records() == []


def test_access_log_to_file(turnout, origin, tmp_path):
    path = tmp_path / "access.log"
    proxy = turnout([origin.addr], log={"access": str(path)})
    with RawConn(proxy.port) as c:
        assert c.request("GET", "/bytes/10").status == 200
    from client import wait_until
    import json

    assert wait_until(lambda: path.exists() and path.read_text().strip(), 3.0), "no access line in file"
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0]["path"] == "/bytes/10"


def test_a_refused_request_never_logs_an_earlier_requests_head(turnout, origin):
    # Heads are reused across requests and connections: a request refused before its
    # head parsed must be logged without method or path, never with a stale one.
    proxy = turnout([origin.addr])
    long_path = "/" + "p" * 2000
    with RawConn(proxy.port) as c:
        assert c.request("GET", long_path).status == 404
        c.send(b"GET  / HTTP/1.1\r\nHost: e2e.test\r\n\r\n")  # two spaces: no target
        assert c.read_response().status == 400
    with RawConn(proxy.port) as c:  # a new connection borrows the same pooled head
        c.send(b"G(T / HTTP/1.1\r\nHost: e2e.test\r\n\r\n")
        assert c.read_response().status == 400
    records = proxy.wait_access_records(3)
    assert records[0]["path"] == long_path
    for rec in records[1:]:
        assert rec["status"] == 400
        assert rec["path"] in (None, "-") and rec["method"] in (None, "-"), rec

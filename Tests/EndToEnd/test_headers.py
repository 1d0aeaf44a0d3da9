"""Basic proxying and header rewriting: status and body pass through, end-to-end header
order and spelling survive both ways, X-Forwarded-*, X-Request-Id, hop-by-hop removal."""

import json
import re
import socket

import pytest

from client import RawConn, curl, pattern_bytes, wait_until
from origins import header_value, header_values


def _seen(origin, path):
    r = origin.wait_for_request(lambda r: r["path"] == path, timeout=3)
    assert r is not None, f"origin never saw {path}; saw {[x['path'] for x in origin.requests]}"
    return r


def test_curl_get_status_and_body(proxy, origin):
    r = curl(proxy.url("/bytes/1000"))
    assert r.returncode == 0, r.stderr
    assert r.status == 200
    assert r.body == pattern_bytes(1000)
    r = curl(proxy.url("/status/418"))
    assert r.status == 418
    assert r.body == b"status 418\n"
    r = curl(proxy.url("/nope"))
    assert r.status == 404


def test_request_header_order_and_spelling_preserved(proxy, origin):
    sent = [
        ("X-Zeta", "1"),
        ("x-alpha", "2"),
        ("X-MiXeD-CaSe", "3"),
        ("X-Dup", "a"),
        ("Accept", "*/*"),
        ("X-Dup", "b"),
        ("user-agent", "e2e/1.0"),
    ]
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/echo?order=1", headers=sent, host="order.test")
        assert r.status == 200
    got = r.json()["headers"]
    names = {"host"} | {k.lower() for k, _ in sent}
    end_to_end = [(k, v) for k, v in got if k.lower() in names]
    assert end_to_end == [("Host", "order.test")] + sent


def test_response_header_order_and_spelling_preserved(proxy, origin):
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/hdrs")
    assert r.status == 200 and r.body == b"ok"
    expected = [
        ("X-Zulu", "z"),
        ("x-lower-case", "l"),
        ("X-UPPER-CASE", "U"),
        ("Set-Cookie", "a=1"),
        ("X-MiXeD-Resp", "m"),
        ("Set-Cookie", "b=2"),
        ("X-Alpha", "a"),
    ]
    names = {k.lower() for k, _ in expected}
    assert [(k, v) for k, v in r.headers if k.lower() in names] == expected


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback")
def test_ipv6_client_address_in_forwarded_for_and_access_log(turnout, origin):
    proxy = turnout([origin.addr], also_ipv6=True)
    with socket.create_connection(("::1", proxy.port), timeout=5) as s:
        s.sendall(b"GET /echo?v6=1 HTTP/1.1\r\nHost: e2e.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert header_values(json.loads(body)["headers"], "X-Forwarded-For") == ["::1"]
    # A client on 127.0.0.1 of the same proxy is formatted as IPv4.
    with RawConn(proxy.port) as c:
        assert header_values(c.request("GET", "/echo?v4=1").json()["headers"], "X-Forwarded-For") == ["127.0.0.1"]
    assert wait_until(lambda: '"client":"::1"' in proxy.stdout(), timeout=5), proxy.stdout()[-2000:]


def test_host_and_forwarded_headers(proxy, origin):
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/echo?fwd=1", headers=[("X-Forwarded-For", "203.0.113.9")], host="example.test:1234")
        assert r.status == 200
    h = r.json()["headers"]
    assert header_values(h, "Host") == ["example.test:1234"]
    # trust_forwarded defaults to false: the incoming value is replaced.
    assert header_values(h, "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(h, "X-Forwarded-Proto") == ["http"]
    assert header_values(h, "X-Forwarded-Host") == ["example.test:1234"]


def test_forwarded_for_appended_when_trusted(turnout, origin):
    proxy = turnout([origin.addr], headers={"trust_forwarded": True})
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/echo?trust=1", headers=[("X-Forwarded-For", "203.0.113.9")])
        assert r.status == 200
    h = r.json()["headers"]
    assert header_values(h, "X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]


def test_request_id_added_when_absent_and_kept_when_present(proxy, origin):
    with RawConn(proxy.port) as c:
        ids = []
        for i in range(2):
            r = c.request("GET", f"/echo?rid={i}")
            assert r.status == 200
            vals = header_values(r.json()["headers"], "X-Request-Id")
            assert len(vals) == 1, vals
            assert re.fullmatch(r"[0-9a-fA-F]{32}", vals[0]), vals[0]
            ids.append(vals[0])
        assert ids[0] != ids[1]
        r = c.request("GET", "/echo?rid=mine", headers=[("X-Request-Id", "client-chosen-42")])
        assert header_values(r.json()["headers"], "X-Request-Id") == ["client-chosen-42"]


def test_hop_by_hop_request_headers_removed(proxy, origin):
    sent = [
        ("Connection", "keep-alive, X-Hop"),
        ("X-Hop", "must-not-pass"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Proxy-Connection", "keep-alive"),
        ("Upgrade", "h2c"),
        ("X-End-To-End", "yes"),
    ]
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/echo?hop=1", headers=sent)
        assert r.status == 200
        # the client connection survives
        assert c.request("GET", "/bytes/10").status == 200
    h = r.json()["headers"]
    for name in ("X-Hop", "Keep-Alive", "TE", "Proxy-Connection", "Upgrade"):
        assert header_values(h, name) == [], f"{name} reached the origin: {h}"
    for v in header_values(h, "Connection"):
        assert "x-hop" not in v.lower(), h
    assert header_values(h, "X-End-To-End") == ["yes"]


def test_hop_by_hop_response_headers_removed(proxy, origin):
    # RFC 9110 7.6.1 applies to responses too.
    with RawConn(proxy.port) as c:
        r = c.request("GET", "/hop")
        assert r.status == 200 and r.body == b"ok"
        assert r.header("X-End-To-End") == "yes"
        assert r.header("X-Resp-Hop") is None, r.headers
        assert r.header("Keep-Alive") is None, r.headers
        assert c.request("GET", "/bytes/10").status == 200


def test_request_body_methods(proxy, origin):
    body = b"x" * 1000
    with RawConn(proxy.port) as c:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            r = c.request(method, "/echo?m=" + method, body=body)
            assert r.status == 200
            j = r.json()
            assert j["method"] == method
            assert j["body_length"] == 1000
        r = c.request("OPTIONS", "/echo?m=OPTIONS")
        assert r.json()["method"] == "OPTIONS"
    assert header_value(_seen(origin, "/echo?m=PUT")["headers"], "Content-Length") == "1000"

"""Traffic shifting through the real binary: overrides, cohorts, the bucket cookie, the
weighted split, match rules and health-aware fallback. Blue and green are two real
origins; which one answered is read from the origins' own request records."""

from __future__ import annotations

import re

import pytest

from client import RawConn, free_port

OVERRIDES_FOR_LOOPBACK = {
    "overrides": {
        "header": "X-Turnout-Pool",
        "cookie": "turnout_pool",
        "trusted_networks": ["127.0.0.0/8", '"::1/128"'],
    }
}


def _pools(blue, green):
    return {"blue": [blue.addr], "green": [green.addr]}


def _served_by(blue, green, before):
    """Which origin got the one request sent since `before` = (len(blue), len(green))."""
    b, g = len(blue.requests) - before[0], len(green.requests) - before[1]
    assert b + g == 1, f"expected one request upstream, blue got {b}, green got {g}"
    return "blue" if b else "green"


def _counts(blue, green):
    return (len(blue.requests), len(green.requests))


def test_header_flag_and_cookie_route_to_the_named_pool(turnout, origin, origin2):
    blue, green = origin, origin2
    proxy = turnout(pools=_pools(blue, green), active="blue", routing=OVERRIDES_FOR_LOOPBACK)
    with RawConn(proxy.port) as c:
        for headers, expected in [
            ((), "blue"),
            ((("X-Turnout-Pool", "green"),), "green"),
            ((("x-turnout-pool", "green"),), "green"),
            ((("Cookie", "a=1; turnout_pool=green"),), "green"),
            ((("X-Turnout-Pool", "blue"), ("Cookie", "turnout_pool=green")), "blue"),  # the header wins
            ((("X-Turnout-Pool", "purple"),), "blue"),  # unknown pool: ignored, never a 5xx
        ]:
            before = _counts(blue, green)
            r = c.request("GET", "/echo", headers)
            assert r.status == 200, (headers, r.status)
            assert _served_by(blue, green, before) == expected, headers
    reasons = [rec.get("reason") for rec in proxy.wait_access_records(6)]
    assert reasons == ["weight", "header", "header", "cookie", "header", "weight"]
    assert "ignored a pool override: it names no pool" in proxy.stderr()


def test_untrusted_override_is_ignored(turnout, origin, origin2):
    blue, green = origin, origin2
    routing = {"overrides": {"header": "X-Turnout-Pool", "cookie": "turnout_pool", "trusted_networks": ["10.0.0.0/8"]}}
    proxy = turnout(pools=_pools(blue, green), active="blue", routing=routing)
    with RawConn(proxy.port) as c:
        for headers in [(("X-Turnout-Pool", "green"),), (("Cookie", "turnout_pool=green"),)]:
            r = c.request("GET", "/echo", headers)
            assert r.status == 200
    assert len(green.requests) == 0 and len(blue.requests) == 2
    assert "ignored a pool override: the client is not trusted to pick a pool" in proxy.stderr()


def test_override_token_is_required_and_never_forwarded(turnout, origin, origin2):
    blue, green = origin, origin2
    routing = {"pool_header": "X-Turnout-Pool",
               "overrides": {"header": "X-Turnout-Pool", "cookie": "turnout_pool", "token": "t0ken-for-testers"}}
    proxy = turnout(pools=_pools(blue, green), active="blue", routing=routing)
    with RawConn(proxy.port) as c:
        cases = [
            ((("X-Turnout-Pool", "green"),), "blue"),
            ((("X-Turnout-Pool", "green;token=wrong-token"),), "blue"),
            ((("X-Turnout-Pool", "green;token=t0ken-for-testers"),), "green"),
            ((("Cookie", "turnout_pool=green:t0ken-for-testers"),), "green"),
        ]
        for headers, expected in cases:
            before = _counts(blue, green)
            r = c.request("GET", "/echo", headers)
            assert r.status == 200
            assert _served_by(blue, green, before) == expected, headers
            upstream_pool = [v for k, v in r.json()["headers"] if k.lower() == "x-turnout-pool"]
            # The origin sees exactly one pool header, set by the proxy, and never the token.
            assert upstream_pool == [expected], upstream_pool


def test_weighted_split_lands_within_two_points(turnout, origin, origin2):
    blue, green = origin, origin2
    routing = {"cohort": {"header": "X-User-Id"}}
    proxy = turnout(pools=_pools(blue, green), split={"blue": "90%", "green": "10%"}, routing=routing)
    n = 5000
    with RawConn(proxy.port) as c:
        for i in range(n):
            r = c.request("GET", "/status/204", (("X-User-Id", f"user-{i}"),))
            assert r.status == 204
    share = 100.0 * len(green.requests) / n
    assert len(blue.requests) + len(green.requests) == n
    assert abs(share - 10.0) <= 2.0, f"green took {share:.2f}% of {n} requests for a 10% weight"


def test_cohort_key_is_sticky(turnout, origin, origin2):
    blue, green = origin, origin2
    routing = {"cohort": {"cookie": "user_id"}}
    proxy = turnout(pools=_pools(blue, green), split={"blue": "50%", "green": "50%"}, routing=routing)
    with RawConn(proxy.port) as c:
        for user in range(20):
            first = None
            for _ in range(5):
                before = _counts(blue, green)
                assert c.request("GET", "/status/204", (("Cookie", f"user_id=u{user}"),)).status == 204
                pool = _served_by(blue, green, before)
                first = first or pool
                assert pool == first, f"user u{user} moved from {first} to {pool}"
    assert {rec["reason"] for rec in proxy.access_records()} == {"sticky"}


def test_bucket_cookie_is_issued_once_and_honoured(turnout, origin, origin2):
    blue, green = origin, origin2
    routing = {"cohort": {"bucket_cookie": {"name": "tb", "max_age": "1h"}}}
    proxy = turnout(pools=_pools(blue, green), split={"blue": "50%", "green": "50%"}, routing=routing)
    with RawConn(proxy.port) as c:
        before = _counts(blue, green)
        r = c.request("GET", "/echo")
        assert r.status == 200
        cookies = r.header_all("Set-Cookie")
        assert len(cookies) == 1, cookies
        m = re.fullmatch(r"tb=(\d{1,6}); Path=/; Max-Age=3600; HttpOnly; SameSite=Lax", cookies[0])
        assert m, cookies[0]
        bucket = int(m.group(1))
        first_pool = _served_by(blue, green, before)
        assert first_pool == ("blue" if bucket < 500_000 else "green")
        # Sent back, it is honoured and not issued again.
        for _ in range(10):
            before = _counts(blue, green)
            r = c.request("GET", "/echo", (("Cookie", f"tb={bucket}"),))
            assert r.header_all("Set-Cookie") == []
            assert _served_by(blue, green, before) == first_pool
        # The cookie holds the bucket, not the pool: the ranges decide.
        for value, expected in [("0", "blue"), ("499999", "blue"), ("500000", "green"), ("999999", "green")]:
            before = _counts(blue, green)
            r = c.request("GET", "/echo", (("Cookie", f"tb={value}"),))
            assert _served_by(blue, green, before) == expected, value
        # A forged or broken value is replaced.
        r = c.request("GET", "/echo", (("Cookie", "tb=1000000"),))
        assert len(r.header_all("Set-Cookie")) == 1
    reasons = [rec["reason"] for rec in proxy.access_records()]
    assert reasons[0] == "weight" and set(reasons[1:-1]) == {"sticky"}


def test_rules_route_by_path_and_host(turnout, origin, origin2):
    blue, green = origin, origin2
    routing = {"rules": [
        {"path_prefix": "/api/", "active": "green"},
        {"host": '"*.beta.example"', "split": {"green": "100%"}},
    ]}
    proxy = turnout(pools=_pools(blue, green), active="blue", routing=routing)
    with RawConn(proxy.port) as c:
        for path, host, expected in [
            ("/api/users", "e2e.test", "green"),
            ("/apix", "e2e.test", "blue"),
            ("/", "x.beta.example:8080", "green"),
            ("/", "beta.example", "blue"),
        ]:
            before = _counts(blue, green)
            assert c.request("GET", path, host=host).status in (200, 404)
            assert _served_by(blue, green, before) == expected, (path, host)


def test_pool_without_live_member_gets_no_weighted_traffic(turnout, origin):
    green = origin
    dead = f"127.0.0.1:{free_port()}"  # nothing listens here
    routing = {"cohort": {"header": "X-User-Id"}}
    proxy = turnout(pools={"blue": [dead], "green": [green.addr]}, split={"blue": "50%", "green": "50%"},
                    routing=routing, upstream={"fail_timeout": "30s"})
    with RawConn(proxy.port) as c:
        for i in range(200):
            r = c.request("GET", "/status/204", (("X-User-Id", f"u{i}"),))
            assert r.status == 204, f"request {i} got {r.status}: a split must not send users into an empty pool"
    assert len(green.requests) == 200
    records = proxy.wait_access_records(200)
    reasons = [rec["reason"] for rec in records]
    assert all(rec["pool"] == "green" for rec in records)
    assert set(reasons) == {"fallback", "sticky"}
    assert "requests go to another pool" in proxy.stderr()


def test_pool_names_other_than_blue_and_green(turnout, origin, origin2):
    routing = {"pool_header": "X-Cohort", "cohort": {"header": "X-User-Id"}}
    pools = {"a": [origin.addr], "b": [origin2.addr], "c": [origin2.addr]}
    proxy = turnout(pools=pools, split={"a": "50%", "b": "25%", "c": "25%"}, routing=routing)
    seen = {}
    with RawConn(proxy.port) as c:
        for i in range(400):
            r = c.request("GET", "/echo", (("X-User-Id", f"id{i}"),))
            cohort = [v for k, v in r.json()["headers"] if k == "X-Cohort"]
            assert len(cohort) == 1
            seen[cohort[0]] = seen.get(cohort[0], 0) + 1
    assert set(seen) == {"a", "b", "c"}
    assert 140 <= seen["a"] <= 260


def test_shipped_testers_example(turnout_bin, tmp_path, origin, origin2):
    """config/examples/routing/testers.yaml, as shipped but for its addresses."""
    from pathlib import Path

    from proxyctl import start_turnout

    blue, green = origin, origin2
    text = (Path(__file__).resolve().parents[2] / "config/examples/routing/testers.yaml").read_text()
    port = free_port()
    text = text.replace("0.0.0.0:8080", f"127.0.0.1:{port}")
    text = text.replace("[10.0.1.10:8080, 10.0.1.11:8080]", f"[{blue.addr}]")
    text = text.replace("[10.0.2.10:8080, 10.0.2.11:8080]", f"[{green.addr}]")
    from proxyctl import short_socket_path
    text += f"admin:\n  socket: {short_socket_path()}\n"
    flag = (("X-Turnout-Pool", "green;token=change-me-testers-2026"),)
    proxy = start_turnout(turnout_bin, tmp_path / "shipped", text, port)
    try:
        with RawConn(port) as c:
            # Loopback is not in the example's trusted networks: even the right token is ignored.
            assert c.request("GET", "/echo", flag).status == 200
        assert (len(blue.requests), len(green.requests)) == (1, 0)
    finally:
        proxy.stop()
    trusted = text.replace('trusted_networks: [192.0.2.0/24, "2001:db8:1::/48"]', "trusted_networks: [127.0.0.0/8]")
    trusted = re.sub(r"socket: \S+", f"socket: {short_socket_path()}", trusted)
    assert trusted != text
    port2 = free_port()
    proxy = start_turnout(turnout_bin, tmp_path / "trusted", trusted.replace(f"127.0.0.1:{port}", f"127.0.0.1:{port2}"), port2)
    try:
        with RawConn(port2) as c:
            assert c.request("GET", "/echo", flag).status == 200
            assert c.request("GET", "/echo", (("X-Turnout-Pool", "green"),)).status == 200  # no token: blue
        assert (len(blue.requests), len(green.requests)) == (2, 1)
    finally:
        proxy.stop()

"""The admin API and turnoutctl against the real binary: atomic acknowledged cutover,
rollback, member drain, durable state, audit log, preconditions and permissions."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from client import RawConn, free_port, wait_until
from proxyctl import admin_call, make_config, short_socket_path, start_turnout, to_yaml, turnoutctl_bin

POOL_HEADER = {"pool_header": "X-Turnout-Pool"}


def _pool_of(response) -> str:
    return [v for k, v in response.json()["headers"] if k == "X-Turnout-Pool"][0]


def _blue_green(turnout, blue, green, **kw):
    return turnout(pools={"blue": [blue.addr], "green": [green.addr]}, active="blue", routing=POOL_HEADER, **kw)


def test_turnoutctl_flip_split_rollback_and_history(turnout, origin, origin2):
    proxy = _blue_green(turnout, origin, origin2)
    r = proxy.ctl("status")
    assert r.returncode == 0, r.stderr
    assert "generation 1" in r.stdout and "blue 100%, green 0%" in r.stdout and "(active: blue)" in r.stdout
    with RawConn(proxy.port) as c:
        assert _pool_of(c.request("GET", "/echo")) == "blue"
        r = proxy.ctl("flip", "green")
        assert r.returncode == 0, r.stderr
        assert "generation 2" in r.stdout and "traffic moved: 100%" in r.stdout
        assert _pool_of(c.request("GET", "/echo")) == "green"  # the same keep-alive connection
        r = proxy.ctl("split", "green=10.5", "blue=89.5")
        assert r.returncode == 0 and "generation 3" in r.stdout, r.stderr
        r = proxy.ctl("rollback")
        assert r.returncode == 0 and "generation 4: blue 0%, green 100%" in r.stdout, r.stdout + r.stderr
        r = proxy.ctl("rollback")
        assert r.returncode == 0 and "generation 5: blue 100%, green 0%" in r.stdout
        assert _pool_of(c.request("GET", "/echo")) == "blue"
        r = proxy.ctl("rollback")
        assert r.returncode == 1 and "nothing to roll back to" in r.stderr
    r = proxy.ctl("history", "--json")
    entries = json.loads(r.stdout)["entries"]
    assert [e["operation"] for e in entries] == ["flip", "split", "rollback", "rollback"]
    assert all(e["peer"]["uid"] == os.getuid() and e["peer"]["pid"] > 0 for e in entries)
    assert entries[0]["before"] == {"blue": "100%", "green": "0%"} and entries[0]["after"] == {"blue": "0%", "green": "100%"}
    audit = (proxy.config_path.parent / "turnout.audit.log").read_text().splitlines()
    assert len(audit) == 4 and json.loads(audit[1])["after"] == {"blue": "89.5%", "green": "10.5%"}
    r = proxy.ctl("status", "--json")
    status = json.loads(r.stdout)
    assert status["generation"] == 5 and status["active"] == "blue" and status["workers"] == 1


def test_curl_over_the_unix_socket(turnout, origin, origin2):
    proxy = _blue_green(turnout, origin, origin2)
    out = subprocess.run(
        ["curl", "-sS", "--unix-socket", proxy.socket_path, "-X", "POST", "-d", '{"pool": "green"}',
         "http://turnout/v1/flip"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["generation"] == 2 and reply["state"]["active"] == "green"


def test_invalid_changes_are_refused_and_change_nothing(turnout, origin, origin2):
    proxy = _blue_green(turnout, origin, origin2)
    cases = [
        ("POST", "/v1/flip", {"pool": "purple"}, 404),
        ("POST", "/v1/flip", {}, 400),
        ("PUT", "/v1/split", {"split": {"blue": "90%", "green": "5%"}}, 422),
        ("PUT", "/v1/split", {"split": {"blue": "90.00001%", "green": "9.99999%"}}, 422),
        ("PUT", "/v1/split", {"split": {"blue": True}}, 400),
        ("POST", "/v1/changes", {"flip": "green", "members": [{"pool": "blue", "address": "10.0.0.9:80", "action": "drain"}]}, 404),
        ("POST", "/v1/changes", {"flip": "green", "split": {"green": "100%"}}, 400),
        ("POST", "/v1/changes", {"frobnicate": 1}, 400),
        ("POST", "/v1/pools/blue/members", {"address": "localhost:80"}, 422),
        ("DELETE", f"/v1/pools/green/members/{origin2.addr}", None, 422),  # the last member
        ("POST", "/v1/flip", b"{not json", 400),
        # A token must survive a header parameter and a cookie value: no ';', ',' or spaces.
        ("POST", "/v1/changes", {"overrides": {"header": "X-Pool", "token": "abc;defgh"}}, 422),
        ("POST", "/v1/changes", {"overrides": {"header": "X Pool"}}, 422),
        ("DELETE", "/v1/status", None, 405),
        ("GET", "/v1/nothing", None, 404),
    ]
    for method, path, body, expected in cases:
        status, reply = proxy.admin(method, path, body)
        assert status == expected, (method, path, body, status, reply)
        assert reply["error"], reply
        assert reply["generation"] == 1
    status, reply = proxy.admin("GET", "/v1/status")
    assert status == 200 and reply["generation"] == 1 and reply["active"] == "blue"
    assert not (proxy.config_path.parent / "turnout.audit.log").read_text().strip()
    with RawConn(proxy.port) as c:
        assert _pool_of(c.request("GET", "/echo")) == "blue"


def test_stale_generation_gets_409_and_concurrent_operators_one_wins(turnout, origin, origin2):
    proxy = _blue_green(turnout, origin, origin2)
    r = proxy.ctl("flip", "green", "--if-match", "7")
    assert r.returncode == 4 and "generation is 1, not 7" in r.stderr
    results = []

    def operator(share):
        results.append(proxy.admin("PUT", "/v1/split", {"split": {"green": f"{share}%", "blue": f"{100 - share}%"}},
                                   headers=[("If-Match", "1")]))

    threads = [threading.Thread(target=operator, args=(s,)) for s in (10, 20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 409], results
    winner = [reply for s, reply in results if s == 200][0]
    status, now = proxy.admin("GET", "/v1/status")
    assert now["generation"] == 2 and now["split"] == winner["state"]["split"]


def test_dry_run_reports_and_changes_nothing(turnout, origin, origin2):
    proxy = _blue_green(turnout, origin, origin2)
    status, reply = proxy.admin("PUT", "/v1/split?dry_run=true", {"split": {"blue": "75%", "green": "25%"}})
    assert status == 200 and reply["dry_run"] is True and reply["moved"] == "25%"
    assert reply["would_be_generation"] == 2 and reply["state"]["split"] == {"blue": "75%", "green": "25%"}
    status, reply = proxy.admin("POST", "/v1/changes", {"flip": "green", "dry_run": True})
    assert status == 200 and reply["moved"] == "100%"
    r = proxy.ctl("flip", "green", "--dry-run")
    assert r.returncode == 0 and "dry run: nothing changed" in r.stdout
    assert proxy.admin("GET", "/v1/status")[1]["generation"] == 1


def test_transaction_changes_split_members_and_overrides_at_once(turnout, origin, origin2):
    proxy = _blue_green(turnout, origin, origin2)
    extra = free_port()
    change = {
        "split": {"blue": "50%", "green": "50%"},
        "members": [{"pool": "green", "address": f"127.0.0.1:{extra}", "action": "add", "weight": 0},
                    {"pool": "blue", "address": origin.addr, "action": "drain"}],
        "overrides": {"header": "X-Turnout-Pool", "trusted_networks": ["127.0.0.0/8"]},
    }
    status, reply = proxy.admin("POST", "/v1/changes", change)
    assert status == 200 and reply["generation"] == 2, reply
    status, s = proxy.admin("GET", "/v1/status")
    blue, green = s["pools"]
    assert blue["members"][0]["state"] == "drained"
    assert [m["address"] for m in green["members"]] == [origin2.addr, f"127.0.0.1:{extra}"]
    assert s["overrides"]["header"] == "X-Turnout-Pool" and s["overrides"]["trusted_networks"] == ["127.0.0.0/8"]
    with RawConn(proxy.port) as c:
        # blue's only member is drained: the split's blue share falls back to green.
        for i in range(20):
            assert _pool_of(c.request("GET", "/echo", (("X-User", str(i)),))) == "green"
        # The override now works, but blue has no member taking traffic: ignored.
        assert _pool_of(c.request("GET", "/echo", (("X-Turnout-Pool", "blue"),))) == "green"
    assert len(origin.requests) == 0


def test_drain_enable_add_remove_member(turnout, origin, origin2):
    from origins import Origin

    third = Origin()
    try:
        proxy = turnout(pools={"blue": [origin.addr, third.addr], "green": [origin2.addr]}, active="blue")
        with RawConn(proxy.port) as c:
            for _ in range(10):
                assert c.request("GET", "/status/204").status == 204
        assert len(origin.requests) == 5 and len(third.requests) == 5
        r = proxy.ctl("drain", "blue", third.addr)
        assert r.returncode == 0 and f"drain blue {third.addr}" in r.stdout, r.stderr
        with RawConn(proxy.port) as c:
            for _ in range(10):
                assert c.request("GET", "/status/204").status == 204
        assert len(third.requests) == 5, "a drained member got new requests"
        r = proxy.ctl("members", "blue")
        assert "drained" in r.stdout and "enabled" in r.stdout
        assert proxy.ctl("enable", "blue", third.addr).returncode == 0
        assert proxy.ctl("remove", "blue", origin.addr).returncode == 0
        with RawConn(proxy.port) as c:
            for _ in range(4):
                assert c.request("GET", "/status/204").status == 204
        assert len(origin.requests) == 15 and len(third.requests) == 9
        r = proxy.ctl("add", "blue", origin.addr, "--weight", "3")
        assert r.returncode == 0
        with RawConn(proxy.port) as c:
            for _ in range(8):
                assert c.request("GET", "/status/204").status == 204
        assert len(origin.requests) == 21 and len(third.requests) == 11
    finally:
        third.stop()


def test_drained_member_finishes_requests_in_flight(turnout, origin, origin2):
    proxy = _blue_green(turnout, origin, origin2)
    with RawConn(proxy.port) as slow:
        slow.send(b"GET /slow/1500 HTTP/1.1\r\nHost: e2e.test\r\n\r\n")
        wait_until(lambda: len(origin.requests) == 1, 3)
        assert proxy.ctl("drain", "blue", origin.addr).returncode == 0
        assert proxy.ctl("flip", "green").returncode == 0
        r = slow.read_response()
        assert r.status == 200 and r.body.strip() == b"slow 1500"


def test_idle_connections_to_the_old_pool_close_after_flip(turnout, origin, origin2):
    proxy = _blue_green(turnout, origin, origin2)
    with RawConn(proxy.port) as c:
        for _ in range(3):
            assert c.request("GET", "/status/204").status == 204
    wait_until(lambda: origin.open_connections == 1, 3)
    assert proxy.ctl("flip", "green").returncode == 0
    wait_until(lambda: origin.open_connections == 0, 3)


def test_restart_keeps_the_flipped_state(turnout_bin, tmp_path, origin, origin2):
    port = free_port()
    cfg = make_config(port, {"blue": [origin.addr], "green": [origin2.addr]}, "blue", routing=POOL_HEADER)
    workdir = tmp_path / "p"
    proxy = start_turnout(turnout_bin, workdir, cfg, port)
    try:
        assert proxy.ctl("flip", "green").returncode == 0
        assert proxy.ctl("split", "green=99.9999", "blue=0.0001").returncode == 0
    finally:
        assert proxy.stop() == 0
    proxy = start_turnout(turnout_bin, workdir, cfg, port)
    try:
        status, s = proxy.admin("GET", "/v1/status")
        assert s["generation"] == 3 and s["split"] == {"blue": "0.0001%", "green": "99.9999%"}
        assert s["rollback_depth"] == 2
        assert "routing state restored" in proxy.stderr()
        assert proxy.ctl("rollback").returncode == 0
        with RawConn(port) as c:
            assert _pool_of(c.request("GET", "/echo")) == "green"
    finally:
        proxy.stop()


def test_restart_under_an_edited_configuration_takes_the_edit_and_keeps_run_time_changes(
        turnout_bin, tmp_path, origin, origin2):
    """The state file wins over the configuration's split and members only where the
    configuration is as it was when the file was written: a restart keeps a flip, and an
    edit of the configuration (here `active`, then green's members) takes effect."""
    port = free_port()
    cfg = make_config(port, {"blue": [origin.addr], "green": [origin2.addr]}, "blue", routing=POOL_HEADER)
    workdir = tmp_path / "e"

    def pool_now():
        with RawConn(port) as c:
            return _pool_of(c.request("GET", "/echo"))

    proxy = start_turnout(turnout_bin, workdir, cfg, port)
    try:
        assert pool_now() == "blue"
    finally:
        assert proxy.stop() == 0
    cfg["active"] = "green"  # the edit: cut over by changing the configuration and restarting
    proxy = start_turnout(turnout_bin, workdir, cfg, port)
    try:
        assert pool_now() == "green"
        status, s = proxy.admin("GET", "/v1/status")
        assert s["generation"] == 2 and s["active"] == "green" and s["rollback_depth"] == 1
        assert "the configuration was edited since the state file was written" in proxy.stderr()
        record = json.loads((workdir / "turnout.audit.log").read_text().splitlines()[-1])
        assert record["operation"] == "configuration" and record["edited"] == ["split"]
        assert record["before"] == {"blue": "100%", "green": "0%"} and record["after"] == {"blue": "0%", "green": "100%"}
        assert record["peer"] == {"configuration": str(workdir / "turnout.yaml")}
        # One rollback undoes the edit, as it would an admin change.
        assert proxy.ctl("rollback").returncode == 0
        assert pool_now() == "blue"
    finally:
        assert proxy.stop() == 0
    # The same configuration again: the run-time rollback stands.
    proxy = start_turnout(turnout_bin, workdir, cfg, port)
    try:
        assert pool_now() == "blue"
        status, s = proxy.admin("GET", "/v1/status")
        assert s["generation"] == 3
        assert "the configuration was edited" not in proxy.stderr()
    finally:
        assert proxy.stop() == 0
    # Only green's members edited (to blue's origin): they are taken, the split is kept.
    cfg["pools"]["green"]["members"] = [origin.addr]
    proxy = start_turnout(turnout_bin, workdir, cfg, port)
    try:
        assert pool_now() == "blue"
        status, s = proxy.admin("GET", "/v1/status")
        assert s["generation"] == 4
        green = [p for p in s["pools"] if p["name"] == "green"][0]
        assert origin.addr in json.dumps(green) and origin2.addr not in json.dumps(green)
        assert proxy.ctl("flip", "green").returncode == 0
        before = len(origin2.requests)
        assert pool_now() == "green"
        assert len(origin2.requests) == before
    finally:
        proxy.stop()


def test_a_second_turnout_on_the_same_files_leaves_the_running_ones_state_alone(
        turnout_bin, tmp_path, origin, origin2):
    """A second Turnout started by mistake with an edited configuration beside the running
    one (same state file, audit log and admin socket) refuses to start before it writes
    anything: the running one's state file and audit log stay as they were."""
    port = free_port()
    cfg = make_config(port, {"blue": [origin.addr], "green": [origin2.addr]}, "blue", routing=POOL_HEADER)
    workdir = tmp_path / "two"
    proxy = start_turnout(turnout_bin, workdir, cfg, port)
    try:
        assert proxy.ctl("split", "blue=90", "green=10").returncode == 0
        state_before = (workdir / "turnout.state.json").read_bytes()
        audit_before = (workdir / "turnout.audit.log").read_bytes()
        edited = dict(cfg, active="green", listen=[f"127.0.0.1:{free_port()}"])
        second = workdir / "edited.yaml"
        second.write_text(to_yaml(edited) + "\n")
        r = subprocess.run([turnout_bin, "run", "--config", str(second)], capture_output=True, timeout=10)
        assert r.returncode != 0
        assert b"another turnout is serving the admin socket" in r.stderr
        assert (workdir / "turnout.state.json").read_bytes() == state_before
        assert (workdir / "turnout.audit.log").read_bytes() == audit_before
        status, s = proxy.admin("GET", "/v1/status")
        assert s["generation"] == 2 and s["split"] == {"blue": "90%", "green": "10%"}
    finally:
        proxy.stop()


def test_kill9_during_changes_never_leaves_a_bad_state_file(turnout_bin, tmp_path, origin, origin2):
    port = free_port()
    cfg = make_config(port, {"blue": [origin.addr], "green": [origin2.addr]}, "blue", routing=POOL_HEADER)
    workdir = tmp_path / "k"
    rng = random.Random(7)
    generations = []
    for round_ in range(6):
        proxy = start_turnout(turnout_bin, workdir, cfg, port)
        stop = threading.Event()

        def change_forever():
            while not stop.is_set():
                share = rng.randint(0, 100)
                try:
                    admin_call(proxy.socket_path, "PUT", "/v1/split",
                               {"split": {"green": f"{share}%", "blue": f"{100 - share}%"}}, timeout=2)
                except (OSError, IndexError, ValueError):
                    return  # killed mid-call

        t = threading.Thread(target=change_forever)
        t.start()
        time.sleep(0.1 + rng.random() * 0.3)
        os.kill(proxy.pid, signal.SIGKILL)
        proxy.proc.wait(timeout=5)
        stop.set()
        t.join(timeout=5)
        proxy.stop()
        state = json.loads((workdir / "turnout.state.json").read_text())  # complete JSON, every time
        assert state["version"] == 1 and state["generation"] >= 1
        assert not list(workdir.glob("*.corrupt-*"))
        generations.append(state["generation"])
    assert generations[-1] > 20, f"too few changes were made to test anything: {generations}"
    proxy = start_turnout(turnout_bin, workdir, cfg, port)
    try:
        status, s = proxy.admin("GET", "/v1/status")
        assert status == 200 and s["generation"] == state["generation"]
        assert "cannot be used" not in proxy.stderr()
    finally:
        proxy.stop()


def test_corrupt_state_file_is_kept_aside_or_refused(turnout_bin, tmp_path, origin, origin2):
    port = free_port()
    cfg = make_config(port, {"blue": [origin.addr], "green": [origin2.addr]}, "green")
    workdir = tmp_path / "c"
    workdir.mkdir()
    (workdir / "turnout.state.json").write_text('{"version": 1, "generation": 4, "state": {"split": ')
    proxy = start_turnout(turnout_bin, workdir, cfg, port)
    try:
        status, s = proxy.admin("GET", "/v1/status")
        assert s["active"] == "green" and s["generation"] == 1
        assert "the state file cannot be used" in proxy.stderr()
        kept = list(workdir.glob("turnout.state.json.corrupt-*"))
        assert len(kept) == 1 and kept[0].read_text().endswith('"split": ')
    finally:
        proxy.stop()
    (workdir / "turnout.state.json").write_text("garbage")
    cfg_refuse = dict(cfg, state={"on_corrupt": "refuse"})
    cfg_refuse["admin"] = {"socket": short_socket_path()}
    (workdir / "turnout.yaml").write_text(to_yaml(cfg_refuse) + "\n")
    r = subprocess.run([turnout_bin, "run", "--config", str(workdir / "turnout.yaml")], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1 and "state.on_corrupt is refuse" in r.stderr
    assert (workdir / "turnout.state.json").read_text() == "garbage"


def test_admin_socket_is_0600_and_refuses_other_users(turnout, origin, origin2):
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    proxy = _blue_green(turnout, origin, origin2)
    st = os.stat(proxy.socket_path)
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == 0
    # The socket's folder must be reachable for the test to be about the socket's mode.
    os.chmod(os.path.dirname(proxy.socket_path), 0o755)
    probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1]); print('connected')\nexcept PermissionError: print('denied')\n")
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "python3", "-c", probe,
                        proxy.socket_path], capture_output=True, text=True, timeout=20)
    assert r.stdout.strip() == "denied", r.stdout + r.stderr
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", turnoutctl_bin(), "status",
                        "--socket", proxy.socket_path], capture_output=True, text=True, timeout=20)
    assert r.returncode == 3 and "permission denied" in r.stderr, r.stderr


def test_socket_file_is_replaced_when_stale_and_kept_when_live(turnout_bin, tmp_path, origin, origin2):
    sock_path = short_socket_path()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()  # a socket file nobody listens on, as after kill -9
    port = free_port()
    cfg = make_config(port, {"blue": [origin.addr], "green": [origin2.addr]}, "blue", admin={"socket": sock_path})
    proxy = start_turnout(turnout_bin, tmp_path / "a", cfg, port)
    try:
        assert proxy.admin("GET", "/v1/status")[0] == 200
        port2 = free_port()
        cfg2 = make_config(port2, {"blue": [origin.addr], "green": [origin2.addr]}, "blue", admin={"socket": sock_path})
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "turnout.yaml").write_text(to_yaml(cfg2) + "\n")
        r = subprocess.run([turnout_bin, "run", "--config", str(tmp_path / "b" / "turnout.yaml")], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 1 and "another turnout is serving the admin socket" in r.stderr
        assert proxy.admin("GET", "/v1/status")[0] == 200
    finally:
        proxy.stop()
    assert not os.path.exists(sock_path), "the socket file outlived its server"


def test_tcp_admin_listener_requires_a_token(turnout, origin, origin2, tmp_path):
    token_file = tmp_path / "tokens"
    token_file.write_text("# operators\nci-pipeline:0123456789abcdef0123\n")
    admin_port = free_port()
    proxy = _blue_green(turnout, origin, origin2,
                        admin={"listen": f"127.0.0.1:{admin_port}", "token_file": str(token_file)})

    def call(headers):
        c = RawConn(admin_port)
        try:
            c.send(b"POST /v1/flip HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n" + headers + b"\r\n{\"pool\":\"green\"}")
            return c.read_response()
        finally:
            c.close()

    assert call(b"").status == 401
    assert call(b"Authorization: Bearer wrong-token-wrong-token\r\n").status == 401
    r = call(b"Authorization: Bearer 0123456789abcdef0123\r\n")
    assert r.status == 200 and json.loads(r.body)["generation"] == 2
    entry = proxy.admin("GET", "/v1/history")[1]["entries"][-1]
    assert entry["peer"] == {"token": "ci-pipeline"}


@pytest.mark.timeout(240)
def test_100_flips_under_load_lose_nothing_and_apply_at_once(turnout, origin, origin2):
    proxy = turnout(pools={"blue": [origin.addr], "green": [origin2.addr]}, active="blue", routing=POOL_HEADER,
                    workers=2)
    stop = threading.Event()
    failures: list[str] = []
    records: list[tuple[float, float, str]] = []  # (request sent, response received, pool that answered)
    lock = threading.Lock()

    def client():
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        mine = []
        while not stop.is_set():
            try:
                sent = time.monotonic()
                conn.request("GET", "/echo")
                r = conn.getresponse()
                body = r.read()
                received = time.monotonic()
                if r.status != 200:
                    failures.append(f"status {r.status}")
                    continue
                pool = [v for k, v in json.loads(body)["headers"] if k == "X-Turnout-Pool"][0]
                mine.append((sent, received, pool))
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.close()
        with lock:
            records.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads:
        t.start()
    flips: list[tuple[float, float, str]] = []  # (call started, reply arrived, pool)
    try:
        time.sleep(0.3)
        for i in range(100):
            pool = "green" if i % 2 == 0 else "blue"
            started = time.monotonic()
            status, reply = proxy.admin("POST", "/v1/flip", {"pool": pool})
            assert status == 200 and reply["generation"] == i + 2, reply
            flips.append((started, time.monotonic(), pool))
            # Long enough between flips for several of the 32 clients' requests to fall wholly
            # inside the window even when a slow host stretches each round trip to ~100 ms.
            time.sleep(0.06)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
    assert not failures, f"{len(failures)} failed requests, e.g. {failures[:3]}"
    assert len(records) > 1000
    # A request sent after flip k's reply and answered before flip k+1 started must have
    # reached flip k's pool: the reply means every worker routes by the new snapshot.
    checked = 0
    for k, (_, replied, pool) in enumerate(flips):
        next_start = flips[k + 1][0] if k + 1 < len(flips) else float("inf")
        for sent, received, answered_by in records:
            if sent >= replied and received <= next_start:
                checked += 1
                assert answered_by == pool, f"a request sent after the flip to {pool} was answered by {answered_by}"
    assert checked > 300, checked

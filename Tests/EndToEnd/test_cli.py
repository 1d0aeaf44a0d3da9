"""The command line: `turnout check`, `turnout run` with a bad config, `turnout demo`."""

import glob
import os
import re
from pathlib import Path
import signal
import subprocess
import time

import pytest

from client import RawConn, curl
from proxyctl import make_config, port_accepts, to_yaml

VALID = """\
workers: 1
listen:
  - 127.0.0.1:18080
pools:
  blue:
    members:
      - 127.0.0.1:19001
  green:
    members:
      - 127.0.0.1:19002
active: blue
timeouts: {client_header: 10s, client_idle: 60s, body_idle: 60s, upstream_connect: 5s, upstream_response: 60s, upstream_idle: 60s, drain: 30s}
limits: {max_request_line: 8KiB, max_header_size: 32KiB, max_headers: 100, buffer_size: 16KiB, max_body_size: 0}
upstream: {max_idle_per_member: 64}
headers: {trust_forwarded: false, preserve_host: true, request_id: X-Request-Id}
log: {level: info, access: stdout, format: json}
"""


def _check(bin_path, path):
    return subprocess.run([bin_path, "check", "--config", str(path)], capture_output=True, text=True, timeout=20)


def test_check_accepts_valid_config(turnout_bin, tmp_path):
    p = tmp_path / "good.yaml"
    p.write_text(VALID)
    r = _check(turnout_bin, p)
    assert r.returncode == 0, f"stdout={r.stdout!r} stderr={r.stderr!r}"


def test_check_accepts_generated_config(turnout_bin, tmp_path):
    p = tmp_path / "gen.yaml"
    p.write_text(to_yaml(make_config(18081, {"blue": ["127.0.0.1:1"], "green": ["127.0.0.1:2"]})) + "\n")
    r = _check(turnout_bin, p)
    assert r.returncode == 0, f"stdout={r.stdout!r} stderr={r.stderr!r}"


def _expect_error(bin_path, path, line, key_fragment):
    r = _check(bin_path, path)
    assert r.returncode == 1, f"exit {r.returncode}; stderr={r.stderr!r}"
    m = re.search(r"(\S*" + re.escape(path.name) + r"):(\d+):(\d+): (.*)", r.stderr)
    assert m, f"no 'file:line:col: ' diagnostic in stderr: {r.stderr!r}"
    assert int(m.group(2)) == line, f"reported line {m.group(2)}, expected {line}: {r.stderr!r}"
    assert key_fragment in m.group(4), r.stderr
    return m


def test_check_rejects_unknown_top_level_key(turnout_bin, tmp_path):
    p = tmp_path / "bad.yaml"
    lines = VALID.splitlines()
    lines.insert(10, "bogus_key: 1")  # becomes line 11
    p.write_text("\n".join(lines) + "\n")
    m = _expect_error(turnout_bin, p, 11, "bogus_key")
    assert int(m.group(3)) == 1


def test_check_rejects_unknown_nested_key(turnout_bin, tmp_path):
    p = tmp_path / "bad_nested.yaml"
    p.write_text(
        "workers: 1\n"
        "listen:\n"
        "  - 127.0.0.1:18080\n"
        "pools:\n"
        "  blue:\n"
        "    members:\n"
        "      - 127.0.0.1:19001\n"
        "active: blue\n"
        "timeouts:\n"
        "  client_header: 10s\n"
        "  upstream_respons: 2s\n"
    )
    m = _expect_error(turnout_bin, p, 11, "upstream_respons")
    assert int(m.group(3)) == 3


def test_check_rejects_bad_values(turnout_bin, tmp_path):
    cases = {
        "bad_duration.yaml": VALID.replace("client_header: 10s", "client_header: ten"),
        "bad_active.yaml": VALID.replace("active: blue", "active: purple"),
        "bad_listen.yaml": VALID.replace("127.0.0.1:18080", "not-an-address"),
    }
    for name, text in cases.items():
        p = tmp_path / name
        p.write_text(text)
        r = _check(turnout_bin, p)
        assert r.returncode == 1, f"{name}: exit {r.returncode}, stderr={r.stderr!r}"
        assert re.search(re.escape(name) + r":\d+:\d+: ", r.stderr), f"{name}: {r.stderr!r}"


def test_run_with_bad_config_exits_nonzero(turnout_bin, tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(VALID + "bogus_key: 1\n")
    r = subprocess.run([turnout_bin, "run", "--config", str(p)], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "bogus_key" in r.stderr


def test_demo(turnout_bin, tmp_path):
    if port_accepts(8080):
        pytest.skip("127.0.0.1:8080 is busy")
    state_dirs_before = set(glob.glob("/tmp/turnout-demo-*"))
    out = open(tmp_path / "demo.out", "wb")
    err = open(tmp_path / "demo.err", "wb")
    proc = subprocess.Popen([turnout_bin, "demo"], stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not port_accepts(8080):
            assert proc.poll() is None, f"demo exited {proc.returncode}: {(tmp_path / 'demo.err').read_text()}"
            assert time.monotonic() < deadline, "demo never listened on 8080"
            time.sleep(0.05)
        r = curl("http://127.0.0.1:8080/")
        assert r.returncode == 0, r.stderr
        assert r.status == 200
        assert r.body
        with RawConn(8080) as c:
            for _ in range(5):
                assert c.request("GET", "/").status == 200
            # What the banner promises: the header flag and the pool cookie pick green, a
            # bucket in the canary's range is green, one in blue's range is blue.
            for headers, color in [
                ((("X-Turnout-Pool", "green"),), "green"),
                ((("Cookie", "turnout_pool=green"),), "green"),
                ((("Cookie", "turnout_bucket=950000"),), "green"),
                ((("Cookie", "turnout_bucket=5"),), "blue"),
            ]:
                r = c.request("GET", "/hello", headers)
                assert r.status == 200 and color.encode() in r.body.lower(), (headers, r.body[:200])
        banner = (tmp_path / "demo.out").read_text()
        assert "X-Turnout-Pool: green" in banner and "turnoutctl flip green" in banner
        # turnoutctl finds the demo's admin socket with no flags.
        from proxyctl import turnoutctl_bin

        env = {k: v for k, v in os.environ.items() if k != "TURNOUT_ADMIN_SOCKET"}
        st = subprocess.run([turnoutctl_bin(), "status"], capture_output=True, text=True, timeout=20, env=env)
        assert st.returncode == 0 and "blue 90%, green 10%" in st.stdout, st.stdout + st.stderr
        assert subprocess.run([turnoutctl_bin(), "flip", "green"], capture_output=True, timeout=20, env=env).returncode == 0
        with RawConn(8080) as c:
            for _ in range(5):
                assert b"green" in c.request("GET", "/hello").body.lower()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        out.close()
        err.close()
    assert proc.returncode == 0, f"demo exit code {proc.returncode}"
    # The demo's state directory (a fresh one per run) is removed when it stops.
    assert set(glob.glob("/tmp/turnout-demo-*")) <= state_dirs_before


def test_readme_config_is_valid(turnout_bin, tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert blocks, "README shows no configuration"
    for i, text in enumerate(blocks):
        p = tmp_path / f"readme{i}.yaml"
        p.write_text(text)
        r = _check(turnout_bin, p)
        assert r.returncode == 0, f"README block {i}: {r.stderr}"

#!/usr/bin/env bash
# User-space instructions per proxied keep-alive request, for Turnout, HAProxy and nginx, counted by
# valgrind's callgrind: a figure that does not depend on what else the machine is doing.
#
# One nginx origin serves /64 (a 64-byte body). Each proxy runs alone under callgrind, in front of it, with one
# worker and upstream keep-alive; a Python http.client sends WARM requests on one keep-alive connection, the counters
# are zeroed (callgrind_control -z), REQUESTS more requests follow, and the counters are dumped. The table gives the
# instructions of the whole proxy process (its own code, libc, the Swift runtime; not the kernel) divided by
# REQUESTS, and for Turnout the functions that cost most per request.
#
# One request in flight on one connection is the worst case for per-loop-iteration costs (each request takes its own
# epoll round trips); under wrk's 64 connections those are shared by the requests of one iteration.
#
# Environment:
#   TURNOUT_BIN  Turnout binary (default <repo>/.build/release/turnout)
#   REQUESTS     measured requests (default 5000); WARM warm-up requests (default 200)
#   TARGETS      subset of "turnout haproxy nginx" (default all three)
#   TOP          how many of Turnout's costliest functions to list (default 15; 0: none)
#   MODE         keepalive (default): every request on one keep-alive connection; close: a new connection per
#                request, sent with Connection: close (accept, connection set-up and close included)
#   KEEP=1       keep the work directory (configs, callgrind files)
# Needs valgrind, nginx, haproxy, python3 (as root it installs valgrind, nginx-light and haproxy when missing).
# Everything listens on 127.0.0.1; every process started here is stopped by PID on exit.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
TURNOUT_BIN=${TURNOUT_BIN:-$REPO_ROOT/.build/release/turnout}
REQUESTS=${REQUESTS:-5000}
WARM=${WARM:-200}
TARGETS=${TARGETS:-turnout haproxy nginx}
TOP=${TOP:-15}
MODE=${MODE:-keepalive}
[[ $MODE == keepalive || $MODE == close ]] || { printf '[instructions] error: MODE must be keepalive or close (got %s)\n' "$MODE" >&2; exit 1; }

log() { printf '[instructions] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v haproxy >/dev/null || missing+=(haproxy)
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}: install them (apt-get install -y ${missing[*]})"
    policy=/usr/sbin/policy-rc.d created=0
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 || { ((created)) && rm -f "$policy"; die "apt-get failed"; }
    ((created)) && rm -f "$policy"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnout-instructions.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [[ "${KEEP:-0}" == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r ORIGIN_PORT PROXY_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')

wait_port() { # port pid
    for _ in $(seq 1 300); do
        kill -0 "$2" 2>/dev/null || return 1
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2).close()" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

nginx_temp() {
    echo "client_body_temp_path $1/t1; proxy_temp_path $1/t2; fastcgi_temp_path $1/t3; uwsgi_temp_path $1/t4; scgi_temp_path $1/t5;"
}

mkdir -p "$WORK/origin/www" "$WORK/nginx"
head -c 64 /dev/zero | tr '\0' 'a' >"$WORK/origin/www/64"
cat >"$WORK/origin/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/origin/nginx.pid; error_log $WORK/origin/error.log warn;
events { worker_connections 1024; }
http {
    access_log off; $(nginx_temp "$WORK/origin") default_type application/octet-stream;
    sendfile on; tcp_nodelay on; etag off; keepalive_requests 1000000000; keepalive_timeout 300s;
    server { listen 127.0.0.1:$ORIGIN_PORT; root $WORK/origin/www; location / { } }
}
EOF
nginx -p "$WORK/origin/" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" >"$WORK/origin/out.log" 2>&1 &
ORIGIN_PID=$!
PIDS+=("$ORIGIN_PID")
wait_port "$ORIGIN_PORT" "$ORIGIN_PID" || die "origin nginx did not start"

# Requests on one keep-alive connection (MODE=close: a new connection for each, with Connection: close);
# every response must be a 200 with the 64-byte body.
client() { # count
    python3 - "$PROXY_PORT" "$1" "$MODE" <<'EOF'
import http.client, sys
port, count, close = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "close"
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(count):
    if close:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/64", headers={"Connection": "close"} if close else {})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200 and len(body) == 64, (r.status, len(body))
    if close:
        c.close()
EOF
}

# Prints "instructions" for one proxy: $1 name, then the command to run under callgrind.
measure() {
    local name=$1
    shift
    local out="$WORK/$name.callgrind"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$WORK/$name.log" 2>&1 &
    local vp=$!
    PIDS+=("$vp")
    wait_port "$PROXY_PORT" "$vp" || { tail -n 20 "$WORK/$name.log" >&2; die "$name did not start under valgrind"; }
    client "$WARM"
    callgrind_control -z "$vp" >/dev/null 2>&1
    client "$REQUESTS"
    callgrind_control -d "$vp" >/dev/null 2>&1
    for _ in $(seq 1 100); do [[ -s "$out.1" ]] && break; sleep 0.1; done
    kill -TERM "$vp" 2>/dev/null || true
    wait "$vp" 2>/dev/null || true
    [[ -s "$out.1" ]] || die "no callgrind dump for $name"
    python3 - "$out.1" "$REQUESTS" "$name" "$TOP" <<'EOF'
import collections, re, subprocess, sys
path, requests, name, top = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
names, cost, fn, skip = {}, collections.Counter(), None, False
def resolve(token):
    m = re.match(r"\((\d+)\)\s*(.*)", token)
    if not m: return token
    if m.group(2): names[m.group(1)] = m.group(2)
    return names.get(m.group(1), m.group(1))
for line in open(path):
    if line.startswith("fn="): fn = resolve(line[3:].strip())
    elif line.startswith(("cfn=", "cfi=", "cob=")):
        if line.startswith("cfn="): resolve(line[4:].strip())
    elif line.startswith("calls="): skip = True
    elif line[:1].isdigit() or line[:1] in "+-*":
        if skip: skip = False; continue
        parts = line.split()
        if len(parts) > 1 and fn: cost[fn] += int(parts[1])
total = sum(cost.values())
print(f"{name}\t{total / requests:.0f}")
if name == "turnout" and top > 0:
    rows = cost.most_common(top)
    try:
        plain = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(n for n, _ in rows),
                               capture_output=True, text=True).stdout.splitlines()
    except OSError:
        plain = [n for n, _ in rows]
    with open(path + ".top", "w") as f:
        for (n, c), p in zip(rows, plain): f.write(f"| {c / requests:,.0f} | `{p[:110]}` |\n")
EOF
}

results=()
for t in $TARGETS; do
    case $t in
    turnout)
        [[ -x $TURNOUT_BIN ]] || die "no Turnout binary at $TURNOUT_BIN (make build)"
        # valgrind 3.19 cannot read the DWARF 5 that Swift emits: measure a copy without debug sections.
        cp "$TURNOUT_BIN" "$WORK/turnout" && strip --strip-debug "$WORK/turnout"
        mkdir -p "$WORK/turnout.d"
        cat >"$WORK/turnout.d/turnout.yaml" <<EOF
workers: 1
listen: [127.0.0.1:$PROXY_PORT]
pools:
  blue:
    members: [127.0.0.1:$ORIGIN_PORT]
active: blue
admin:
  socket: $WORK/turnout.d/admin.sock
log:
  level: warning
  access: off
EOF
        results+=("$(measure turnout "$WORK/turnout" run --config "$WORK/turnout.d/turnout.yaml")")
        ;;
    haproxy)
        cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:$PROXY_PORT
    default_backend be
backend be
    server origin 127.0.0.1:$ORIGIN_PORT
EOF
        results+=("$(measure haproxy haproxy -db -f "$WORK/haproxy.cfg")")
        ;;
    nginx)
        cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1; master_process off; daemon off; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off; $(nginx_temp "$WORK/nginx") tcp_nodelay on; keepalive_requests 1000000000; keepalive_timeout 300s;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
        results+=("$(measure nginx nginx -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf")")
        ;;
    *) die "unknown target $t" ;;
    esac
done

if [[ $MODE == close ]]; then what="request on a new connection"; else what="keep-alive request"; fi
echo "| proxy | user-space instructions per $what (callgrind, $REQUESTS requests) |"
echo "|---|---:|"
for r in "${results[@]}"; do
    IFS=$'\t' read -r name count <<<"$r"
    printf '| %s | %s |\n' "$name" "$(python3 -c "print(f'{int($count):,}')")"
done
if [[ -s "$WORK/turnout.callgrind.1.top" ]]; then
    echo
    echo "| Turnout's costliest functions | instructions per request |"
    echo "|---|---:|"
    awk -F'|' '{printf "|%s|%s|\n", $3, $2}' "$WORK/turnout.callgrind.1.top"
fi

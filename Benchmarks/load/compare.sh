#!/usr/bin/env bash
# Compare Turnout with nginx and HAProxy as HTTP/1.1 reverse proxies on this machine.
#
# One nginx origin serves /64 (64-byte body), /20k (20 000 bytes) and /64k (65536 bytes).
# wrk loads the origin directly and through each proxy, in interleaved rounds, for three
# cases by default:
#   keepalive-64B   64-byte responses, 64 keep-alive connections      (wrk -t1 -c64)
#   keepalive-64KiB 64 KiB responses, 16 keep-alive connections       (wrk -t1 -c16)
#   close-64B       64-byte responses, Connection: close per request  (wrk -t1 -c16)
# and on request (CASES) keepalive-20KB: 20 000-byte responses, more than one 16 KiB buffer
# and below Turnout's splice line, 16 keep-alive connections (wrk -t1 -c16); upload-20KB:
# POST of a 20 000-byte body to /post (the origin answers 200 "ok"), 16 keep-alive
# connections (wrk -t1 -c16 with a Lua script).
# and prints a Markdown table: median req/s of the rounds, ratio to direct, p50, p99,
# peak RSS of the proxy during its runs and the proxy's CPU time per request.
#
# A second table shows, per proxy: its idle RSS (after start-up and one request, before any
# load); after the timed rounds, its RSS while it holds IDLE_CONNS idle keep-alive client
# connections (each has carried one GET /64; opened by idle_conns.py) and the increase per
# connection over the idle RSS; and, with SYSCALLS=1, its system calls per request (strace -c
# while idle_conns.py sends 5000 keep-alive GET /64 over 16 connections). The connection
# limits are sized for IDLE_CONNS: nginx worker_connections, HAProxy maxconn and Turnout
# limits.max_connections are max(12000, IDLE_CONNS + 2000) (with IDLE_CONNS=0: 8192, 8192
# and Turnout's default 10000).
#
# Everything listens on 127.0.0.1 only; nothing here needs the network, except
# installing nginx/haproxy/wrk from Debian's packages when they are missing (as root).
#
# Environment:
#   TURNOUT_BIN  Turnout binary (default <repo>/.build/release/turnout); skipped if missing
#   ROUNDS       interleaved rounds (default 3)
#   DURATION     seconds per wrk run (default 8)
#   WARMUP       seconds of untimed warm-up per target and case before round 1 (default 1)
#   QUICK=1      smoke test: 1 round of 2 s
#   TARGETS      space-separated subset of "direct nginx haproxy turnout turnout-bp turnout-base"
#                (turnout-bp: Turnout with busy_poll set to BUSY_POLL; turnout-base: the binary
#                BASE_BIN with Turnout's configuration, to measure a change before and after in
#                the same interleaved run; neither is in the default set)
#   BASE_BIN     binary of the turnout-base target (for example one built from an earlier
#                commit in a git worktree)
#   BUSY_POLL    busy_poll of the turnout-bp target (default 50us)
#   CASES        space-separated subset of "keepalive-64B keepalive-64KiB close-64B single-64B
#                keepalive-20KB upload-20KB" (single-64B: one keep-alive connection, one
#                request at a time; none of the last three by default)
#   IDLE_CONNS   idle keep-alive client connections to hold per proxy (default 10000,
#                1000 with QUICK=1; 0 skips the step). Needs about IDLE_CONNS + 256 open files
#                per process: the script raises its soft open-file limit to the hard one.
#   SYSCALLS=1   also count each proxy's system calls per request with strace (default off:
#                strace slows the proxy down; it runs after the timed rounds)
#   WORKERS      workers of each proxy (default 1): nginx worker_processes, HAProxy nbthread,
#                Turnout workers. The origin keeps one worker.
#   PROXY_CPU    limit each proxy to this share of one core, in per cent (for example 40), by
#                a CPU bandwidth quota on a cgroup of its own (period CPU_PERIOD_US, default
#                10000 µs; cgroup v2 cpu.max or v1 cpu.cfs_quota_us; needs root). The proxy,
#                not the machine, is then the bottleneck: the table adds req/s per core of proxy
#                CPU (req/s x 100 / PROXY_CPU) and each proxy's req/s against HAProxy's, which is
#                what one core of each proxy carries, as under a container's CPU limit. wrk and
#                the origin are not limited. Default: no limit.
#   DEFER_ACCEPT default: each proxy's default (Turnout defers accepts, nginx and HAProxy do
#                not); on: all three defer (nginx listen ... deferred, HAProxy bind ...
#                defer-accept, Turnout defer_accept: true); off: none does (Turnout
#                defer_accept: false). The origin never does: the direct baseline stays the same.
#   MAX_STEAL    a round of a case in which the hypervisor stole more than this share of the
#                machine (per cent, /proc/stat steal; default 10) during any target's run is
#                measured again, all targets, up to STEAL_RETRIES times (default 2); the
#                attempt with the least steal is kept and the table says how many were redone
#   HEADERS      default: each proxy's default request rewriting (Turnout adds X-Forwarded-For,
#                X-Forwarded-Proto, X-Forwarded-Host and a 32-hex-digit X-Request-Id; nginx
#                and HAProxy add none); same: nginx and HAProxy add those four as well
#                (nginx $proxy_add_x_forwarded_for and $request_id, HAProxy option forwardfor
#                and a unique-id), so that every proxy sends the origin the same request
#   CLIENT_CPU   run wrk on this CPU only (taskset) and every server (origin and proxies) on
#                the other CPUs, as when the load comes from another machine; the direct
#                baseline is placed the same way. Default: the scheduler places all of them.
#   OUT          also write the Markdown tables to this file
#   KEEP=1       keep the work directory (configs, logs, raw wrk output)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

TURNOUT_BIN=${TURNOUT_BIN:-$REPO_ROOT/.build/release/turnout}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-1}
if [[ "${QUICK:-0}" == 1 ]]; then
    ROUNDS=1
    DURATION=2
fi
DURATION=${DURATION%s}
WARMUP=${WARMUP%s}
if [[ "${QUICK:-0}" == 1 ]]; then
    IDLE_CONNS=${IDLE_CONNS:-1000}
else
    IDLE_CONNS=${IDLE_CONNS:-10000}
fi
SYSCALLS=${SYSCALLS:-0}
MAX_STEAL=${MAX_STEAL:-10}
STEAL_RETRIES=${STEAL_RETRIES:-2}
SYSCALL_REQUESTS=5000 # keep-alive requests sent while strace counts (exactly this many)
SYSCALL_CONNS=16
TARGETS=${TARGETS:-direct nginx haproxy turnout}
BUSY_POLL=${BUSY_POLL:-50us}
CASES=${CASES:-keepalive-64B keepalive-64KiB close-64B}
WORKERS=${WORKERS:-1}
DEFER_ACCEPT=${DEFER_ACCEPT:-default}

log() { printf '[compare] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $IDLE_CONNS =~ ^[0-9]+$ ]] || die "IDLE_CONNS must be a whole number (got '$IDLE_CONNS')"
[[ $SYSCALLS == 0 || $SYSCALLS == 1 ]] || die "SYSCALLS must be 0 or 1 (got '$SYSCALLS')"
[[ $WORKERS =~ ^[1-9][0-9]?$ ]] || die "WORKERS must be from 1 to 99 (got '$WORKERS')"
case $DEFER_ACCEPT in
    default) NGINX_DEFER="" HAPROXY_DEFER="" TURNOUT_DEFER="" ;;
    on) NGINX_DEFER=" deferred" HAPROXY_DEFER=" defer-accept" TURNOUT_DEFER="defer_accept: true" ;;
    off) NGINX_DEFER="" HAPROXY_DEFER="" TURNOUT_DEFER="defer_accept: false" ;;
    *) die "DEFER_ACCEPT must be default, on or off (got '$DEFER_ACCEPT')" ;;
esac
HEADERS=${HEADERS:-default}
case $HEADERS in
    default) NGINX_HEADERS="" HAPROXY_HEADERS="" ;;
    same)
        # What Turnout adds (docs/proxying.md): the client's address appended to any
        # X-Forwarded-For, the scheme, the client's Host, and a request id unless one came.
        NGINX_HEADERS='            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Request-Id $turnout_compare_request_id;'
        HAPROXY_HEADERS='    option forwardfor
    unique-id-format %[rand,hex,bytes(8,8),lower]%[rand,hex,bytes(8,8),lower]%[rand,hex,bytes(8,8),lower]%[rand,hex,bytes(8,8),lower]
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)] if { req.hdr(host) -m found }
    http-request set-header X-Request-Id %[unique-id] unless { req.hdr(x-request-id) -m found }'
        ;;
    *) die "HEADERS must be default or same (got '$HEADERS')" ;;
esac
CLIENT_CPU=${CLIENT_CPU:-}
SERVER_CPUS=""
WRK_PIN=()
if [[ -n $CLIENT_CPU ]]; then
    NCPU=$(nproc)
    [[ $CLIENT_CPU =~ ^[0-9]+$ ]] && ((NCPU >= 2 && CLIENT_CPU < NCPU)) ||
        die "CLIENT_CPU must be a CPU from 0 to $((NCPU - 1)) on a machine of at least 2 CPUs (got '$CLIENT_CPU', $NCPU CPUs)"
    for ((i = 0; i < NCPU; i++)); do ((i == CLIENT_CPU)) || SERVER_CPUS+="${SERVER_CPUS:+,}$i"; done
    WRK_PIN=(taskset -c "$CLIENT_CPU")
fi
PROXY_CPU=${PROXY_CPU:-}
CPU_PERIOD_US=${CPU_PERIOD_US:-10000}
if [[ -n $PROXY_CPU ]]; then
    [[ $PROXY_CPU =~ ^[0-9]+$ ]] && ((PROXY_CPU >= 1 && PROXY_CPU <= 100 * $(nproc))) ||
        die "PROXY_CPU must be a whole per cent of one core from 1 to $((100 * $(nproc))) (got '$PROXY_CPU')"
    [[ $CPU_PERIOD_US =~ ^[0-9]+$ ]] && ((CPU_PERIOD_US >= 1000 && CPU_PERIOD_US <= 1000000)) ||
        die "CPU_PERIOD_US must be from 1000 to 1000000 (got '$CPU_PERIOD_US')"
    [[ $(id -u) -eq 0 ]] || die "PROXY_CPU needs root: it makes a cgroup per proxy"
    if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        CGROUP_MODE=v2 CGROUP_ROOT=/sys/fs/cgroup
        grep -qw cpu "$CGROUP_ROOT/cgroup.subtree_control" ||
            echo +cpu >"$CGROUP_ROOT/cgroup.subtree_control" || die "cannot enable the cpu controller in $CGROUP_ROOT"
    elif [[ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
        CGROUP_MODE=v1 CGROUP_ROOT=/sys/fs/cgroup/cpu
    else
        die "PROXY_CPU needs the cgroup cpu controller (v2 at /sys/fs/cgroup or v1 at /sys/fs/cgroup/cpu)"
    fi
fi

# Open files: every process started from here inherits the raised soft limit. Holding
# IDLE_CONNS client connections takes that many descriptors in idle_conns.py and in the
# proxy (plus its upstream connections), so the hard limit bounds IDLE_CONNS.
FD_HARD=$(ulimit -Hn)
[[ $FD_HARD == unlimited ]] && FD_HARD=1048576
ulimit -Sn "$FD_HARD" 2>/dev/null || true
if ((IDLE_CONNS + 256 > FD_HARD)); then
    die "IDLE_CONNS=$IDLE_CONNS needs about $((IDLE_CONNS + 256)) open files per process; the hard limit is $FD_HARD"
fi
# Connections each proxy accepts: room for IDLE_CONNS plus upstream connections. Without
# the idle-connection step the proxies keep the limits they had before it existed (nginx
# allocates all its worker_connections at start: 12000 instead of 8192 adds ~2 MiB to its RSS).
if ((IDLE_CONNS > 0)); then
    CONN_LIMIT=$((IDLE_CONNS + 2000 > 12000 ? IDLE_CONNS + 2000 : 12000))
    NGINX_CONNS=$CONN_LIMIT HAPROXY_MAXCONN=$CONN_LIMIT TURNOUT_MAX_CONNS=$CONN_LIMIT
else
    CONN_LIMIT=0
    NGINX_CONNS=8192 HAPROXY_MAXCONN=8192 TURNOUT_MAX_CONNS=10000
fi

# ---------------------------------------------------------------- tools

ensure_tools() {
    local missing=()
    command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
    command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    local pkgs=(nginx-light haproxy wrk)
    if [[ $SYSCALLS == 1 ]]; then
        pkgs+=(strace)
        command -v strace >/dev/null 2>&1 || missing+=(strace)
    fi
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) -ne 0 ]]; then
        die "missing ${missing[*]}: run as root or install: apt-get install -y ${pkgs[*]}"
    fi
    log "installing ${pkgs[*]} (missing: ${missing[*]})"
    # Keep Debian's maintainer scripts from starting the system nginx/haproxy services.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >&2 || {
        ((created_policy)) && rm -f "$policy"
        die "apt-get install failed"
    }
    ((created_policy)) && rm -f "$policy"
    command -v nginx >/dev/null && command -v haproxy >/dev/null && command -v wrk >/dev/null ||
        die "tools still missing after install"
    [[ $SYSCALLS == 0 ]] || command -v strace >/dev/null || die "strace still missing after install"
}

ensure_tools
command -v python3 >/dev/null 2>&1 || die "python3 is needed (ports, statistics)"

# ---------------------------------------------------------------- state and cleanup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnout-compare.XXXXXX")
# nginx workers drop root for nginx's unprivileged user: let them read the files.
chmod 755 "$WORK"
declare -A PID=()        # target -> main PID we started
PIDS_STARTED=()          # every PID we started, for cleanup
SAMPLER_PID=""
CGROUPS=()               # cgroup directories made for PROXY_CPU, removed once the proxies exit
HELPER_PID=""            # idle_conns.py while it runs
STRACE_PID=""            # strace while it is attached to a proxy

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $SAMPLER_PID ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    if [[ -n $HELPER_PID ]]; then
        kill "$HELPER_PID" 2>/dev/null || true
        wait "$HELPER_PID" 2>/dev/null || true
    fi
    # Detach strace (SIGINT) before the proxies are stopped.
    if [[ -n $STRACE_PID ]]; then stop_strace || true; fi
    local p
    for p in "${PIDS_STARTED[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS_STARTED[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    local d
    for d in "${CGROUPS[@]}"; do rmdir "$d" 2>/dev/null || log "could not remove cgroup $d"; done
    if [[ "${KEEP:-0}" == 1 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
# SIGINT makes strace detach and write its -c summary; it is waited for (10 s at most).
stop_strace() {
    local p=$STRACE_PID
    [[ -n $p ]] || return 0
    kill -INT "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    STRACE_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- ports

# Distinct free ports on 127.0.0.1 (held open together while choosing).
pick_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r ORIGIN_PORT NGINX_PORT HAPROXY_PORT TURNOUT_PORT TURNOUT_BP_PORT TURNOUT_BASE_PORT < <(pick_ports 6)
declare -A PORT=([direct]=$ORIGIN_PORT [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT [turnout]=$TURNOUT_PORT
                 [turnout-bp]=$TURNOUT_BP_PORT [turnout-base]=$TURNOUT_BASE_PORT)

wait_listening() { # port pid name
    local port=$1 pid=$2 name=$3
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 1
        if ss -Hltn "sport = :$port" 2>/dev/null | grep -q LISTEN; then return 0; fi
        sleep 0.1
    done
    log "$name did not listen on $port in 10 s"
    return 1
}

# ---------------------------------------------------------------- origin

mkdir -p "$WORK/origin/www" "$WORK/origin/tmp" "$WORK/nginx/tmp" "$WORK/haproxy" "$WORK/turnout" "$WORK/turnout-bp" "$WORK/turnout-base" "$WORK/raw"
head -c 64 /dev/zero | tr '\0' 'a' >"$WORK/origin/www/64"
head -c 65536 /dev/zero | tr '\0' 'b' >"$WORK/origin/www/64k"
head -c 20000 /dev/zero | tr '\0' 'c' >"$WORK/origin/www/20k"
printf 'wrk.method = "POST"\nwrk.body = string.rep("u", 20000)\n' >"$WORK/post20k.lua"

nginx_common() { # dir [worker_connections [worker_rlimit_nofile [worker_processes]]]
    cat <<EOF
worker_processes ${4:-1};
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
${3:+worker_rlimit_nofile $3;
}events { worker_connections ${2:-8192}; }
EOF
}
nginx_temp_paths() { # dir
    cat <<EOF
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}

{
    nginx_common "$WORK/origin"
    cat <<EOF
http {
    access_log off;
$(nginx_temp_paths "$WORK/origin")
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    etag off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    open_file_cache max=16 inactive=300s;
    server {
        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
        root $WORK/origin/www;
        location / { }
        location = /post { client_max_body_size 1m; return 200 "ok\\n"; }
    }
}
EOF
} >"$WORK/origin/nginx.conf"

start_bg() { # name logfile cmd...
    local name=$1 logf=$2
    shift 2
    "$@" >"$logf" 2>&1 &
    local p=$!
    PIDS_STARTED+=("$p")
    PID[$name]=$p
}

log "work directory $WORK; ports origin=$ORIGIN_PORT nginx=$NGINX_PORT haproxy=$HAPROXY_PORT turnout=$TURNOUT_PORT"
start_bg direct "$WORK/origin/stdout.log" nginx -p "$WORK/origin/" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf"
wait_listening "$ORIGIN_PORT" "${PID[direct]}" origin || { cat "$WORK/origin/error.log" >&2 || true; die "origin nginx failed to start"; }

# ---------------------------------------------------------------- proxies

declare -A SKIP=()   # target -> reason
want() { [[ " $TARGETS " == *" $1 "* ]]; }

if want nginx; then
    {
        # worker_connections counts client and upstream connections alike.
        nginx_common "$WORK/nginx" "$NGINX_CONNS" "$FD_HARD" "$WORKERS"
        cat <<EOF
http {
    access_log off;
$(nginx_temp_paths "$WORK/nginx")
    tcp_nodelay on;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    map \$http_x_request_id \$turnout_compare_request_id {
        "" \$request_id;
        default \$http_x_request_id;
    }
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096$NGINX_DEFER;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # 16 KiB buffers like HAProxy's tune.bufsize (nginx defaults to 4 KiB pages,
            # which costs it ~35% in the 64 KiB case), and never spill to a temp file.
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
            proxy_max_temp_file_size 0;
            # A request body is buffered whole before it goes upstream (nginx's default):
            # in memory up to this size (default 8 KiB on x86-64), in a temp file beyond.
            client_body_buffer_size 64k;
$NGINX_HEADERS
        }
    }
}
EOF
    } >"$WORK/nginx/nginx.conf"
    start_bg nginx "$WORK/nginx/stdout.log" nginx -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
    wait_listening "$NGINX_PORT" "${PID[nginx]}" nginx || { cat "$WORK/nginx/error.log" >&2 || true; die "nginx proxy failed to start"; }
fi

if want haproxy; then
    cat >"$WORK/haproxy/haproxy.cfg" <<EOF
global
    nbthread $WORKERS
    maxconn $HAPROXY_MAXCONN
    # HAProxy reserves two descriptors per connection (2 x maxconn + a few) and by default
    # (strict-limits) refuses to start when it cannot raise the open-file limit that far,
    # as with a hard limit of 20000. Without strict-limits it warns at start and uses the
    # limit there is: an idle client connection needs one descriptor.
    no strict-limits

defaults
    mode http
    maxconn $HAPROXY_MAXCONN
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend fe
    bind 127.0.0.1:$HAPROXY_PORT$HAPROXY_DEFER
$HAPROXY_HEADERS
    default_backend be

backend be
    server origin 127.0.0.1:$ORIGIN_PORT
EOF
    haproxy -c -q -f "$WORK/haproxy/haproxy.cfg" || die "haproxy configuration check failed"
    start_bg haproxy "$WORK/haproxy/stdout.log" haproxy -db -f "$WORK/haproxy/haproxy.cfg"
    wait_listening "$HAPROXY_PORT" "${PID[haproxy]}" haproxy || { cat "$WORK/haproxy/stdout.log" >&2 || true; die "haproxy failed to start"; }
fi

start_turnout() { # target port extra-config-lines [binary]
    local t=$1 port=$2 extra=$3 bin=${4:-$TURNOUT_BIN}
    if [[ ! -x $bin ]]; then
        SKIP[$t]="binary not found at ${bin:-(BASE_BIN not set)} (build it with make build)"
        log "skipping $t: ${SKIP[$t]}"
        return 0
    fi
    cat >"$WORK/$t/turnout.yaml" <<EOF
workers: $WORKERS
listen: [127.0.0.1:$port]
pools:
  blue:
    members: [127.0.0.1:$ORIGIN_PORT]
active: blue
admin:
  socket: $WORK/$t/admin.sock
limits:
  max_connections: $TURNOUT_MAX_CONNS
log:
  level: warning
  access: off
$TURNOUT_DEFER
$extra
EOF
    start_bg "$t" "$WORK/$t/turnout.log" "$bin" run --config "$WORK/$t/turnout.yaml"
    wait_listening "$port" "${PID[$t]}" "$t" || {
        tail -n 30 "$WORK/$t/turnout.log" >&2 || true
        die "$t failed to start"
    }
}
if want turnout; then start_turnout turnout "$TURNOUT_PORT" ""; fi
if want turnout-bp; then start_turnout turnout-bp "$TURNOUT_BP_PORT" "busy_poll: $BUSY_POLL"; fi
if want turnout-base; then start_turnout turnout-base "$TURNOUT_BASE_PORT" "" "${BASE_BIN:-}"; fi

ACTIVE=()
for t in direct nginx haproxy turnout turnout-bp turnout-base; do
    if [[ $t == direct ]] || { want "$t" && [[ -z ${SKIP[$t]:-} ]]; }; then ACTIVE+=("$t"); fi
done

# ---------------------------------------------------------------- measurement helpers

CLK_TCK=$(getconf CLK_TCK)

# The process and its descendants (nginx: master + worker).
tree_pids() {
    local root=$1 kids k
    echo "$root"
    kids=$(ps -o pid= --ppid "$root" 2>/dev/null || true)
    for k in $kids; do tree_pids "$k"; done
}

# utime+stime in clock ticks, summed over the tree.
cpu_ticks() {
    local sum=0 p f
    for p in $(tree_pids "$1"); do
        # Fields after the ")" that ends the command name: utime and stime are 12 and 13 there.
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        set -- $f
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}

# Context switches summed over every thread of the tree, as "voluntary,involuntary":
# voluntary is how often it went to sleep (in epoll_wait, mostly) and had to be woken by the
# next event; involuntary how often it was preempted with work left (on a core it shares
# with the origin, mostly by the origin that its own send had just woken).
switches() {
    local vol=0 inv=0 p f k v
    for p in $(tree_pids "$1"); do
        for f in /proc/"$p"/task/*/status; do
            while read -r k v; do
                case $k in
                    voluntary_ctxt_switches:) vol=$((vol + v)) ;;
                    nonvoluntary_ctxt_switches:) inv=$((inv + v)); break ;;
                esac
            done <"$f" 2>/dev/null || true
        done
    done
    echo "$vol,$inv"
}

# The whole machine's CPU ticks from /proc/stat as "busy,idle,context-switches,steal".
# Steal is time the hypervisor ran something else while this VM had work: it is counted
# apart from busy, and a round with a large share of it was slowed by a neighbour.
machine_ticks() {
    local k u n s i w q sq st rest busy=0 idle=0 ctxt=0 steal=0
    while read -r k u n s i w q sq st rest; do
        case $k in
        cpu) busy=$((u + n + s + q + sq)) idle=$((i + w)) steal=$st ;;
        ctxt) ctxt=$u ;;
        esac
    done </proc/stat
    echo "$busy,$idle,$ctxt,$steal"
}

# Percentage of the machine's time stolen between two machine_ticks readings.
steal_share() { # before after
    local b0 i0 x0 st0 b1 i1 x1 st1
    IFS=, read -r b0 i0 x0 st0 <<<"$1"
    IFS=, read -r b1 i1 x1 st1 <<<"$2"
    local all=$((b1 - b0 + i1 - i0 + st1 - st0))
    ((all > 0)) || all=1
    echo "$(((st1 - st0) * 100 / all))"
}

# VmRSS (kB) summed over the given PIDs, now.
rss_kb() {
    local cur=0 p k v _
    for p in "$@"; do
        [[ -r /proc/$p/status ]] || continue
        while read -r k v _; do
            if [[ $k == VmRSS: ]]; then cur=$((cur + v)); break; fi
        done <"/proc/$p/status" || true
    done
    echo "$cur"
}

# Samples VmRSS (kB) summed over the given PIDs every 100 ms; keeps the peak in $1.
# Pure bash reads, so the sampler itself costs next to nothing while wrk runs.
rss_sampler() {
    local out=$1 peak=0 cur p k v _
    shift
    trap 'echo "$peak" >"$out"; exit 0' TERM
    while :; do
        cur=0
        for p in "$@"; do
            while read -r k v _; do
                if [[ $k == VmRSS: ]]; then cur=$((cur + v)); break; fi
            done <"/proc/$p/status" 2>/dev/null || true
        done
        ((cur > peak)) && peak=$cur && echo "$peak" >"$out"
        sleep 0.1 &
        wait $!
    done
}

case_path() { case $1 in keepalive-64KiB) echo /64k ;; keepalive-20KB) echo /20k ;; upload-20KB) echo /post ;; *) echo /64 ;; esac; }
case_args() {
    case $1 in
    keepalive-64B) echo "-t1 -c64" ;;
    keepalive-64KiB) echo "-t1 -c16" ;;
    keepalive-20KB) echo "-t1 -c16" ;;
    upload-20KB) echo "-t1 -c16 -s $WORK/post20k.lua" ;;
    close-64B) echo "-t1 -c16" ;;
    single-64B) echo "-t1 -c1" ;;
    *) die "unknown case $1" ;;
    esac
}

run_wrk() { # case target seconds outfile
    local c=$1 t=$2 secs=$3 out=$4
    local -a extra=()
    [[ $c == close-64B ]] && extra=(-H "Connection: close")
    # shellcheck disable=SC2046
    "${WRK_PIN[@]}" wrk $(case_args "$c") -d "${secs}s" --latency "${extra[@]}" "http://127.0.0.1:${PORT[$t]}$(case_path "$c")" >"$out" 2>&1
}

# Parses wrk output into "reqs rps p50_us p99_us errors".
parse_wrk() {
    awk '
    function us(v,   n, u) {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") return n
        if (u == "ms") return n * 1000
        if (u == "s") return n * 1000000
        if (u == "m") return n * 60000000
        return n
    }
    /^ +50%/ { p50 = us($2) }
    /^ +99%/ { p99 = us($2) }
    / requests in / { reqs = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { err += $5 }
    END { printf "%s %s %s %s %d\n", reqs + 0, rps + 0, p50 + 0, p99 + 0, err }
    ' "$1"
}

RESULTS=$WORK/results.tsv   # round case target reqs rps p50 p99 errors rss_kb cpu_us_per_req origin_ticks "wrk_user wrk_sys" machine_before machine_after proxy_sleeps proxy_preempted origin_sleeps
: >"$RESULTS"

LAST_STEAL=0   # steal share (%) of the last measure
measure() { # round case target results-file
    local r=$1 c=$2 t=$3 raw="$WORK/raw/r$1-$2-$3.txt" rssf="$WORK/raw/r$1-$2-$3.rss"
    local proxy_pid="" t0=0 t1=0 v0=0,0 v1=0,0 rss="-" cpu="-" slept="-" preempted="-" o0 o1 s0 s1 wrk_cpu w0 w1
    o0=$(cpu_ticks "${PID[direct]}")
    w0=$(switches "${PID[direct]}")
    s0=$(machine_ticks)
    if [[ $t != direct ]]; then
        proxy_pid=${PID[$t]}
        kill -0 "$proxy_pid" 2>/dev/null || die "$t (pid $proxy_pid) is no longer running"
        echo 0 >"$rssf"
        # shellcheck disable=SC2046
        rss_sampler "$rssf" $(tree_pids "$proxy_pid") &
        SAMPLER_PID=$!
        t0=$(cpu_ticks "$proxy_pid")
        v0=$(switches "$proxy_pid")
    fi
    wrk_cpu=$( { TIMEFORMAT='%U %S'; time run_wrk "$c" "$t" "$DURATION" "$raw" 2>/dev/null; } 2>&1) ||
        log "wrk exited non-zero for $c/$t (see $raw)"
    o1=$(cpu_ticks "${PID[direct]}")
    w1=$(switches "${PID[direct]}")
    s1=$(machine_ticks)
    if [[ -n $proxy_pid ]]; then
        t1=$(cpu_ticks "$proxy_pid")
        v1=$(switches "$proxy_pid")
        slept=$((${v1%,*} - ${v0%,*}))
        preempted=$((${v1#*,} - ${v0#*,}))
        kill -TERM "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=""
        rss=$(cat "$rssf")
        kill -0 "$proxy_pid" 2>/dev/null || die "$t (pid $proxy_pid) died during $c (see $WORK/$t/)"
    fi
    local reqs rps p50 p99 errs
    read -r reqs rps p50 p99 errs < <(parse_wrk "$raw")
    if [[ -n $proxy_pid ]] && ((reqs > 0)); then
        cpu=$(python3 -c "print(f'{($t1 - $t0) * 1e6 / $CLK_TCK / $reqs:.2f}')")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$t" "$reqs" "$rps" "$p50" "$p99" "$errs" \
        "$rss" "$cpu" "$((o1 - o0))" "${wrk_cpu:-- -}" "$s0" "$s1" "$slept" "$preempted" "$((${w1%,*} - ${w0%,*}))" >>"$4"
    LAST_STEAL=$(steal_share "$s0" "$s1")
    log "round $r $c $t: ${rps} req/s, p50 ${p50}us, p99 ${p99}us, errors $errs, rss ${rss} kB, cpu ${cpu} us/req, steal $LAST_STEAL %"
}

# Functional check: every target returns the right body sizes before anything is measured.
# Each proxy's idle RSS is sampled after its first request (GET /64), before any load.
declare -A IDLE_RSS=()   # proxy -> kB
for t in "${ACTIVE[@]}"; do
    for path in 64 64k; do
        want_size=64
        [[ $path == 64k ]] && want_size=65536
        got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:${PORT[$t]}/$path" || true)
        [[ $got == "200 $want_size" ]] || die "$t: GET /$path gave '$got', expected '200 $want_size'"
        if [[ $t != direct && $path == 64 ]]; then
            sleep 0.2
            # shellcheck disable=SC2046
            IDLE_RSS[$t]=$(rss_kb $(tree_pids "${PID[$t]}"))
        fi
    done
done
log "targets answering: ${ACTIVE[*]}"
for t in "${ACTIVE[@]}"; do
    [[ $t == direct ]] || log "idle RSS $t: ${IDLE_RSS[$t]} kB"
done

# Moves every process of the proxy (and so all their threads) into a cgroup of its own
# whose CPU bandwidth is PROXY_CPU % of one core per CPU_PERIOD_US.
limit_cpu() { # proxy
    local t=$1 dir="$CGROUP_ROOT/turnout-compare-$$-$1" quota=$((PROXY_CPU * CPU_PERIOD_US / 100)) p
    mkdir "$dir" || die "cannot make cgroup $dir"
    CGROUPS+=("$dir")
    if [[ $CGROUP_MODE == v2 ]]; then
        echo "$quota $CPU_PERIOD_US" >"$dir/cpu.max"
    else
        echo "$CPU_PERIOD_US" >"$dir/cpu.cfs_period_us"
        echo "$quota" >"$dir/cpu.cfs_quota_us"
    fi
    for p in $(tree_pids "${PID[$t]}"); do
        echo "$p" >"$dir/cgroup.procs" || die "cannot move $t (pid $p) into $dir"
    done
    log "$t limited to $PROXY_CPU % of one core (quota ${quota} µs per ${CPU_PERIOD_US} µs, cgroup $CGROUP_MODE $dir)"
}
if [[ -n $PROXY_CPU ]]; then
    for t in "${ACTIVE[@]}"; do [[ $t == direct ]] || limit_cpu "$t"; done
fi
# CLIENT_CPU: every thread of every server (the origin is the "direct" target) on the
# CPUs that wrk does not use.
if [[ -n $CLIENT_CPU ]]; then
    for t in "${ACTIVE[@]}"; do
        for p in $(tree_pids "${PID[$t]}"); do
            taskset -a -pc "$SERVER_CPUS" "$p" >/dev/null || die "cannot set the CPU affinity of $t (pid $p)"
        done
    done
    log "wrk on CPU $CLIENT_CPU, the origin and the proxies on CPU $SERVER_CPUS"
fi

# ---------------------------------------------------------------- run

log "rounds=$ROUNDS duration=${DURATION}s warmup=${WARMUP}s cases: $CASES"
if ((WARMUP > 0)); then
    for c in $CASES; do
        for t in "${ACTIVE[@]}"; do
            run_wrk "$c" "$t" "$WARMUP" "$WORK/raw/warmup-$c-$t.txt" || true
        done
    done
fi

n=${#ACTIVE[@]}
RETRIED=0
for ((r = 1; r <= ROUNDS; r++)); do
    for c in $CASES; do
        # One round of a case measures every target; if the hypervisor stole more than
        # MAX_STEAL % of the machine during any of them, the whole group is measured again
        # (STEAL_RETRIES times at most) and the attempt with the least steal is kept, so the
        # targets of a round are always compared within one stretch of time.
        best="" best_steal=101
        for ((a = 0; a <= STEAL_RETRIES; a++)); do
            attempt="$WORK/raw/r$r-$c-attempt$a.tsv"
            : >"$attempt"
            worst=0
            # Rotate the order each round so no target always runs first or last.
            for ((k = 0; k < n; k++)); do
                measure "$r" "$c" "${ACTIVE[$(((k + r - 1) % n))]}" "$attempt"
                ((LAST_STEAL > worst)) && worst=$LAST_STEAL
            done
            if ((worst < best_steal)); then best=$attempt best_steal=$worst; fi
            ((worst > MAX_STEAL)) || break
            if ((a < STEAL_RETRIES)); then
                log "round $r $c: up to $worst % stolen (MAX_STEAL $MAX_STEAL), measuring the round again"
                RETRIED=$((RETRIED + 1))
            fi
        done
        cat "$best" >>"$RESULTS"
    done
done

# ---------------------------------------------------------------- after the rounds: syscalls, idle connections

PROXIES=()
for t in "${ACTIVE[@]}"; do [[ $t == direct ]] || PROXIES+=("$t"); done
for t in "${PROXIES[@]}"; do printf '%s\t%s\n' "$t" "${IDLE_RSS[$t]}"; done >"$WORK/idle_rss.tsv"

# Runs idle_conns.py (bounded: its own timeouts, and 5 minutes at most) with its JSON
# output in $1; in the background so that an interrupt stops it through cleanup.
run_helper() { # outfile args...
    local out=$1 rc=0
    shift
    timeout -k 5 300 python3 "$SCRIPT_DIR/idle_conns.py" "$@" >"$out" 2>"$out.err" &
    HELPER_PID=$!
    wait "$HELPER_PID" || rc=$?
    HELPER_PID=""
    return "$rc"
}

# The processes strace attaches to: nginx's worker(s); HAProxy's and Turnout's one process
# (strace -f attaches every thread of it).
strace_pids() {
    if [[ $1 == nginx ]]; then ps -o pid= --ppid "${PID[$1]}"; else echo "${PID[$1]}"; fi
}

# strace -c over exactly SYSCALL_REQUESTS keep-alive GET /64 sent over SYSCALL_CONNS connections.
count_syscalls() { # proxy
    local t=$1 out="$WORK/raw/strace-$t.txt" errf="$WORK/raw/strace-$t.err" p n=0 attached
    local -a args=()
    for p in $(strace_pids "$t"); do
        args+=(-p "$p")
        n=$((n + 1))
    done
    ((n > 0)) || { log "syscalls $t: no process to attach to"; return 1; }
    strace -c -f -o "$out" "${args[@]}" 2>"$errf" &
    STRACE_PID=$!
    for _ in $(seq 1 50); do
        kill -0 "$STRACE_PID" 2>/dev/null || break
        attached=$(grep -c 'attached' "$errf" 2>/dev/null || true)
        ((${attached:-0} >= n)) && break
        sleep 0.1
    done
    if ! kill -0 "$STRACE_PID" 2>/dev/null || ((${attached:-0} < n)); then
        stop_strace
        log "syscalls $t: strace did not attach: $(tr '\n' ' ' <"$errf")"
        return 1
    fi
    sleep 0.2
    run_helper "$WORK/raw/syscalls-$t.json" requests --port "${PORT[$t]}" --path /64 \
        --conns "$SYSCALL_CONNS" --requests "$SYSCALL_REQUESTS" ||
        log "syscalls $t: request client failed (see $WORK/raw/syscalls-$t.json.err)"
    sleep 0.1
    stop_strace
    log "syscalls $t: $(cat "$WORK/raw/syscalls-$t.json" 2>/dev/null)"
}

# IDLE_CONNS idle keep-alive connections held by idle_conns.py while it samples the RSS.
hold_idle_conns() { # proxy
    local t=$1 out="$WORK/raw/idle-$t.json" pids
    pids=$(tree_pids "${PID[$t]}" | paste -sd, -)
    run_helper "$out" idle --port "${PORT[$t]}" --path /64 --count "$IDLE_CONNS" --pids "$pids" ||
        log "idle connections $t: idle_conns.py failed (see $out.err)"
    log "idle connections $t: $(cat "$out" 2>/dev/null)"
}

alive() { # proxy: still running? (a proxy that died is reported, not fatal, after the rounds)
    kill -0 "${PID[$1]}" 2>/dev/null && return 0
    log "$1 (pid ${PID[$1]}) is no longer running (see $WORK/$1/)"
    echo "$1" >>"$WORK/died.txt"
    return 1
}

if [[ $SYSCALLS == 1 ]]; then
    log "counting system calls: $SYSCALL_REQUESTS keep-alive GET /64 over $SYSCALL_CONNS connections per proxy"
    for t in "${PROXIES[@]}"; do
        alive "$t" && { count_syscalls "$t" || true; }
    done
fi
if ((IDLE_CONNS > 0)); then
    log "holding $IDLE_CONNS idle keep-alive connections per proxy (connection limit $CONN_LIMIT, open files $FD_HARD)"
    for t in "${PROXIES[@]}"; do
        if alive "$t"; then
            hold_idle_conns "$t"
            alive "$t" || true
        fi
    done
fi

# ---------------------------------------------------------------- report

TABLE=$WORK/table.md
python3 - "$RESULTS" "$ROUNDS" "$DURATION" "${ACTIVE[*]}" "$CASES" "$PROXY_CPU" "$CPU_PERIOD_US" "$WORKERS" "$DEFER_ACCEPT" "$MAX_STEAL" "$RETRIED" "$CLIENT_CPU" "$SERVER_CPUS" "$HEADERS" >"$TABLE" <<'EOF'
import os, statistics, sys
path, rounds, duration, active, cases, proxy_cpu, period, workers, defer, max_steal, retried, client_cpu, server_cpus, headers = sys.argv[1:15]
active, cases = active.split(), cases.split()
proxy_cpu = int(proxy_cpu) if proxy_cpu else None
tck = os.sysconf("SC_CLK_TCK")
rows = {}
for line in open(path):
    r, c, t, reqs, rps, p50, p99, errs, rss, cpu, origin, wrk, s0, s1, slept, preempted, origin_slept = line.rstrip("\n").split("\t")
    (b0, i0, x0, st0), (b1, i1, x1, st1) = ([int(v) for v in s.split(",")] for s in (s0, s1))
    ticks = max(b1 - b0 + i1 - i0 + st1 - st0, 1)
    n = max(int(reqs), 1)
    try:
        wrk_us = sum(float(v) for v in wrk.split()) * 1e6 / n
    except ValueError:
        wrk_us = None
    rows.setdefault((c, t), []).append(dict(
        rps=float(rps), p50=float(p50), p99=float(p99), errs=int(errs),
        rss=None if rss == "-" else int(rss), cpu=None if cpu == "-" else float(cpu),
        origin=int(origin) * 1e6 / tck / n, wrk=wrk_us,
        idle=100 * (i1 - i0) / ticks, steal=100 * (st1 - st0) / ticks, cs=(x1 - x0) / n,
        sleeps=None if slept == "-" else int(slept) / n,
        preempted=None if preempted == "-" else int(preempted) / n, origin_sleeps=int(origin_slept) / n))

def lat(us):
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"

med = statistics.median
capacity = ["vs haproxy", "req/s per proxy core"] if proxy_cpu else []
head = ["case", "target", "req/s", "vs direct"] + capacity + ["p50", "p99", "peak RSS", "CPU/req", "errors"]
print("| " + " | ".join(head) + " |")
print("|---|---|" + "---:|" * (len(head) - 2))
for c in cases:
    direct = med([x["rps"] for x in rows.get((c, "direct"), [])] or [0])
    haproxy = med([x["rps"] for x in rows.get((c, "haproxy"), [])] or [0])
    for t in active:
        xs = rows.get((c, t))
        if not xs:
            continue
        rps = med([x["rps"] for x in xs])
        ratio = f"{rps / direct:.2f}" if direct else "-"
        extra = ""
        if proxy_cpu:
            vs = f"{rps / haproxy:.2f}" if haproxy and t != "direct" else "-"
            per_core = f"{rps * 100 / proxy_cpu:,.0f}" if t != "direct" else "-"
            extra = f" {vs} | {per_core} |"
        rss = [x["rss"] for x in xs if x["rss"] is not None]
        cpu = [x["cpu"] for x in xs if x["cpu"] is not None]
        print(f"| {c} | {t} | {rps:,.0f} | {ratio} |{extra} {lat(med([x['p50'] for x in xs]))} | "
              f"{lat(med([x['p99'] for x in xs]))} | {f'{max(rss) / 1024:.1f} MiB' if rss else '-'} | "
              f"{f'{med(cpu):.1f} µs' if cpu else '-'} | {sum(x['errs'] for x in xs)} |")
print()
print(f"Median of {rounds} interleaved round(s) of {duration} s each; wrk -t1 on 127.0.0.1; "
      f"{workers} worker(s) per proxy (nginx worker_processes, HAProxy nbthread, Turnout workers). "
      + {"default": "Deferred accepts: each proxy's default (Turnout on, nginx and HAProxy off). ",
         "on": "Deferred accepts on in all three proxies (nginx deferred, HAProxy defer-accept, Turnout defer_accept). ",
         "off": "Deferred accepts off in all three proxies (Turnout defer_accept: false). "}[defer] +
      {"default": "Request headers: each proxy's default (Turnout adds X-Forwarded-For, -Proto, -Host and X-Request-Id; nginx and HAProxy add none). ",
       "same": "Request headers: nginx and HAProxy add X-Forwarded-For, -Proto, -Host and X-Request-Id as Turnout does (HEADERS=same). "}[headers] +
      (f"wrk pinned to CPU {client_cpu}, the origin and every proxy to CPU {server_cpus} (CLIENT_CPU). " if client_cpu else "") +
      "p50/p99 are medians of the rounds' wrk latency percentiles. Peak RSS is the highest "
      "VmRSS sum over the proxy's processes (nginx: master + worker) sampled every 100 ms during "
      "its runs; CPU/req is the proxy's utime+stime (all its processes) during the run divided by "
      "the requests wrk completed. errors = wrk socket errors + non-2xx responses.")
if proxy_cpu:
    print()
    print(f"Each proxy ran in a cgroup of its own limited to {proxy_cpu} % of one core (CPU bandwidth "
          f"quota {proxy_cpu * int(period) // 100} µs per {period} µs; wrk and the origin unlimited), so "
          "the proxy was the bottleneck: req/s per proxy core = req/s x 100 / "
          f"{proxy_cpu}, and vs haproxy is the proxy's req/s over HAProxy's in the same run. "
          "Latencies include the waits of a throttled proxy.")
print()
print("| case | target | proxy CPU/req | origin CPU/req | wrk CPU/req | sum | machine idle | stolen (highest round) | context switches/req | proxy sleeps/req | proxy preempted/req | origin sleeps/req |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in cases:
    for t in active:
        xs = rows.get((c, t))
        if not xs:
            continue
        cpu = [x["cpu"] for x in xs if x["cpu"] is not None]
        wrk = [x["wrk"] for x in xs if x["wrk"] is not None]
        proxy, origin = (med(cpu) if cpu else 0.0), med([x["origin"] for x in xs])
        wrk_us = med(wrk) if wrk else None
        total = proxy + origin + (wrk_us or 0)
        print(f"| {c} | {t} | {f'{proxy:.1f} µs' if cpu else '-'} | {origin:.1f} µs | "
              f"{f'{wrk_us:.1f} µs' if wrk_us is not None else '-'} | {total:.1f} µs | "
              f"{med([x['idle'] for x in xs]):.1f} % | {med([x['steal'] for x in xs]):.1f} % "
              f"({max(x['steal'] for x in xs):.1f} %) | {med([x['cs'] for x in xs]):.2f} | "
              f"{f'{med(sl):.3f}' if (sl := [x['sleeps'] for x in xs if x['sleeps'] is not None]) else '-'} | "
              f"{f'{med(pr):.3f}' if (pr := [x['preempted'] for x in xs if x['preempted'] is not None]) else '-'} | "
              f"{med([x['origin_sleeps'] for x in xs]):.3f} |")
print()
print("The whole machine during the same runs (medians over the rounds): CPU per request of the proxy, "
      "the origin nginx and wrk (its user+system time), their sum, the share of the machine's CPU time "
      "that was idle (/proc/stat), the share the hypervisor gave to other guests while this one had work "
      "(steal; a round with a high share ran on a disturbed machine), the context switches per "
      "request of the whole machine, and how often per request the proxy went to sleep (voluntary "
      "context switches of all its threads: each is a wake-up that the sender of the next event "
      "pays for, and on a virtual machine often a halted vCPU to restart), how often per request it "
      "was preempted with work left (involuntary switches: where the origin shares its core, mostly "
      "by the origin its own send had just woken), and how often per request the origin went to "
      "sleep (voluntary switches of its processes: the fewer, the more requests it answered per "
      "wake-up). With wrk, "
      "proxy and origin sharing the cores, throughput follows the sum and the idle share, not the "
      "proxy's CPU alone.")
print()
print(f"Rounds measured again because more than {max_steal} % of the machine was stolen during one of "
      f"their runs: {retried} (the attempt with the least steal kept; MAX_STEAL, STEAL_RETRIES).")
EOF

for t in "${!SKIP[@]}"; do
    printf '\n%s skipped: %s\n' "$t" "${SKIP[$t]}" >>"$TABLE"
done

# Second table: memory at rest and with idle connections, system calls per request.
if ((${#PROXIES[@]} > 0)); then
    echo >>"$TABLE"
    python3 - "$WORK" "${PROXIES[*]}" "$IDLE_CONNS" "$SYSCALLS" "$SYSCALL_REQUESTS" "$SYSCALL_CONNS" "$CONN_LIMIT" >>"$TABLE" <<'EOF'
import json, os, sys
work, proxies, idle_conns, syscalls, nreq, nconns, limit = sys.argv[1:8]
proxies, idle_conns, syscalls, nreq, nconns, limit = (
    proxies.split(), int(idle_conns), syscalls == "1", int(nreq), int(nconns), int(limit))
idle = {t: int(kb) for t, kb in (l.split() for l in open(f"{work}/idle_rss.tsv"))}
died = set(open(f"{work}/died.txt").read().split()) if os.path.exists(f"{work}/died.txt") else set()

def load(path):
    try:
        with open(path) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None

def strace_calls(path):
    """calls per syscall from a strace -c summary ("total" included)."""
    calls = {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        if len(f) >= 5 and f[0].replace(".", "", 1).isdigit() and f[3].isdigit():
            calls[f[-1]] = calls.get(f[-1], 0) + int(f[3])
    return calls or None

GROUPS = [
    ("read/recv", {"read", "readv", "recv", "recvfrom", "recvmsg", "recvmmsg"}),
    ("write/send", {"write", "writev", "send", "sendto", "sendmsg", "sendmmsg"}),
    ("epoll_wait", {"epoll_wait", "epoll_pwait", "epoll_pwait2"}),
    ("epoll_ctl", {"epoll_ctl"}),
]
mib = lambda kb: f"{kb / 1024:.1f} MiB"
head = ["proxy", "idle RSS"]
if idle_conns:
    head += ["RSS after load", f"RSS with {idle_conns:,} idle conns", "per idle conn"]
if syscalls:
    head += [f"{name} /req" for name, _ in GROUPS] + ["syscalls /req"]
print("| " + " | ".join(head) + " |")
print("|---|" + "---:|" * (len(head) - 1))
notes = []
for t in proxies:
    row = [t, mib(idle[t])]
    if idle_conns:
        d = load(f"{work}/raw/idle-{t}.json")
        if not d:
            row += ["-"] * 3
            notes.append(f"{t}: the idle-connection step gave no result (see raw/idle-{t}.json.err).")
        else:
            held = d["still_open"]
            per = f"{(d['rss_with_kb'] - d['rss_before_kb']) * 1024 / held:,.0f} B" if held else "-"
            row += [mib(d["rss_before_kb"]), mib(d["rss_with_kb"]), per]
            if held < idle_conns or d["errors"] or d["stopped"]:
                errs = ", ".join(f"{k} x{v}" for k, v in d["errors"].items()) or "none"
                notes.append(f"{t}: {held:,} of {idle_conns:,} connections held open "
                             f"({d['responses']:,} answered, {d['closed_by_server']:,} closed by the proxy since; "
                             f"errors: {errs}{'; ' + d['stopped'] if d['stopped'] else ''}); per idle conn is over the {held:,} held.")
            if d["conns_left_after_drain"]:
                notes.append(f"{t}: {d['conns_left_after_drain']:,} connections still open "
                             f"{d['drain_seconds']} s after the client closed them all.")
    if syscalls:
        calls = strace_calls(f"{work}/raw/strace-{t}.txt")
        r = load(f"{work}/raw/syscalls-{t}.json")
        ok = r["ok"] if r else 0
        if not calls or not ok:
            row += ["-"] * (len(GROUPS) + 1)
            notes.append(f"{t}: no system call count (see raw/strace-{t}.err and raw/syscalls-{t}.json.err).")
        else:
            if ok != nreq or r["problems"]:
                notes.append(f"{t}: {ok:,} of {nreq:,} requests answered 200 under strace "
                             f"({', '.join(f'{k} x{v}' for k, v in r['problems'].items()) or 'no errors'}); counts are per answered request.")
            named = set()
            for _, names in GROUPS:
                row.append(f"{sum(calls.get(n, 0) for n in names) / ok:.2f}")
                named |= names
            row.append(f"{calls.get('total', 0) / ok:.2f}")
            others = sorted(((c, n) for n, c in calls.items() if n not in named and n != "total"), reverse=True)[:3]
            if others:
                notes.append(f"{t}: other system calls per request: "
                             + ", ".join(f"{n} {c / ok:.3f}" for c, n in others) + ".")
    if t in died:
        notes.append(f"{t}: the proxy exited during these steps (see its log in the work directory).")
    print("| " + " | ".join(row) + " |")
print()
text = ("Idle RSS: VmRSS summed over the proxy's processes (nginx: master + worker) after start-up "
        "and one GET /64, before any load.")
if idle_conns:
    text += (f" After the timed rounds, idle_conns.py opens {idle_conns:,} client connections to each proxy "
             "(200 at a time), sends one GET /64 on each and reads the whole response, keeping every "
             "connection open; RSS after load is sampled just before it starts, RSS with idle conns 1 s "
             "after the last response. Per idle conn = (RSS with idle conns - RSS after load) / connections held "
             "(against RSS after load, so buffers the load rounds left pooled do not count); kernel socket "
             "buffers are not in RSS. Then the connections are closed and the script waits (5 s at most) "
             "until the proxy holds none of them.")
if syscalls:
    text += (f" System calls: strace -c -f attached to the proxy (nginx: its worker; HAProxy, Turnout: every "
             f"thread) while {nreq:,} keep-alive GET /64 are sent over {nconns} connections by one "
             "Python client, one request in flight per connection (wrk keeps 64 in flight: epoll_wait "
             "per request depends on that); per request = calls / requests answered, connection "
             "set-up included. read/recv = read, readv, recv*; write/send = write, writev, send*; "
             "epoll_wait includes epoll_pwait.")
if idle_conns:
    text += (f" Connection limits for this: nginx worker_connections {limit} (it allocates them at start, "
             f"which is in its idle RSS), HAProxy maxconn {limit}, Turnout limits.max_connections {limit}.")
print(text)
for n in notes:
    print()
    print(n)
EOF
fi

echo
cat "$TABLE"
if [[ -n ${OUT:-} ]]; then
    cp "$TABLE" "$OUT"
    log "table written to $OUT"
fi

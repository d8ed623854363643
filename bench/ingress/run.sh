#!/usr/bin/env bash
# Ingress benchmark: wrk -t1 -c50 through nothing (direct), gantry-ingress (2 threads with
# SO_REUSEPORT, and its default: half the cores, 1 to 4 threads), nginx and haproxy, all to the same
# keep-alive upstream on loopback, in one run; then the RSS the ingress adds with 50 idle
# keep-alive client connections, and the write_drain switch latency.
#
#   bench/ingress/run.sh                 # 10 s per run
#   DUR=5s CONNS=50 bench/ingress/run.sh
#   NGINX_WORKERS=1 bench/ingress/run.sh   # nginx with one worker (default 2, as `auto` on 2 cores)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
DUR=${DUR:-10s}
CONNS=${CONNS:-50}
UP=127.0.0.1:18000
P_GANTRY=18080
P_GANTRY_CT=18083
P_NGINX=18081
P_HAPROXY=18082

# Tools from Debian when missing.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  apt-get install -y "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

(cd "$ROOT" && cargo build --release -q -p gantry-ingress --examples)
EX=$TGT/release/examples
PROXY=${PROXY_BIN:-$EX/proxy}  # another build of the example, to compare

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

wait_port() { # host:port — poll up to 10 s
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

"$EX/upstream" "$UP" & PIDS+=($!)
wait_port "$UP"

# gantry-ingress: 2 threads with SO_REUSEPORT and the default (half the cores, 1 to 4 threads); stdin held open by a fifo-less sleep pipe.
mkfifo "$TMP/g1" "$TMP/g2"
"$PROXY" "127.0.0.1:$P_GANTRY" "$UP" threads:2 <"$TMP/g1" 2>"$TMP/g1.err" & GPID=$!; PIDS+=($GPID)
sleep 1000000 >"$TMP/g1" & PIDS+=($!)
"$PROXY" "127.0.0.1:$P_GANTRY_CT" "$UP" default <"$TMP/g2" 2>"$TMP/g2.err" & GPID_CT=$!; PIDS+=($GPID_CT)
sleep 1000000 >"$TMP/g2" & PIDS+=($!)

cat >"$TMP/nginx.conf" <<NGX
worker_processes ${NGINX_WORKERS:-2};
pid $TMP/nginx.pid;
error_log $TMP/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream up { server $UP; keepalive 128; }
  server {
    listen 127.0.0.1:$P_NGINX reuseport;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGX
"$NGINX" -c "$TMP/nginx.conf" -p "$TMP" -g 'daemon on;'

cat >"$TMP/haproxy.cfg" <<HAP
global
  nbthread 2
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend f
  bind 127.0.0.1:$P_HAPROXY
  default_backend b
backend b
  server s1 $UP
HAP
"$HAPROXY" -f "$TMP/haproxy.cfg" -q & HPID=$!; PIDS+=($HPID)

for p in $P_GANTRY $P_GANTRY_CT $P_NGINX $P_HAPROXY; do wait_port "127.0.0.1:$p"; done

# CPU time (user + system, clock ticks) of a process and its threads and children's threads.
ticks() { # pid...
  local t=0 p tid f
  for p in "$@"; do
    for f in /proc/"$p"/task/*/stat; do
      [ -r "$f" ] || continue
      set -- $(sed 's/^.*) //' "$f")
      t=$((t + ${12} + ${13}))
    done
  done
  echo "$t"
}

run() { # name port [pid...]: req/s, p99, and the proxy's CPU per request (µs; noise-robust)
  local name=$1 port=$2 out rps p99 reqs t0 t1 cpu=""
  shift 2
  wrk -t1 -c1 -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true  # warm the pools
  [ $# -gt 0 ] && t0=$(ticks "$@")
  out=$(wrk -t1 -c"$CONNS" -d"$DUR" --latency "http://127.0.0.1:$port/")
  [ $# -gt 0 ] && t1=$(ticks "$@")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  if [ $# -gt 0 ] && [ "${reqs:-0}" -gt 0 ]; then
    cpu=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "   cpu %.2f us/req", d * 1e6 / hz / n}')
  fi
  printf '%-30s %12s req/s   p99 %-8s%s\n' "$name" "$rps" "$p99" "$cpu"
}

NGINX_MASTER=$(cat "$TMP/nginx.pid")
NGINX_PIDS="$NGINX_MASTER $(pgrep -P "$NGINX_MASTER" | tr '\n' ' ')"
echo "wrk -t1 -c$CONNS -d$DUR, upstream $UP ($(nproc) cores)"
run direct "${UP#*:}"
run "gantry (2 threads, reuseport)" $P_GANTRY "$GPID"
DEFAULT_THREADS=$(( $(nproc) / 2 )); [ "$DEFAULT_THREADS" -lt 1 ] && DEFAULT_THREADS=1; [ "$DEFAULT_THREADS" -gt 4 ] && DEFAULT_THREADS=4
run "gantry (default: $DEFAULT_THREADS thread)" $P_GANTRY_CT "$GPID_CT"
# shellcheck disable=SC2086
run nginx $P_NGINX $NGINX_PIDS
run haproxy $P_HAPROXY "$HPID"

# RSS added by 50 idle keep-alive client connections (each has made one request).
python3 - "$GPID" "$P_GANTRY" "$TMP/g1.err" <<'PY'
import socket, sys, time
pid, port, err = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
idle = rss()
socks = []
for _ in range(50):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    buf = b""
    while b"hello, world" not in buf:
        buf += s.recv(4096)
    socks.append(s)
time.sleep(0.5)
held = rss()
start = open(err).read().strip()
print(f"proxy process: {start}; rss_after_load_kb={idle} rss_with_50_idle_conns_kb={held} "
      f"added_by_conns_kb={held - idle}")
PY

"$EX/switch"

#!/usr/bin/env bash
# OFREP latency: `gantry up` (release) with 100 flags (20 with targeting, 10 of them fractional).
# First open loop at the issue's 500 req/s (bench/flags/rate.py), bulk (100 flags per answer) and
# single flag, each with a context; then wrk on loopback, closed loop: 1 connection (each request
# waits for the previous answer: the most one client gets) and 4 connections (saturation).
#
#   bench/flags/run.sh            # 10 s per run
#   DUR=5s bench/flags/run.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
DUR=${DUR:-10s}
PORT=${PORT:-17471}
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get install -y wrk >/dev/null; }
(cd "$ROOT" && cargo build --release -q -p gantry-cli)
GANTRY=$TGT/release/gantry

TMP=$(mktemp -d)
cleanup() { [ -n "${GPID:-}" ] && kill -INT "$GPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

python3 - "$TMP/flags.json" <<'PY'
import json, sys
flags = {}
for i in range(100):
    f = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
    if i % 10 == 0:
        f["targeting"] = {"fractional": [["on", 25], ["off", 75]]}
    elif i % 10 == 1:
        f["targeting"] = {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}
    flags[f"flag-{i:03}"] = f
json.dump({"flags": flags}, open(sys.argv[1], "w"))
PY
cat >"$TMP/gantry.toml" <<TOML
[settings]
api = "127.0.0.1:$PORT"
flags_file = "flags.json"

[services.idle]
command = "sleep 3600"
TOML
(cd "$TMP" && "$GANTRY" up >"$TMP/up.log" 2>&1) & GPID=$!
for _ in $(seq 1 200); do [ -s "$TMP/.gantry/api.read-token" ] && break; sleep 0.05; done
TOKEN=$(cat "$TMP/.gantry/api.read-token")
BODY='{"context":{"targetingKey":"user-42","email":"ann@example.com","plan":"pro"}}'
cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
check=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$BODY" "http://127.0.0.1:$PORT/ofrep/v1/evaluate/flags")
[ "$check" = 200 ] || { echo "bulk evaluation answered $check" >&2; cat "$TMP/up.log" >&2; exit 1; }

run() { # name path connections
  local out
  out=$(wrk -t1 -c"$3" -d"$DUR" --latency -s "$TMP/post.lua" "http://127.0.0.1:$PORT$2")
  printf '%-34s %10s req/s   p50 %-9s p99 %s\n' "$1" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$out")" \
    "$(awk '$1 == "99%" {print $2}' <<<"$out")"
}
echo "open loop at 500 req/s (the issue's rate), one keep-alive connection, Python client:"
python3 "$ROOT/bench/flags/rate.py" "127.0.0.1:$PORT" /ofrep/v1/evaluate/flags "$TOKEN" 500 "${DUR%s}"
python3 "$ROOT/bench/flags/rate.py" "127.0.0.1:$PORT" /ofrep/v1/evaluate/flags/flag-000 "$TOKEN" 500 "${DUR%s}"
echo "wrk -t1 -d$DUR, loopback, $(nproc) cores, release build"
run "bulk, 100 flags, 1 connection" /ofrep/v1/evaluate/flags 1
run "single flag (fractional), 1 conn" /ofrep/v1/evaluate/flags/flag-000 1
run "bulk, 100 flags, 4 connections" /ofrep/v1/evaluate/flags 4
run "single flag, 4 connections" /ofrep/v1/evaluate/flags/flag-000 4

#!/usr/bin/env python3
"""Output flood: one service runs `yes` under gantry; how much memory gantry takes, how fast
it answers a command and a signal, how many lines it logs and how many it drops.

python3, standard library only:

    cargo build --release -p gantry-cli -p gantry-fixture
    python3 bench/flood/run.py                 # 15 s of flood (about 25 s in all)
    python3 bench/flood/run.py --seconds 5 --gantry-bin /path/to/old/gantry

A second service (the fixture) is probed for liveness every 200 ms beside the flood;
its restarts are reported (0 means the flood never delayed a probe into failure).
Bounded: the flood runs --seconds, then gantry is stopped; everything is loopback.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def rss_kb_tree(pid):
    """Resident kB of gantry's own processes: pid and its descendants named gantry."""
    total = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return total
    for c in children:
        try:
            with open("/proc/%d/comm" % c) as f:
                if f.read().strip() != "gantry":
                    continue
        except OSError:
            continue
        total += rss_kb_tree(c)
    return total


def http_get(addr, path, timeout=5.0):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def parse_ts(ts):
    """Seconds of an RFC 3339 UTC timestamp `2026-12-05T11:20:16.123Z` (one day is enough)."""
    t = ts.decode().rstrip("Z").split("T")[1]
    h, m, sec = t.split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)


def metric(text, name, service):
    key = '%s{service="%s"}' % (name, service)
    for line in text.splitlines():
        if line.startswith(key):
            return float(line.split()[-1])
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0, help="how long the flood runs (default 15)")
    ap.add_argument("--gantry-bin", default=os.path.join(ROOT, "target", "release", "gantry"))
    ap.add_argument("--fixture-bin", default=os.path.join(ROOT, "target", "release", "gantry-fixture"))
    args = ap.parse_args()
    args.seconds = max(1.0, min(args.seconds, 120.0))
    for b in (args.gantry_bin, args.fixture_bin):
        if not os.access(b, os.X_OK):
            sys.exit("%s missing: cargo build --release -p gantry-cli -p gantry-fixture" % b)
    work = tempfile.mkdtemp(prefix="gantry-flood-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(os.path.join(work, "gantry.toml"), "w") as f:
        f.write('[settings]\napi = "127.0.0.1:0"\n\n'
                '[services.flood]\ncommand = ["yes", "a line of a service that writes as fast as it can"]\n\n'
                '[services.calm]\ncommand = ["%s", "--name", "calm", "--listen", "%d"]\n'
                'readiness = { tcp = "127.0.0.1:%d" }\n'
                'liveness = { tcp = "127.0.0.1:%d", period = "200ms", failure_threshold = 2 }\n'
                % (args.fixture_bin, port, port, port))
    out = open(os.path.join(work, "gantry.out"), "w")
    proc = subprocess.Popen([args.gantry_bin, "up"], cwd=work, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    result = {"gantry": args.gantry_bin, "seconds": args.seconds}
    try:
        addr_file = os.path.join(work, ".gantry", "api.addr")
        deadline = time.time() + 30
        while not os.path.exists(addr_file) and time.time() < deadline:
            time.sleep(0.05)
        addr = open(addr_file).read().strip()
        start = time.time()
        peak = 0
        while time.time() - start < args.seconds:
            peak = max(peak, rss_kb_tree(proc.pid))
            time.sleep(0.1)
        result["peak_rss_mb"] = round(peak / 1024, 1)
        try:
            _, metrics = http_get(addr, "/metrics")
        except OSError:
            metrics = ""
        dropped = metric(metrics, "gantry_output_dropped_lines_total", "flood")
        # Lines/s logged: over the log and its rotated files (NAME.log.N), from the first
        # line's timestamp to the last one's.
        logs = os.path.join(work, ".gantry", "logs")
        files = sorted((f for f in os.listdir(logs) if f.startswith("flood.log")),
                       key=lambda f: -int(f.rsplit(".", 1)[1]) if f[-1].isdigit() else 0)
        logged, first, last = 0, None, None
        for name in files:
            with open(os.path.join(logs, name), "rb") as f:
                for line in f:
                    logged += 1
                    ts = line.split(b" ", 1)[0]
                    if first is None:
                        first = ts
                    last = ts
        span = (parse_ts(last) - parse_ts(first)) if first and last else 0.0
        result["lines_logged"] = logged
        result["lines_per_s_logged"] = int(logged / span) if span > 0 else 0
        result["lines_dropped"] = int(dropped)
        try:
            _, status = http_get(addr, "/api/v1/status")
            calm = [s for s in json.loads(status)["services"] if s["name"] == "calm"][0]
            result["calm_restarts"] = calm["restarts"]
        except (OSError, ValueError, IndexError):
            result["calm_restarts"] = -1
        t0 = time.time()
        try:
            stop = subprocess.run([args.gantry_bin, "stop", "flood"], cwd=work, capture_output=True, timeout=30)
            result["stop_ms"] = round((time.time() - t0) * 1000, 1)
            result["stop_ok"] = stop.returncode == 0
            # The flood again (a restart), then SIGTERM to the whole stack.
            subprocess.run([args.gantry_bin, "start", "flood"], cwd=work, capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            result["stop_ms"] = float("inf")
            result["stop_ok"] = False
        time.sleep(2)
        t0 = time.time()
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
            result["sigterm_to_exit_ms"] = round((time.time() - t0) * 1000, 1)
        except subprocess.TimeoutExpired:
            result["sigterm_to_exit_ms"] = float("inf")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    print("\n| peak RSS | logged lines/s | dropped | calm restarts | `gantry stop` | SIGTERM → exit |")
    print("|---|---|---|---|---|---|")
    print("| %.1f MB | %d | %d | %d | %.0f ms | %.0f ms |" % (
        result["peak_rss_mb"], result["lines_per_s_logged"], result["lines_dropped"],
        result["calm_restarts"], result["stop_ms"], result["sigterm_to_exit_ms"]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Chaos through gantry's ingress: a service with 2 replicas behind `gantry up`'s ingress under
a wrk load of idempotent GETs, while one replica is SIGKILLed every --every seconds (gantry
restarts it), then --restarts rolling restarts (`gantry restart api`) under the same load.
Target (issue 15): 0 failed requests seen by the client in both.

python3, standard library only, loopback only, bounded: about --secs + 10 s per phase.

    python3 bench/ingress/chaos.py                  # builds release, 30 s of kills, 5 restarts
    python3 bench/ingress/chaos.py --no-build --secs 10 --restarts 2

Needs wrk (Debian package `wrk`; installed when missing and apt-get is there). The upstream
is gantry-fixture (`--http PORT`, one thread per connection, `Connection: close`), so the
proxy opens an upstream connection per request: the figure is about failures, not speed.
Prints a Markdown table; asserts nothing.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_pair():
    for _ in range(100):
        p = free_port()
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
                return p
        except OSError:
            continue
    sys.exit("no two consecutive free ports")


def gantry(tgt, d, *args):
    r = subprocess.run([os.path.join(tgt, "gantry"), *args], cwd=d, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def status(tgt, d):
    code, out = gantry(tgt, d, "status", "--json")
    if code != 0:
        return {}
    try:
        return {s["name"]: s for s in json.loads(out)["services"]}
    except (ValueError, KeyError):
        return {}


def wait(pred, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def wrk(port, secs):
    return subprocess.Popen(
        ["wrk", "-t1", "-c8", f"-d{secs}s", "--latency", f"http://127.0.0.1:{port}/health"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def parse_wrk(text):
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    p99 = re.search(r"99%\s+([\d.]+\w+)", text)
    errors = sum(int(x) for x in sock.groups()) if sock else 0
    return {
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors,
        "p99": p99.group(1) if p99 else "?",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--secs", type=int, default=30)
    ap.add_argument("--every", type=float, default=3.0)
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
        if not shutil.which("wrk"):
            sys.exit("wrk is needed (apt-get install wrk)")
    tgt = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
    if not a.no_build:
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "gantry-cli", "-p", "gantry-fixture"], cwd=ROOT, check=True)
    d = tempfile.mkdtemp(prefix="gantry-chaos-")
    base, ing = free_pair(), free_port()
    with open(os.path.join(d, "gantry.toml"), "w") as f:
        f.write(f"""[settings]
api = "127.0.0.1:0"

[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "{tgt}/gantry-fixture --name api-${{REPLICA}} --http ${{PORT}}"
replicas = 2
replica_ports = "{base}-{base + 1}"
restart = "always"
readiness = {{ http = "http://127.0.0.1:${{PORT}}/health", period = "100ms" }}
""")
    up = subprocess.Popen([os.path.join(tgt, "gantry"), "up", "--json"], cwd=d,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        if not wait(lambda: all(s.get("ready") and s.get("pid") for s in status(tgt, d).values()) and len(status(tgt, d)) == 2, 30):
            sys.exit("the stack did not come up")
        # Phase 1: kills.
        load = wrk(ing, a.secs)
        kills = 0
        end = time.monotonic() + a.secs - 1
        victim = 0
        while time.monotonic() + a.every < end:
            time.sleep(a.every)
            name = f"api.{victim % 2 + 1}"
            victim += 1
            pid = status(tgt, d).get(name, {}).get("pid")
            if pid:
                os.kill(pid, signal.SIGKILL)
                kills += 1
        out, _ = load.communicate(timeout=a.secs + 30)
        r = parse_wrk(out)
        r.update(phase=f"{a.secs} s, SIGKILL of a replica every {a.every:g} s", events=f"{kills} kills")
        rows.append(r)
        # Phase 2: rolling restarts.
        wait(lambda: all(s.get("ready") for s in status(tgt, d).values()), 20)
        load = wrk(ing, 3600)
        done = 0
        t0 = time.monotonic()
        for _ in range(a.restarts):
            before = {n: s.get("pid") for n, s in status(tgt, d).items()}
            code, msg = gantry(tgt, d, "restart", "api")
            if code != 0:
                print("restart failed:", msg, file=sys.stderr)
                break
            if wait(lambda: all(s.get("ready") and s.get("pid") and s.get("pid") != before.get(n)
                                for n, s in status(tgt, d).items()), 60):
                done += 1
        took = time.monotonic() - t0
        load.send_signal(signal.SIGINT)
        out, _ = load.communicate(timeout=30)
        r = parse_wrk(out)
        r.update(phase=f"{a.restarts} rolling restarts ({took:.1f} s)", events=f"{done} completed")
        rows.append(r)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
        shutil.rmtree(d, ignore_errors=True)
    print("| phase | events | requests | failed (non-2xx + socket errors) | p99 |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['phase']} | {r['events']} | {r['requests']} | {r['non_2xx'] + r['socket_errors']} | {r['p99']} |")


if __name__ == "__main__":
    main()

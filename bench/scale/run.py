#!/usr/bin/env python3
"""gantry up with N independent services: time to GO, SIGTERM answered and the stack stopped.

Writes N services (`sleep 600`, restart on failure, no probe) to a temporary gantry.toml,
then for each N in --sizes, --runs times:
  - boot: `gantry up` (release build) until its `GO: ready` line; then SIGTERM, and the time
    until gantry has exited (every service stopped);
  - mid-boot: SIGTERM --at seconds into the boot (or half the measured boot): the time
    until gantry prints that it is stopping, and until it has exited.
Prints the median of each figure per size. Loopback only; every run ends by itself.

usage: bench/scale/run.py [--sizes 1000,2000,5000] [--runs 3] [--bin target/release/gantry]
"""
import argparse, os, signal, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def stack(n, path):
    with open(path, "w") as f:
        f.write('[settings]\napi = "127.0.0.1:0"\n')
        for i in range(n):
            f.write(f'[services.s{i}]\ncommand = "sleep 600"\nrestart = "on-failure"\n')


def boot(gantry, d, timeout=300):
    """(seconds to GO, seconds from SIGTERM to exit)."""
    t0 = time.time()
    p = subprocess.Popen([gantry, "up"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    go = None
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    for line in p.stdout:
        if "GO: ready" in line or "NO-GO" in line or "DEGRADED" in line:
            go = time.time() - t0
            break
    t1 = time.time()
    p.send_signal(signal.SIGTERM)
    p.communicate()
    killer.cancel()
    return go, time.time() - t1


def mid_boot(gantry, d, at, timeout=300):
    """(seconds from SIGTERM to gantry saying it stops, to its exit)."""
    p = subprocess.Popen([gantry, "up"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sent = [None]

    def term():
        sent[0] = time.time()
        p.send_signal(signal.SIGTERM)

    timer = threading.Timer(at, term)
    timer.start()
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    answered = None
    for line in p.stdout:
        if sent[0] and ("SIGTERM" in line):
            answered = time.time() - sent[0]
            break
    p.communicate()
    killer.cancel()
    timer.cancel()
    return answered, (time.time() - sent[0]) if sent[0] else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,2000,5000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=None)
    a = ap.parse_args()
    gantry = os.path.abspath(a.bin) if a.bin else None
    if not gantry:
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "gantry-cli"], cwd=ROOT, check=True)
        gantry = os.path.join(ROOT, "target/release/gantry")
    print("| services | to GO | SIGTERM after GO → exit | SIGTERM mid-boot → answered | → exit |")
    print("|---|---|---|---|---|")
    for n in [int(x) for x in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="gantry-scale-") as d:
            stack(n, os.path.join(d, "gantry.toml"))
            gos, stops, answers, exits = [], [], [], []
            for _ in range(a.runs):
                go, stop = boot(gantry, d)
                gos.append(go)
                stops.append(stop)
                ans, ex = mid_boot(gantry, d, max(0.2, go / 2))
                if ans is not None:
                    answers.append(ans)
                exits.append(ex)
            med = lambda xs: statistics.median(xs) if xs else float("nan")
            print(f"| {n} | {med(gos):.2f} s | {med(stops):.2f} s | {med(answers)*1000:.0f} ms | {med(exits):.2f} s |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()

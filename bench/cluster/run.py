#!/usr/bin/env python3
"""Hot standby ([cluster]): takeover time after SIGKILL of the leader and handover time on SIGTERM.

python3, standard library only; needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres;
scripts/stores starts it) and psql. Paths are relative to this file, so run it from anywhere:

    cargo build -p gantry-cli -p gantry-fixture       # or --release, then GANTRY_PROFILE=release
    python3 bench/cluster/run.py                      # 10 kills and 10 SIGTERMs, lease 5s
    python3 bench/cluster/run.py --runs 5 --lease 2s --modes kill

Each run starts two `gantry up --json` instances (their own directories and state dirs, an API
on a free port each) with the same file: one service, the workspace fixture with --delay 50.
The first leads and boots (GO); the second stands by. Then the leader's gantry is sent SIGKILL
(or SIGTERM) and the script reads the standby's events: when it took the lease ("leader",
i.e. the start of its boot) and when its boot was decided (GO), each against the wall clock
of the signal (both processes on this machine, the events' ts_ms). The signal is sent at a
random moment within a renewal period, so the figures cover the lease's whole phase. It
prints a Markdown table; it measures and asserts nothing.
"""

import argparse
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def binaries():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    profile = os.environ.get("GANTRY_PROFILE", "debug")
    return (os.path.join(target, profile, "gantry"), os.path.join(target, profile, "gantry-fixture"))


def psql(db, sql):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qtAc", sql],
                   check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"})


class Instance:
    def __init__(self, gantry, directory):
        self.proc = subprocess.Popen([gantry, "up", "--json"], cwd=directory,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def wait(self, pred, timeout=30):
        until = time.time() + timeout
        while time.time() < until:
            try:
                ev = self.events.get(timeout=max(0.0, until - time.time()))
            except queue.Empty:
                break
            if pred(ev):
                return ev
        raise SystemExit(f"timed out waiting for an event (pid {self.proc.pid})")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)


def parse_secs(text):
    units = {"ms": 0.001, "s": 1, "m": 60}
    for u in ("ms", "s", "m"):
        if text.endswith(u):
            return float(text[: -len(u)]) * units[u]
    raise SystemExit(f"--lease {text}: write it as 5s, 1500ms or 1m")


def role(r):
    return lambda ev: ev.get("event") == "cluster" and ev.get("role") == r


def one_run(gantry, fixture, db, lease, sig):
    toml = f"""[settings]
api = "127.0.0.1:0"

[cluster]
store = "postgres://postgres@127.0.0.1:5432/{db}"
lease = "{lease}"

[services.app]
command = "{fixture} --name benchcluster --delay 50"
"""
    with tempfile.TemporaryDirectory() as a_dir, tempfile.TemporaryDirectory() as b_dir:
        for d in (a_dir, b_dir):
            with open(os.path.join(d, "gantry.toml"), "w") as f:
                f.write(toml)
        a = Instance(gantry, a_dir)
        a.wait(role("leader"))
        a.wait(lambda ev: ev.get("event") == "boot")
        b = Instance(gantry, b_dir)
        b.wait(role("standby"))
        # A random phase against the leader's renewals (every third of the lease): the kill
        # lands anywhere between two renewals, as a real failure would.
        time.sleep(random.uniform(0, parse_secs(lease) / 3))
        sent = time.time() * 1000
        a.proc.send_signal(sig)
        led = b.wait(role("leader"))
        go = b.wait(lambda ev: ev.get("event") == "boot")
        a.proc.wait(timeout=30)
        b.stop()
        return led["ts_ms"] - sent, go["ts_ms"] - sent


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--lease", default="5s")
    p.add_argument("--modes", default="kill,term")
    args = p.parse_args()
    gantry, fixture = binaries()
    for b in (gantry, fixture):
        if not os.path.exists(b):
            raise SystemExit(f"{b} does not exist: cargo build -p gantry-cli -p gantry-fixture")
    db = f"gantry_bench_cluster_{os.getpid()}"
    psql("postgres", f"DROP DATABASE IF EXISTS {db}")
    psql("postgres", f"CREATE DATABASE {db}")
    print(f"| signal | lease | runs | leader after (ms) min / median / max | GO after (ms) min / median / max |")
    print("| --- | --- | --- | --- | --- |")
    try:
        for mode in args.modes.split(","):
            sig = {"kill": signal.SIGKILL, "term": signal.SIGTERM}[mode]
            led, go = [], []
            for i in range(args.runs):
                l, g = one_run(gantry, fixture, db, args.lease, sig)
                print(f"{mode} run {i + 1}: leader after {l:.0f} ms, GO after {g:.0f} ms",
                      file=sys.stderr)
                led.append(l)
                go.append(g)
            fmt = lambda xs: f"{min(xs):.0f} / {statistics.median(xs):.0f} / {max(xs):.0f}"
            name = "SIGKILL" if mode == "kill" else "SIGTERM"
            print(f"| {name} | {args.lease} | {args.runs} | {fmt(led)} | {fmt(go)} |")
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {db}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The floor launcher of bench/boot/run.py and bench/scale/run.py, as a process of its own.

    floor.py SPEC.json POLL_S LIMIT_S

SPEC.json is a list of {"name", "argv", "port", "deps": [names]}. The launcher starts each
service (os.posix_spawn, stdout and stderr to /dev/null) the moment every dependency's port
accepts, polling those ports POLL_S apart: dependency order at next to no orchestration
cost. It prints "t0 SECONDS" (time.perf_counter(), CLOCK_MONOTONIC, so the caller can compare
it with its own clock) just before its first spawn, then "spawned" once every service is
started. Its own interpreter start is therefore not counted, while the caller observes the
ports exactly as it observes a supervisor (run.py's wait_ports), so both pay the same
observer. It stops when its stdin closes (or after LIMIT_S): SIGKILL to every child, then
waits for them. Standard library only; loopback only.
"""

import importlib.util
import json
import os
import signal
import sys
import threading
import time

# The same port check as the benchmark's (run.py), loaded before the clock starts.
_spec = importlib.util.spec_from_file_location(
    "bootbench", os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py"))
_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench)
accepts = _bench.accepts


def main():
    spec_path, poll_s, limit_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    with open(spec_path) as f:
        svcs = json.load(f)
    port = {s["name"]: s["port"] for s in svcs}
    has_dependents = {d for s in svcs for d in s["deps"]}
    devnull = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    pids, started, ready = [], set(), set()
    stop = threading.Event()

    def watch_stdin():
        try:
            sys.stdin.buffer.read()
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    t0 = time.perf_counter()
    print("t0 %.9f" % t0, flush=True)
    try:
        while time.perf_counter() - t0 < limit_s and not stop.is_set():
            for s in svcs:
                if s["name"] not in started and all(d in ready for d in s["deps"]):
                    argv = s["argv"]
                    pids.append(os.posix_spawn(argv[0], argv, os.environ, file_actions=devnull))
                    started.add(s["name"])
            if len(started) == len(svcs):
                break
            for name in started:
                if name in has_dependents and name not in ready and accepts(port[name]):
                    ready.add(name)
            time.sleep(poll_s)
        print("spawned", flush=True)
        stop.wait(max(0.0, limit_s - (time.perf_counter() - t0)))
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


if __name__ == "__main__":
    main()

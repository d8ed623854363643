#!/usr/bin/env python3
"""gantry at 1,000 and 5,000 services, side by side with the floor launcher (issue 21).

python3, standard library only. It reuses bench/boot/run.py's tools (gantry, the oracle
launcher that is the floor), its fixture (`gantry-fixture --delay 50 --listen PORT`), its
port waiting and its /proc readings, so the figures compare with that benchmark's.

    cargo build --release -p gantry-cli -p gantry-fixture
    python3 bench/scale/run.py                              # everything (about 10 minutes)
    python3 bench/scale/run.py --parts boot --scenarios fan500,flat1000 --runs 5

Parts
  boot      each scenario booted by the oracle (the floor) and by gantry, --runs times each,
            alternating, until every port accepts; the ratio is gantry's median / the floor's
            scenarios: flat1000 (1,000 independent services), fan500 (1 root, 499 depending
            on it), layers1000 (10 layers of 100, each service on 5 of the layer before),
            flat5000 (5,000 independent services)
  resident  1,000 services booted by gantry, then --settle s, then gantry's own processes'
            RSS / PSS and CPU over --cpu-window s: once with readiness probes only, once with
            a tcp liveness probe every second on every service; and the same with 10
            services, so that the cost per service is (RSS at 1,000 - RSS at 10) / 990
  reads     at 1,000 services: `gantry status --json` (the whole command), GET /metrics and
            GET /api/v1/status, each --reads times: median and p90
  stop      at 1,000 and 5,000 services: SIGINT after the boot until gantry has exited
            (every service stopped)

Loopback only; every loop is bounded; every process started is stopped (and, failing that,
killed by pid) before the next run.
"""

import argparse
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

_spec = importlib.util.spec_from_file_location("bootbench", os.path.join(ROOT, "bench", "boot", "run.py"))
B = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(B)

SCENARIOS = ("flat1000", "fan500", "layers1000", "flat5000")
PARTS = ("boot", "resident", "reads", "stop")
TARGET_BOOT = 1.03


def stack(scenario, base, liveness=False):
    """The services of a scenario; ports from `base` up."""
    S = B.Svc
    if scenario.startswith("flat"):
        n = int(scenario[4:])
        return [S("s%04d" % j, base + j, liveness=liveness) for j in range(n)]
    if scenario == "fan500":
        root = S("root", base)
        return [root] + [S("f%03d" % j, base + 1 + j, [root]) for j in range(499)]
    if scenario == "layers1000":
        svcs, prev = [], []
        for k in range(10):
            layer = [S("l%dn%02d" % (k, j), base + 100 * k + j,
                       [prev[(j + d) % 100] for d in range(5)] if prev else []) for j in range(100)]
            svcs += layer
            prev = layer
        return svcs
    raise ValueError(scenario)


def boot_part(scenarios):
    rows = []
    oracle, gantry = B.Oracle(), B.Gantry()
    # --baseline-bin: another gantry build booted in turn with this one, in its own work dir.
    base = B.GantryBase() if B.BASELINE else None
    tools = [oracle, gantry] + ([base] if base else [])
    for sc in scenarios:
        svcs = stack(sc, ARGS.port_base)
        works = {t.name: B.make_work(t, svcs) for t in tools if t is not oracle}
        works["oracle"] = None
        for t in tools:  # warm-up: page cache, state store, log files
            B.boot_once(t, svcs, works[t.name])
        times = {t.name: [] for t in tools}
        go = []
        for i in range(ARGS.runs):
            for tool in tools:
                B.wait_quiet()
                t, g, _ = B.boot_once(tool, svcs, works[tool.name])
                if t is None:
                    B.log("  %s %s run %d: not every port accepted" % (tool.name, sc, i + 1))
                    continue
                times[tool.name].append(t * 1000)
                if g is not None and tool is gantry:
                    go.append(g)
                B.log("  %s %s run %d: %.1f ms" % (tool.name, sc, i + 1, t * 1000))
        B.cleanup_works()
        rows.append({"scenario": sc, "services": len(svcs), "times": times, "go": go})
    return rows


def supervisor_mem_cpu(n, liveness):
    """Boot n flat services under gantry; (RSS MiB, PSS MiB, CPU % of a core, processes)."""
    gantry = B.Gantry()
    svcs = stack("flat%d" % n, ARGS.port_base, liveness=liveness)
    B.wait_quiet()
    work = B.make_work(gantry, svcs)
    try:
        with B.Up(gantry, svcs, work) as up:
            if B.wait_ports([s.port for s in svcs], up.t0, 120, ARGS.poll, up.alive) is None:
                return None
            time.sleep(ARGS.settle)
            pids = gantry.supervisor_pids(up.proc)
            m0 = {p: B.mem_kb(p) for p in pids}
            c0 = {p: B.cpu_ns(p) for p in pids}
            w0 = time.monotonic()
            time.sleep(ARGS.cpu_window)
            w1 = time.monotonic()
            c1 = {p: B.cpu_ns(p) for p in pids}
            m1 = {p: B.mem_kb(p) for p in pids}
    finally:
        B.cleanup_works()
    rss = max(sum(v["VmRSS"] for v in m.values()) for m in (m0, m1)) / 1024.0
    pss = max(sum(v["Pss"] for v in m.values()) for m in (m0, m1)) / 1024.0
    cpu = 100.0 * sum(c1[p] - c0[p] for p in pids) / 1e9 / (w1 - w0)
    return {"services": n, "liveness": liveness, "rss_mb": rss, "pss_mb": pss, "cpu_pct": cpu,
            "procs": len(pids)}


def resident_part():
    out = []
    for liveness in (False, True):
        for n in (10, 1000):
            B.log("resident: %d services, %s" % (n, "tcp liveness every 1 s" if liveness else "readiness only"))
            r = supervisor_mem_cpu(n, liveness)
            if r:
                B.log("  RSS %.1f MiB, PSS %.1f MiB, CPU %.2f %%" % (r["rss_mb"], r["pss_mb"], r["cpu_pct"]))
                out.append(r)
    return out


def api_addr(work):
    """gantry's control API address (it binds 127.0.0.1:0 here and writes where to api.addr)."""
    path = os.path.join(work, "state", "api.addr")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                addr = f.read().strip()
            if addr:
                return addr
        except OSError:
            pass
        time.sleep(0.05)
    return None


def timed(f, n):
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    return {"median": statistics.median(lat), "p90": lat[int(0.9 * (len(lat) - 1))], "max": lat[-1]}


def reads_part():
    gantry = B.Gantry()
    svcs = stack("flat1000", ARGS.port_base)
    B.wait_quiet()
    work = B.make_work(gantry, svcs)
    out = {}
    try:
        with B.Up(gantry, svcs, work) as up:
            if B.wait_ports([s.port for s in svcs], up.t0, 120, ARGS.poll, up.alive) is None:
                return {"error": "the 1,000 services did not all accept"}
            time.sleep(ARGS.settle)
            toml = os.path.join(work, "gantry.toml")
            status = [B.GANTRY, "-f", toml, "status", "--json"]

            def cli():
                r = subprocess.run(status, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                if r.returncode != 0 or len(r.stdout) < 1000:
                    raise RuntimeError("gantry status failed (%d)" % r.returncode)

            out["gantry status --json"] = timed(cli, ARGS.reads)
            addr = api_addr(work)
            if addr:
                for path in ("/metrics", "/api/v1/status"):
                    url = "http://%s%s" % (addr, path)

                    def get(url=url):
                        with urllib.request.urlopen(url, timeout=10) as r:
                            r.read()

                    out["GET " + path] = timed(get, ARGS.reads)
            else:
                out["error"] = "no API address in gantry's output"
    finally:
        B.cleanup_works()
    return out


def stop_part():
    out = []
    gantry = B.Gantry()
    for n in (1000, 5000):
        svcs = stack("flat%d" % n, ARGS.port_base)
        B.wait_quiet()
        work = B.make_work(gantry, svcs)
        try:
            up = B.Up(gantry, svcs, work)
            up.__enter__()
            try:
                t = B.wait_ports([s.port for s in svcs], up.t0, 120, ARGS.poll, up.alive)
                time.sleep(ARGS.settle)
                t0 = time.perf_counter()
                B.kill_quietly(up.proc.pid, signal.SIGINT)
                up.proc.wait(timeout=60)
                stopped = (time.perf_counter() - t0) * 1000
            finally:
                up.__exit__(None, None, None)
            out.append({"services": n, "boot_ms": None if t is None else t * 1000, "stop_ms": stopped})
            B.log("  stop %d: boot %.0f ms, SIGINT → exit %.0f ms" % (n, (t or 0) * 1000, stopped))
        finally:
            B.cleanup_works()
    return out


def report(boot, resident, reads, stops):
    out = []
    if boot:
        out.append("### Boot until every port accepts (median of %d runs, oracle = the floor)\n" % ARGS.runs)
        out.append("| scenario | services | floor | gantry | ratio | gantry's GO (own view) | target |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        for r in boot:
            o, g = r["times"]["oracle"], r["times"]["gantry"]
            if not o or not g:
                out.append("| %s | %d | — | — | — | — | |" % (r["scenario"], r["services"]))
                continue
            ratio = statistics.median(g) / statistics.median(o)
            out.append("| %s | %d | %.1f ms | %.1f ms | **%.3f** | %s | ≤ %.2f: %s |" % (
                r["scenario"], r["services"], statistics.median(o), statistics.median(g), ratio,
                "%.0f ms" % statistics.median(r["go"]) if r["go"] else "—", TARGET_BOOT,
                "met" if ratio <= TARGET_BOOT else "**missed**"))
            b = r["times"].get("gantry-base")
            if b:
                out.append("| %s (gantry-base) | %d | %.1f ms | %.1f ms | **%.3f** | — | ≤ %.2f: %s |" % (
                    r["scenario"], r["services"], statistics.median(o), statistics.median(b),
                    statistics.median(b) / statistics.median(o), TARGET_BOOT,
                    "met" if statistics.median(b) / statistics.median(o) <= TARGET_BOOT else "**missed**"))
    if resident:
        out.append("\n### gantry's own processes: memory and CPU (after %.0f s, CPU over %.0f s)\n"
                   % (ARGS.settle, ARGS.cpu_window))
        out.append("| services | probes | processes | RSS | PSS | per service (RSS) | CPU | target |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        base = {r["liveness"]: r for r in resident if r["services"] == 10}
        for r in resident:
            per = ""
            tgt = ""
            if r["services"] == 1000 and r["liveness"] in base:
                kb = (r["rss_mb"] - base[r["liveness"]]["rss_mb"]) * 1024 / 990
                per = "%.1f KB" % kb
                cpu_goal = 1.5 if r["liveness"] else 0.2
                tgt = "≤ 10 KB: %s; CPU ≤ %.1f %%: %s" % (
                    "met" if kb <= 10 else "**missed**", cpu_goal,
                    "met" if r["cpu_pct"] <= cpu_goal else "**missed**")
            out.append("| %d | %s | %d | %.1f MiB | %.1f MiB | %s | %.2f %% of a core | %s |" % (
                r["services"], "readiness + tcp liveness 1 s" if r["liveness"] else "readiness only",
                r["procs"], r["rss_mb"], r["pss_mb"], per, r["cpu_pct"], tgt))
    if reads:
        out.append("\n### Reads at 1,000 services (%d each)\n" % ARGS.reads)
        out.append("| read | median | p90 | max | target |")
        out.append("| --- | --- | --- | --- | --- |")
        for k, v in reads.items():
            if k == "error":
                out.append("\n" + v)
                continue
            out.append("| %s | %.1f ms | %.1f ms | %.1f ms | ≤ 20 ms: %s |" % (
                k, v["median"], v["p90"], v["max"], "met" if v["median"] <= 20 else "**missed**"))
    if stops:
        out.append("\n### SIGINT after the boot until gantry exits\n")
        out.append("| services | boot | stop |")
        out.append("| --- | --- | --- |")
        for r in stops:
            out.append("| %d | %s | %.0f ms |" % (r["services"], "—" if r["boot_ms"] is None else
                                                 "%.0f ms" % r["boot_ms"], r["stop_ms"]))
    return "\n".join(out)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--reads", type=int, default=30)
    # 26000-30999: above RabbitMQ's distribution port (25672), below the ephemeral range.
    ap.add_argument("--port-base", type=int, default=26000)
    ap.add_argument("--poll", type=float, default=0.0002)
    ap.add_argument("--boot-limit", type=float, default=120.0)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--cpu-window", type=float, default=20.0)
    ap.add_argument("--quiet-busy", type=float, default=0.15)
    ap.add_argument("--quiet-wait", type=float, default=30.0)
    ap.add_argument("--floor-inline", action="store_true",
                    help="run the floor launcher inside this script (no observer while it spawns; the method before 2026-12-07)")
    ap.add_argument("--tmpdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--gantry-bin", default=B.GANTRY)
    ap.add_argument("--fixture-bin", default=B.FIXTURE)
    ap.add_argument("--baseline-bin", help="another gantry binary, booted in turn with --gantry-bin (row gantry-base)")
    ap.add_argument("--json", metavar="FILE")
    ARGS = ap.parse_args()
    ARGS.gantry_keys = ""
    ARGS.runs = max(1, min(ARGS.runs, 100))
    ARGS.reads = max(1, min(ARGS.reads, 1000))
    if ARGS.port_base < 1024 or ARGS.port_base + 5000 >= 32768:
        sys.exit("--port-base must leave 5,000 ports below the ephemeral range (32768)")
    B.ARGS = ARGS
    B.GANTRY, B.FIXTURE = os.path.abspath(ARGS.gantry_bin), os.path.abspath(ARGS.fixture_bin)
    B.BASELINE = os.path.abspath(ARGS.baseline_bin) if ARGS.baseline_bin else None
    why = B.Gantry().available()
    if why:
        sys.exit(why)
    parts = ARGS.parts.split(",")
    scenarios = [s for s in ARGS.scenarios.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            sys.exit("unknown scenario %s (known: %s)" % (s, ", ".join(SCENARIOS)))
    where = B.machine()
    boot, resident, reads, stops = [], [], {}, []
    try:
        if "boot" in parts:
            boot = boot_part(scenarios)
        if "resident" in parts:
            resident = resident_part()
        if "reads" in parts:
            reads = reads_part()
        if "stop" in parts:
            stops = stop_part()
    finally:
        B.cleanup_strays()
        B.cleanup_works()
    print("Machine: " + where + "\n")
    print(report(boot, resident, reads, stops))
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump({"machine": where, "boot": boot, "resident": resident, "reads": reads, "stops": stops},
                      f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Boot and supervision benchmarks: gantry next to the tools people use instead.

python3, standard library only. Paths are relative to this file, so run it from anywhere:

    cargo build --release -p gantry-cli -p gantry-fixture
    python3 bench/boot/run.py                        # everything (about 12 minutes)
    python3 bench/boot/run.py --tools gantry,oracle  # gantry and the floor only
    python3 bench/boot/run.py --scenarios chain,kill --runs 15

It prints progress on stderr and a Markdown report on stdout. It measures and prints;
it asserts nothing (targets are only marked "met" / "missed").

Every service is the workspace fixture, `gantry-fixture --delay 50 --listen PORT`: its port
accepts 50 ms after the process starts.

Scenarios
  chain    10 services, each depends on the previous one            critical path 500 ms
  layers   4 layers x 10, each depends on all 10 of the layer before         200 ms
  fan      1 root + 50 services depending on it                              100 ms
  mem      RSS / PSS of the supervisor's own processes with 100 services (tcp readiness,
           tcp liveness every 1 s, restart always), 3 s after the boot
  cpu      CPU time of those processes over 20 s of that steady state (same run as mem)
  kill     SIGKILL a running service (restart always, fixture with --delay 0): time until
           its port accepts again; one kill per service, 20 services
  restart  one such service SIGKILLed --restart-kills times (default 5), --restart-gap s
           (default 3) apart: every restart's time until its port accepts again (a service
           that was ready for seconds must come back at once every time, not back off)

Boot metric: wall time from launching the supervisor until every port accepts, measured
here with blocking connects to one not-yet-accepting port at a time, 0.2 ms apart (so
at most ~0.3 ms late and ~10% of a core; polling all pending ports at once would take a
core from the processes being measured on a 2-core machine). Ratio = median / critical
path. Each (tool, scenario) gets one untimed warm-up boot, then --runs timed boots in the
same directory (gantry's state store and logs exist, as when a user runs `up` again);
--cold adds gantry rows with the state dir deleted before each run. Before every timed
run the script waits (up to --quiet-wait s) for the CPUs to be idle, since other jobs on a
shared machine skew the figures.

Tools
  gantry       target/release/gantry -f FILE up --json; readiness { tcp = ... } with
               default settings; [settings] api = "127.0.0.1:0" so that other gantry
               instances on the machine cannot take its API port
  oracle       not a supervisor: bench/boot/floor.py starts each fixture (os.posix_spawn) as
               soon as every dependency's port accepts, polling every 0.2 ms: dependency
               order at next to no orchestration cost, i.e. the floor for this fixture on
               this machine. It is a process of its own, timed from its first spawn (its
               interpreter start is not counted) and observed by the same port wait as the
               supervisors, whose CPU then weighs on it too (--floor-inline: the launcher
               runs inside this script, with no observer while it spawns, as before
               2026-12-07; on 2 cores that flattered the floor by ~5 % at 1,000 services)
  supervisord  [program:x] per service; a dependent runs bench/boot/wait-for (bash /dev/tcp
               checks, `sleep 0.1` between them) before exec'ing the fixture
  honcho       Procfile with the same wait-for loops (honcho never restarts: not in kill)
  s6           s6-svscan + run scripts with s6's native readiness: each service dir has
               `notification-fd` 3, the fixture writes a newline to fd 3 once it listens
               (--ready-fd 3), and a dependent's run script waits with
               `s6-svwait -U DEP_DIRS...` (up and ready) before exec'ing the fixture
  runit        runsvdir + run scripts with the same wait-for loops

Every loop is bounded in count and time; only 127.0.0.1 is used; every process started
is stopped (and, failing that, killed by pid) before the next run.
"""

import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GANTRY = os.path.join(ROOT, "target", "release", "gantry")
FIXTURE = os.path.join(ROOT, "target", "release", "gantry-fixture")
# --static-fixture: the same fixture linked statically (no dynamic loader at its start).
STATIC_DIR = os.path.join(ROOT, "target", "static")
STATIC_FIXTURE = os.path.join(STATIC_DIR, "x86_64-unknown-linux-gnu", "release", "gantry-fixture")
WAITFOR = os.path.join(HERE, "wait-for")
MARKER = "gantrybench-%d" % os.getpid()  # on every fixture's command line (--marker)
DELAY_MS = 50

BOOT_SCENARIOS = ("chain", "layers", "fan")
ALL_SCENARIOS = BOOT_SCENARIOS + ("mem", "cpu", "kill", "restart")
ALL_TOOLS = ("gantry", "gantry-base", "oracle", "supervisord", "honcho", "s6", "runit")
TARGETS = {"chain": 1.05, "layers": 1.15, "fan": 1.30}
RESIDENT_TOOLS = ("gantry", "gantry-base", "supervisord", "s6", "runit")
# --baseline-bin: a second gantry binary (e.g. the previous commit's) run as the tool
# "gantry-base" beside "gantry", so that a change is measured side by side in one run.
BASELINE = None

ARGS = None  # the parsed command line
WORKS = []  # temp dirs to remove at the end


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- stacks


class Svc:
    def __init__(self, name, port, deps=(), delay=DELAY_MS, restart=False, liveness=False):
        self.name = name
        self.port = port
        self.deps = list(deps)  # Svc objects
        self.delay = delay
        self.restart = restart
        self.liveness = liveness

    def fixture_argv(self):
        return [FIXTURE, "--name", self.name, "--delay", str(self.delay),
                "--listen", str(self.port), "--marker", MARKER]

    def waiting_argv(self, interval="0.1"):
        """The peers' command: the fixture behind a wait-for loop on its dependencies."""
        if not self.deps:
            return self.fixture_argv()
        ports = ",".join(str(d.port) for d in self.deps)
        return [WAITFOR, interval, ports, "--"] + self.fixture_argv()


def stack(scenario, base):
    """(services, critical path in ms) of a scenario; ports from `base` up."""
    if scenario == "chain":
        svcs = []
        for i in range(10):
            svcs.append(Svc("c%02d" % i, base + i, svcs[-1:]))
        return svcs, 10 * DELAY_MS
    if scenario == "layers":
        svcs, prev = [], []
        for k in range(4):
            layer = [Svc("l%dn%02d" % (k, j), base + 10 * k + j, prev) for j in range(10)]
            svcs += layer
            prev = layer
        return svcs, 4 * DELAY_MS
    if scenario == "fan":
        root = Svc("root", base)
        return [root] + [Svc("f%02d" % j, base + 1 + j, [root]) for j in range(50)], 2 * DELAY_MS
    if scenario in ("mem", "cpu"):
        return [Svc("m%03d" % j, base + j, liveness=True, restart=True) for j in range(100)], DELAY_MS
    if scenario == "kill":
        return [Svc("k%02d" % j, base + j, delay=0, restart=True) for j in range(ARGS.kills)], 0
    if scenario == "restart":
        return [Svc("r00", base, delay=0, restart=True)], 0
    raise ValueError(scenario)


# --------------------------------------------------------------------------- /proc helpers


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def proc_table():
    """{pid: (ppid, [argv])} for every process visible now."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        stat = read("/proc/%s/stat" % d)
        cmd = read("/proc/%s/cmdline" % d)
        if stat is None or cmd is None:
            continue
        rest = stat[stat.rfind(b")") + 2:].split()
        argv = [a.decode(errors="replace") for a in cmd.split(b"\0") if a]
        table[int(d)] = (int(rest[1]), argv)
    return table


def descendants(root, table=None):
    table = table if table is not None else proc_table()
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo and len(out) < 100000:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def marked_pids():
    """Processes of this script's stacks that are still around (their argv has MARKER)."""
    return [pid for pid, (_, argv) in proc_table().items() if MARKER in argv and pid != os.getpid()]


def fixture_pid(port):
    """Host pid of this script's fixture listening on `port` (None if not running)."""
    want = str(port)
    for pid, (_, argv) in proc_table().items():
        if MARKER in argv and argv and argv[0] == FIXTURE:
            for i, a in enumerate(argv[:-1]):
                if a == "--listen" and argv[i + 1] == want:
                    return pid
    return None


def cpu_ns(pid):
    """CPU time of every thread of `pid` so far, in ns (/proc/PID/task/*/schedstat, exact;
    /proc/PID/stat utime+stime counts whole 10 ms ticks)."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for tid in tids:
        s = read("/proc/%d/task/%s/schedstat" % (pid, tid))
        if s:
            total += int(s.split()[0])
    return total


def cpu_ticks_s(pid):
    """utime + stime from /proc/PID/stat (fields 14, 15), in seconds."""
    stat = read("/proc/%d/stat" % pid)
    if stat is None:
        return 0.0
    rest = stat[stat.rfind(b")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def mem_kb(pid):
    """{VmRSS, RssAnon, RssFile, Pss} in kB."""
    out = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0, "Pss": 0}
    for line in (read("/proc/%d/status" % pid) or b"").splitlines():
        key = line.split(b":")[0].decode()
        if key in out:
            out[key] = int(line.split()[1])
    for line in (read("/proc/%d/smaps_rollup" % pid) or b"").splitlines():
        if line.startswith(b"Pss:"):
            out["Pss"] = int(line.split()[1])
    return out


def kill_quietly(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cpu_busy(window_s):
    """Fraction of all CPUs busy (neither idle nor iowait) over window_s, from /proc/stat."""
    def snap():
        f = [int(x) for x in read("/proc/stat").split(b"\n", 1)[0].split()[1:]]
        return sum(f), f[3] + f[4]
    t0, i0 = snap()
    time.sleep(window_s)
    t1, i1 = snap()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet():
    """Before a measurement: wait (at most --quiet-wait s) until other processes leave the
    CPUs mostly idle (busy <= --quiet-busy over 0.5 s). Returns the busy fraction seen."""
    deadline = time.monotonic() + ARGS.quiet_wait
    while True:
        busy = cpu_busy(0.5)
        if busy <= ARGS.quiet_busy or time.monotonic() >= deadline:
            if busy > ARGS.quiet_busy:
                log("  machine still %.0f%% busy after waiting %.0f s; measuring anyway"
                    % (100 * busy, ARGS.quiet_wait))
            return busy


# --------------------------------------------------------------------------- ports


def accepts(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_ports(ports, t0, limit_s, poll_s, alive=lambda: True):
    """Seconds from t0 until every port accepts (None on timeout or supervisor death).

    Ports never stop accepting in these stacks, so "every port accepts" is the moment the
    last one starts to. The ports are waited for one after the other: connects to the
    current one poll_s apart, then on to the next, which usually accepts at once. The
    moment found is at most one poll interval late, and the loop costs one connect per
    interval rather than one per pending port.
    """
    last = t0
    checks = 0
    for p in ports:
        while True:
            checks += 1
            if accepts(p):
                last = time.perf_counter()
                break
            if time.perf_counter() - t0 > limit_s or (checks % 512 == 0 and not alive()):
                return None
            if poll_s > 0:
                time.sleep(poll_s)
    return last - t0


def wait_ports_free(ports, limit_s=10.0):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if not any(accepts(p) for p in ports):
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------- tools


class Tool:
    name = "?"
    restarts = True  # takes part in the kill scenario

    def available(self):
        return None  # or a reason why not

    def prepare(self, work, svcs):
        raise NotImplementedError

    def launch(self, work):
        raise NotImplementedError

    def stop(self, proc, work):
        kill_quietly(proc.pid, signal.SIGTERM)

    def forget_state(self, work):
        """Make the next launch a first one (no state from earlier runs)."""

    def supervisor_pids(self, proc):
        """The supervisor's own processes: the root and every descendant that is not a
        service (fixture) or a wait-for loop."""
        table = proc_table()
        pids = [proc.pid] + descendants(proc.pid, table)
        return [p for p in pids if p in table and MARKER not in table[p][1]
                and not any(a.endswith("/wait-for") for a in table[p][1][:2])]


def toml_str(s):
    return json.dumps(s)  # ASCII-only strings: a JSON string is a TOML basic string


def popen(argv, work, out_name):
    out = open(os.path.join(work, out_name), "wb")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=work, start_new_session=True)
    finally:
        out.close()


class Gantry(Tool):
    name = "gantry"

    def available(self):
        for b in (GANTRY, FIXTURE):
            if not os.access(b, os.X_OK):
                return "%s missing: cargo build --release -p gantry-cli -p gantry-fixture" % b
        return None

    def prepare(self, work, svcs):
        lines = ["[settings]", "state_dir = %s" % toml_str(os.path.join(work, "state")),
                 # A free port for the control API, so that another gantry on the machine
                 # (someone's tests) cannot make the bind fail or differ between runs.
                 'api = "127.0.0.1:0"', ""]
        for s in svcs:
            lines.append("[services.%s]" % s.name)
            lines.append("command = [%s]" % ", ".join(toml_str(a) for a in s.fixture_argv()))
            lines.append('readiness = { tcp = "127.0.0.1:%d" }' % s.port)
            if s.deps:
                lines.append("depends_on = [%s]" % ", ".join(toml_str(d.name) for d in s.deps))
            if s.restart:
                lines.append('restart = "always"')
            if s.liveness:
                lines.append('liveness = { tcp = "127.0.0.1:%d", period = "1s" }' % s.port)
            if ARGS.gantry_keys:
                lines.append(ARGS.gantry_keys)
            lines.append("")
        with open(os.path.join(work, "gantry.toml"), "w") as f:
            f.write("\n".join(lines))

    def binary(self):
        return GANTRY

    def launch(self, work):
        return popen([self.binary(), "-f", os.path.join(work, "gantry.toml"), "up", "--json"], work, "gantry.out")

    def stop(self, proc, work):
        kill_quietly(proc.pid, signal.SIGINT)  # the stub forwards it to the namespace init

    def forget_state(self, work):
        shutil.rmtree(os.path.join(work, "state"), ignore_errors=True)


class GantryBase(Gantry):
    """The same tool with the binary of --baseline-bin."""
    name = "gantry-base"

    def available(self):
        if not BASELINE or not os.access(BASELINE, os.X_OK):
            return "no --baseline-bin given"
        return None

    def binary(self):
        return BASELINE


class Oracle(Tool):
    """Not a supervisor: the floor launcher (floor.py, a process of its own) starts each
    fixture the moment all of its dependencies' ports accept (see the module docs)."""
    name = "oracle"
    restarts = False

    def prepare(self, work, svcs):
        pass

    def boot(self, svcs, limit_s, poll_s):
        """Seconds from the launcher's first spawn until every port accepts (None on timeout).

        The ports are observed here with wait_ports, as for every supervisor, so the
        observer's CPU weighs on the floor as it does on the others. With --floor-inline the
        launcher runs in this process instead (the method of the rounds before 2026-12-07:
        no observer runs while it spawns)."""
        if ARGS.floor_inline:
            return self.boot_inline(svcs, limit_s, poll_s)
        fd, spec = tempfile.mkstemp(prefix="gantry-bench-floor-", suffix=".json", dir=ARGS.tmpdir)
        with os.fdopen(fd, "w") as f:
            json.dump([{"name": s.name, "argv": s.fixture_argv(), "port": s.port,
                        "deps": [d.name for d in s.deps]} for s in svcs], f)
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "floor.py"), spec, str(poll_s),
                                 str(limit_s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        t = None
        try:
            line = proc.stdout.readline().decode().split()
            if len(line) == 2 and line[0] == "t0":
                t0 = float(line[1])
                t = wait_ports([s.port for s in svcs], t0, limit_s, poll_s,
                               lambda: proc.poll() is None)
        finally:
            proc.stdin.close()  # the launcher kills and reaps its fixtures, then exits
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                kill_quietly(proc.pid, signal.SIGKILL)
                proc.wait()
            proc.stdout.close()
            os.unlink(spec)
            wait_ports_free([s.port for s in svcs], 10)
        return t

    def boot_inline(self, svcs, limit_s, poll_s):
        devnull = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        pids, started, ready = [], set(), set()
        has_dependents = {d.name for s in svcs for d in s.deps}
        t = None
        t0 = time.perf_counter()
        try:
            while time.perf_counter() - t0 < limit_s:
                for s in svcs:
                    if s.name not in started and all(d.name in ready for d in s.deps):
                        argv = s.fixture_argv()
                        pids.append(os.posix_spawn(argv[0], argv, os.environ, file_actions=devnull))
                        started.add(s.name)
                watch = [s for s in svcs if s.name in started and s.name not in ready
                         and s.name in has_dependents]
                if not watch:
                    t = wait_ports([s.port for s in svcs], t0, limit_s, poll_s)
                    break
                for s in watch:
                    if accepts(s.port):
                        ready.add(s.name)
                time.sleep(poll_s)
        finally:
            for pid in pids:
                kill_quietly(pid, signal.SIGKILL)
            for pid in pids:
                os.waitpid(pid, 0)
            wait_ports_free([s.port for s in svcs], 10)
        return t


class Supervisord(Tool):
    name = "supervisord"

    def available(self):
        return None if shutil.which("supervisord") else "not installed (apt-get install supervisor)"

    def prepare(self, work, svcs):
        conf = ["[supervisord]", "nodaemon=true", "logfile=%s/supervisord.log" % work,
                "pidfile=%s/supervisord.pid" % work, "childlogdir=%s" % work, "loglevel=warn",
                "user=root" if os.geteuid() == 0 else "", ""]
        for s in svcs:
            conf += ["[program:%s]" % s.name,
                     "command=%s" % " ".join(s.waiting_argv()),
                     "autostart=true", "autorestart=%s" % ("true" if s.restart else "false"),
                     "startsecs=0", "startretries=3", "stopasgroup=true", "killasgroup=true",
                     # Output captured to files in childlogdir (the default): supervisord
                     # then watches the child's pipes, and their hang-up on a crash wakes
                     # its 1 s poll loop at once (with stdout_logfile=NONE it only notices
                     # the SIGCHLD when the poll times out, ~1 s later).
                     "redirect_stderr=true", ""]
        with open(os.path.join(work, "supervisord.conf"), "w") as f:
            f.write("\n".join(conf))

    def launch(self, work):
        return popen(["supervisord", "-n", "-c", os.path.join(work, "supervisord.conf")], work,
                     "supervisord.out")


class Honcho(Tool):
    name = "honcho"
    restarts = False

    def available(self):
        return None if shutil.which("honcho") else "not installed (pip install honcho)"

    def prepare(self, work, svcs):
        with open(os.path.join(work, "Procfile"), "w") as f:
            for s in svcs:
                f.write("%s: exec %s\n" % (s.name, " ".join(s.waiting_argv())))

    def launch(self, work):
        return popen([shutil.which("honcho"), "-f", os.path.join(work, "Procfile"), "-d", work,
                      "start", "--no-prefix"], work, "honcho.out")


class ScanDir(Tool):
    """s6 and runit read the same layout: scan/NAME/run."""

    def prepare(self, work, svcs):
        scan = os.path.join(work, "scan")
        os.makedirs(scan)
        for s in svcs:
            d = os.path.join(scan, s.name)
            os.makedirs(d)
            run = os.path.join(d, "run")
            with open(run, "w") as f:
                f.write("\n".join(["#!/bin/sh", "exec 2>&1"] + self.run_body(scan, d, s)) + "\n")
            os.chmod(run, 0o755)

    def run_body(self, scan, d, s):
        """The run script after its header: the fixture behind the wait-for loop."""
        return ["exec %s" % " ".join(s.waiting_argv())]

    @staticmethod
    def svc_dirs(work):
        scan = os.path.join(work, "scan")
        return [os.path.join(scan, d) for d in sorted(os.listdir(scan)) if not d.startswith(".")]


class S6(ScanDir):
    name = "s6"

    def available(self):
        return None if shutil.which("s6-svscan") else "not installed (apt-get install s6)"

    def run_body(self, scan, d, s):
        """Native readiness: notification-fd and s6-svwait -U instead of port loops."""
        with open(os.path.join(d, "notification-fd"), "w") as f:
            f.write("3\n")
        lines = []
        if s.deps:
            deps = " ".join(os.path.join(scan, x.name) for x in s.deps)
            # s6-svwait needs each dependency's supervise dir; s6-svscan starts all
            # the s6-supervise processes at once, so on the first scan one may lag.
            lines.append("for d in %s; do while [ ! -e \"$d/supervise/status\" ]; do "
                         "sleep 0.001; done; done" % deps)
            lines.append("s6-svwait -U %s || exit 1" % deps)
        lines.append("exec %s --ready-fd 3" % " ".join(s.fixture_argv()))
        return lines

    def launch(self, work):
        return popen(["s6-svscan", os.path.join(work, "scan")], work, "s6.out")

    def stop(self, proc, work):
        # -t: bring every service down, then s6-svscan exits.
        subprocess.run(["s6-svscanctl", "-t", os.path.join(work, "scan")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)


class Runit(ScanDir):
    name = "runit"

    def available(self):
        return None if shutil.which("runsvdir") else "not installed (apt-get install runit)"

    def launch(self, work):
        return popen(["runsvdir", os.path.join(work, "scan")], work, "runit.out")

    def stop(self, proc, work):
        # runsv exits on TERM only once its service is down: take the services down first.
        subprocess.run(["sv", "-w", "5", "force-stop"] + self.svc_dirs(work),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        kill_quietly(proc.pid, signal.SIGHUP)


TOOLS = {t.name: t for t in (Gantry(), GantryBase(), Oracle(), Supervisord(), Honcho(), S6(), Runit())}


# --------------------------------------------------------------------------- one stack up/down


def make_work(tool, svcs):
    """A temp dir holding the tool's configuration for this stack (and its state, logs)."""
    work = tempfile.mkdtemp(prefix="gantry-bench-%s-" % tool.name, dir=ARGS.tmpdir)
    WORKS.append(work)
    tool.prepare(work, svcs)
    return work


def cleanup_works():
    while WORKS:
        w = WORKS.pop()
        if not ARGS.keep:
            shutil.rmtree(w, ignore_errors=True)


def cleanup_strays():
    for p in marked_pids():
        kill_quietly(p, signal.SIGKILL)
    time.sleep(0.1)


class Up:
    """Context manager: `tool` running the stack prepared in `work`; stopped on exit, and
    whatever is left of its process tree (or carries MARKER) is killed by pid."""

    def __init__(self, tool, svcs, work, cold=False):
        self.tool, self.svcs, self.work, self.cold = tool, svcs, work, cold
        self.ports = [s.port for s in svcs]

    def __enter__(self):
        if not wait_ports_free(self.ports, 10):
            cleanup_strays()
            if not wait_ports_free(self.ports, 5):
                raise RuntimeError("ports %d.. are in use by something else; pick another --port-base"
                                   % self.ports[0])
        if self.cold:
            self.tool.forget_state(self.work)
        self.t0 = time.perf_counter()
        self.proc = self.tool.launch(self.work)
        return self

    def alive(self):
        return self.proc.poll() is None

    def __exit__(self, *exc):
        tree = descendants(self.proc.pid)
        try:
            self.tool.stop(self.proc, self.work)
        except Exception as e:  # a peer's control tool failing must not leak processes
            log("  %s: stop failed: %s" % (self.tool.name, e))
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            log("  %s did not stop within 20 s; killing it" % self.tool.name)
            kill_quietly(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        time.sleep(0.05)
        for p in tree + marked_pids():
            kill_quietly(p, signal.SIGKILL)
        if not wait_ports_free(self.ports, 10):
            log("  warning: some ports still accept after stopping %s" % self.tool.name)
        return False


# --------------------------------------------------------------------------- scenarios


def gantry_view(work):
    """gantry's own view of a boot, from its --json events: (GO after ms, median over
    services of starting -> ready minus the fixture's delay, in ms)."""
    try:
        with open(os.path.join(work, "gantry.out")) as f:
            events = [json.loads(l) for l in f if l.startswith("{")]
    except (OSError, ValueError):
        return None, None
    go = next((e.get("duration_ms") for e in events if e.get("event") == "boot"), None)
    starting, hops = {}, []
    for e in events:
        if e.get("event") != "transition":
            continue
        if e.get("to") == "starting":
            starting[e["service"]] = e["at_ms"]
        elif e.get("to") == "ready" and e["service"] in starting:
            hops.append(e["at_ms"] - starting[e["service"]] - DELAY_MS)
    return go, (statistics.median(hops) if hops else None)


def boot_once(tool, svcs, work, cold=False):
    """One boot: (seconds until every port accepts or None, gantry's GO ms, hop ms)."""
    if isinstance(tool, Oracle):
        return tool.boot(svcs, ARGS.boot_limit, ARGS.poll), None, None
    with Up(tool, svcs, work, cold=cold) as up:
        t = wait_ports([s.port for s in svcs], up.t0, ARGS.boot_limit, ARGS.poll, up.alive)
        if tool.name != "gantry" or t is None:
            return t, None, None
        time.sleep(0.05)  # let it print its GO line
        go, hop = gantry_view(up.work)
        return t, go, hop


def bench_boot(tool, scenario, cold=False):
    """One untimed warm-up boot, then timed boots in the same work dir until --runs of them
    started on a quiet machine (at most 2 x --runs attempts; if that budget runs out, the
    runs that started under other load fill the gap and are counted in the report)."""
    svcs, crit = stack(scenario, ARGS.port_base)
    quiet, loaded, go, hops, failures, busy = [], [], [], [], 0, []
    work = make_work(tool, svcs)
    boot_once(tool, svcs, work, cold)  # warm-up: page cache, state store, log files
    for i in range(2 * ARGS.runs):
        if len(quiet) >= ARGS.runs:
            break
        b = wait_quiet()
        busy.append(b)
        t, g, h = boot_once(tool, svcs, work, cold)
        if g is not None:
            go.append(g)
        if h is not None:
            hops.append(h)
        if t is None:
            failures += 1
            log("  %s %s run %d: not every port accepted within %.0f s"
                % (tool.name, scenario, i + 1, ARGS.boot_limit))
            continue
        (quiet if b <= ARGS.quiet_busy else loaded).append(t * 1000)
        log("  %s %s run %d: %.1f ms (%.3f x)%s" % (tool.name, scenario, i + 1, t * 1000, t * 1000 / crit,
                                                   "" if b <= ARGS.quiet_busy else " [machine busy]"))
    cleanup_works()
    used_loaded = loaded[:max(0, ARGS.runs - len(quiet))]
    return {"tool": tool.name + (" (cold state dir)" if cold else ""), "scenario": scenario, "crit": crit,
            "times": quiet + used_loaded, "loaded": len(used_loaded), "discarded": len(loaded) - len(used_loaded),
            "failures": failures, "go": go, "hops": hops, "busy_before": busy}


def bench_resident(tool):
    """mem + cpu: boot 100 services, wait --settle s, then memory, CPU over --cpu-window s,
    memory again (the larger sum is reported)."""
    svcs, _ = stack("mem", ARGS.port_base)
    wait_quiet()
    work = make_work(tool, svcs)
    try:
        with Up(tool, svcs, work) as up:
            t = wait_ports([s.port for s in svcs], up.t0, 60, ARGS.poll, up.alive)
            if t is None:
                return {"tool": tool.name, "error": "the 100 services did not all accept within 60 s"}
            time.sleep(ARGS.settle)
            pids = tool.supervisor_pids(up.proc)
            m0 = {p: mem_kb(p) for p in pids}
            c0 = {p: (cpu_ns(p), cpu_ticks_s(p)) for p in pids}
            w0 = time.monotonic()
            time.sleep(ARGS.cpu_window)
            w1 = time.monotonic()
            c1 = {p: (cpu_ns(p), cpu_ticks_s(p)) for p in pids}
            m1 = {p: mem_kb(p) for p in pids}
            still_up = sum(accepts(s.port) for s in svcs)
    finally:
        cleanup_works()

    def total(m, key):
        return sum(v[key] for v in m.values()) / 1024.0

    end = m1 if total(m1, "VmRSS") >= total(m0, "VmRSS") else m0
    window = w1 - w0
    return {
        "tool": tool.name, "boot_ms": t * 1000, "procs": len(pids),
        "rss_mb": total(end, "VmRSS"), "pss_mb": total(end, "Pss"),
        "each": [{k: round(v / 1024.0, 1) for k, v in end[p].items()} for p in pids],
        "cpu_pct": 100.0 * sum(c1[p][0] - c0[p][0] for p in pids) / 1e9 / window,
        "cpu_pct_ticks": 100.0 * sum(c1[p][1] - c0[p][1] for p in pids) / window,
        "window_s": window, "still_up": still_up,
    }


def kill_and_wait(s):
    """SIGKILLs the fixture listening on s.port: (ms until its port accepts again, None) or
    (None, error)."""
    pid = fixture_pid(s.port)
    if pid is None:
        return None, "%s: no fixture found" % s.name
    # The victim's exit is awaited on a pidfd, which becomes readable once the process has
    # exited, i.e. after its listening socket is closed. (Reading /proc/PID/stat is not
    # enough: it can read as gone while the old socket still accepts, which made some
    # restarts look like 0.2 ms.)
    pfd = os.pidfd_open(pid)
    try:
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        waiter = select.poll()
        waiter.register(pfd, select.POLLIN)
        exited = bool(waiter.poll(5000))
    finally:
        os.close(pfd)
    if not exited:
        return None, "%s: pid %d did not exit within 5 s of SIGKILL" % (s.name, pid)
    limit = t0 + 5
    while not accepts(s.port) and time.perf_counter() < limit:
        time.sleep(ARGS.poll / 4)
    t1 = time.perf_counter()
    if t1 >= limit:
        return None, "%s: the port did not accept again within 5 s" % s.name
    return (t1 - t0) * 1000, None


def bench_kill(tool):
    svcs, _ = stack("kill", ARGS.port_base)
    lat, errors = [], []
    wait_quiet()
    work = make_work(tool, svcs)
    try:
        with Up(tool, svcs, work) as up:
            if wait_ports([s.port for s in svcs], up.t0, 30, ARGS.poll, up.alive) is None:
                return {"tool": tool.name, "error": "the stack did not come up"}
            time.sleep(ARGS.settle)
            # One kill per service (the restart scenario kills one service again and again).
            for s in svcs:
                ms, err = kill_and_wait(s)
                if err:
                    errors.append(err)
                else:
                    lat.append(ms)
                time.sleep(ARGS.kill_gap)
    finally:
        cleanup_works()
    log("  %s kill: %s ms" % (tool.name, " ".join("%.1f" % x for x in lat)))
    return {"tool": tool.name, "lat": lat, "errors": errors}


def bench_restart(tool):
    """One service killed --restart-kills times, --restart-gap s apart (measured from one kill
    to the next): each restart's latency, in order."""
    svcs, _ = stack("restart", ARGS.port_base)
    s = svcs[0]
    lat, errors = [], []
    wait_quiet()
    work = make_work(tool, svcs)
    try:
        with Up(tool, svcs, work) as up:
            if wait_ports([s.port], up.t0, 30, ARGS.poll, up.alive) is None:
                return {"tool": tool.name, "error": "the stack did not come up"}
            time.sleep(ARGS.restart_gap)
            for _ in range(ARGS.restart_kills):
                t_kill = time.perf_counter()
                ms, err = kill_and_wait(s)
                lat.append(ms)
                if err:
                    errors.append(err)
                left = t_kill + ARGS.restart_gap - time.perf_counter()
                if left > 0:
                    time.sleep(left)
    finally:
        cleanup_works()
    log("  %s restart: %s ms" % (tool.name, " ".join("—" if x is None else "%.1f" % x for x in lat)))
    return {"tool": tool.name, "lat": lat, "errors": errors}


# --------------------------------------------------------------------------- report


def machine():
    def sh(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    model = next((l.split(":", 1)[1].strip() for l in (read("/proc/cpuinfo") or b"").decode().splitlines()
                  if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 for l in (read("/proc/meminfo") or b"").decode().splitlines()
                if l.startswith("MemTotal")), 0)
    commit = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = " + uncommitted changes" if sh(["git", "-C", ROOT, "status", "--porcelain", "--", "crates"]) else ""
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(GANTRY).st_mtime)) if os.path.exists(GANTRY) else "?"
    linked = "static" if b"static" in (subprocess.run(["file", "-b", FIXTURE], capture_output=True).stdout
                                       if shutil.which("file") else b"") else "dynamic"
    return ("%d cores (%s), %d MiB, Linux %s; %s (commit %s%s, built %s); fixture %s (%s)"
            % (os.cpu_count(), model, mem, os.uname().release, sh([GANTRY, "--version"]) or "gantry ?",
               commit, dirty, built, os.path.relpath(FIXTURE, ROOT), linked))


def report(boot, resident, kills, skipped, restarts=()):
    out = []
    if boot:
        out.append("### Boot until every port accepts (median of %d runs; ratio = median / critical path)\n"
                   % ARGS.runs)
        out.append("| scenario | critical path | tool | median | ratio | min | max | over oracle | target | runs |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        oracle = {r["scenario"]: statistics.median(r["times"]) for r in boot
                  if r["tool"] == "oracle" and r["times"]}
        for r in boot:
            if not r["times"]:
                out.append("| %s | %d ms | %s | — | — | — | — | — | | %d |"
                           % (r["scenario"], r["crit"], r["tool"], r["failures"]))
                continue
            med = statistics.median(r["times"])
            ratio = med / r["crit"]
            over = ("+%.1f ms" % (med - oracle[r["scenario"]])
                    if r["scenario"] in oracle and r["tool"] != "oracle" else "")
            tgt = ""
            if r["tool"] == "gantry":
                goal = TARGETS[r["scenario"]]
                tgt = "≤ %.2f: %s" % (goal, "met" if ratio <= goal else "**missed**")
            runs = "%d" % len(r["times"])
            if r["loaded"]:
                runs += " (%d under load)" % r["loaded"]
            if r["failures"]:
                runs += ", %d failed" % r["failures"]
            out.append("| %s | %d ms | %s | %.1f ms | **%.2f** | %.1f | %.1f | %s | %s | %s |" % (
                r["scenario"], r["crit"], r["tool"], med, ratio, min(r["times"]), max(r["times"]), over, tgt,
                runs))
        g = [r for r in boot if r["tool"] == "gantry" and r["go"]]
        if g:
            out.append("\ngantry's own view (its `--json` events, whole ms): GO after "
                       + ", ".join("%s %.0f ms" % (r["scenario"], statistics.median(r["go"])) for r in g)
                       + " (medians, counted from its start, not from the launch); starting → ready of one "
                       "service minus the 50 ms delay, median: "
                       + ", ".join("%s %.1f ms" % (r["scenario"], statistics.median(r["hops"])) for r in g if r["hops"])
                       + ".")
        discarded = sum(r["discarded"] for r in boot)
        if discarded:
            out.append("\n%d run(s) that started while other jobs kept the CPUs more than %.0f%% busy were "
                       "repeated and left out." % (discarded, 100 * ARGS.quiet_busy))
    if resident:
        out.append("\n### 100 supervised services: the supervisor's own memory and CPU\n")
        out.append("| tool | processes | RSS (sum) | PSS (sum) | per process RSS / PSS | CPU, %.0f s steady state | boot of 100 | target |"
                   % ARGS.cpu_window)
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in resident:
            if "error" in r:
                out.append("| %s | — | — | — | — | — | — | %s |" % (r["tool"], r["error"]))
                continue
            each = ", ".join("%.1f / %.1f" % (e["VmRSS"], e["Pss"]) for e in r["each"][:3])
            if len(r["each"]) > 3:
                each = "%d processes, largest %.1f / %.1f MB" % (
                    len(r["each"]), max(e["VmRSS"] for e in r["each"]),
                    max(e["Pss"] for e in r["each"]))
            else:
                each += " MB"
            tgt = ""
            if r["tool"] == "gantry":
                tgt = "≤ 12 MB: RSS %s, PSS %s; CPU ≤ 2%%: %s" % (
                    "met" if r["rss_mb"] <= 12 else "**missed**", "met" if r["pss_mb"] <= 12 else "**missed**",
                    "met" if r["cpu_pct"] <= 2 else "**missed**")
            out.append("| %s | %d | %.1f MB | %.1f MB | %s | %.2f%% of a core (ticks: %.1f%%) | %.0f ms | %s |" % (
                r["tool"], r["procs"], r["rss_mb"], r["pss_mb"], each, r["cpu_pct"], r["cpu_pct_ticks"],
                r["boot_ms"], tgt))
        out.append("\ngantry's processes are the stub parent and the PID-1 init of its PID namespace; "
                   "per process: stub first. supervisord is one Python process; s6 is s6-svscan plus "
                   "one s6-supervise per service; runit is runsvdir plus one runsv per service. "
                   "Only gantry probes the services (tcp liveness every 1 s).")
    if kills:
        out.append("\n### SIGKILL a running service until its port accepts again (%d services, one kill each)\n"
                   % ARGS.kills)
        out.append("| tool | kills | median | min | p90 | max | target | errors |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in kills:
            if "error" in r or not r.get("lat"):
                out.append("| %s | 0 | — | — | — | — | | %s |" % (r["tool"], r.get("error") or "; ".join(r["errors"])))
                continue
            lat = sorted(r["lat"])
            p90 = lat[min(len(lat) - 1, int(round(0.9 * (len(lat) - 1))))]
            tgt = ""
            if r["tool"] == "gantry":
                tgt = "≤ 10 ms: %s" % ("met" if statistics.median(lat) <= 10 else "**missed**")
            out.append("| %s | %d | %.2f ms | %.2f | %.2f | %.2f | %s | %s |" % (
                r["tool"], len(lat), statistics.median(lat), lat[0], p90, lat[-1], tgt,
                "; ".join(r["errors"]) if r["errors"] else ""))
    if restarts:
        out.append("\n### One service SIGKILLed %d times, %.0f s apart: each restart until its port accepts again\n"
                   % (ARGS.restart_kills, ARGS.restart_gap))
        out.append("| tool | %s | max | target | errors |" % " | ".join("kill %d" % (i + 1) for i in range(ARGS.restart_kills)))
        out.append("| --- |%s --- | --- | --- |" % (" --- |" * ARGS.restart_kills))
        for r in restarts:
            if "error" in r:
                out.append("| %s |%s — | | %s |" % (r["tool"], " — |" * ARGS.restart_kills, r["error"]))
                continue
            cells = ["—" if x is None else "%.2f ms" % x for x in r["lat"]]
            cells += ["—"] * (ARGS.restart_kills - len(cells))
            got = [x for x in r["lat"] if x is not None]
            worst = max(got) if got else None
            tgt = ""
            if r["tool"].startswith("gantry"):
                every = len(got) == ARGS.restart_kills and worst <= 10
                tgt = "each ≤ 10 ms: %s" % ("met" if every else "**missed**")
            out.append("| %s | %s | %s | %s | %s |" % (
                r["tool"], " | ".join(cells), "—" if worst is None else "%.2f ms" % worst, tgt,
                "; ".join(r["errors"])))
    if skipped:
        out.append("\nNot measured: " + "; ".join("%s (%s)" % kv for kv in skipped.items()) + ".")
    return "\n".join(out)


def build_static_fixture():
    """Builds the fixture with glibc linked in (`+crt-static`). Its start then skips the
    dynamic loader, so a fixture that starts 50 listeners at once costs the machine less;
    every tool runs the same binary. A separate target dir keeps these flags away from
    the normal build."""
    env = dict(os.environ, RUSTFLAGS="-C target-feature=+crt-static")
    cmd = ["cargo", "build", "--release", "-p", "gantry-fixture",
           "--target", "x86_64-unknown-linux-gnu", "--target-dir", STATIC_DIR]
    log("building the static fixture: RUSTFLAGS='%s' %s" % (env["RUSTFLAGS"], " ".join(cmd)))
    if subprocess.call(cmd, cwd=ROOT, env=env) != 0:
        sys.exit("building the static fixture failed")


def main():
    global ARGS, GANTRY, FIXTURE, BASELINE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tools", default=",".join(ALL_TOOLS), help="comma-separated (default: all)")
    ap.add_argument("--scenarios", default=",".join(ALL_SCENARIOS), help="comma-separated (default: all)")
    ap.add_argument("--runs", type=int, default=10, help="timed boots per scenario and tool (default 10)")
    ap.add_argument("--kills", type=int, default=20, help="services (one kill each) in `kill` (default 20)")
    ap.add_argument("--port-base", type=int, default=21000,
                    help="first port (default 21000; stay below the ephemeral range)")
    ap.add_argument("--floor-inline", action="store_true",
                    help="run the floor launcher inside this script (no observer while it spawns; the method before 2026-12-07)")
    ap.add_argument("--poll", type=float, default=0.0002, help="seconds between connects (default 0.0002)")
    ap.add_argument("--boot-limit", type=float, default=30.0, help="give a boot up after this many seconds")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after a boot before mem/cpu/kill")
    ap.add_argument("--cpu-window", type=float, default=20.0, help="seconds of CPU accounting (default 20)")
    ap.add_argument("--kill-gap", type=float, default=0.2, help="seconds between two kills")
    ap.add_argument("--restart-kills", type=int, default=5, help="kills of the one service in `restart` (default 5)")
    ap.add_argument("--restart-gap", type=float, default=3.0,
                    help="seconds from one kill to the next in `restart`, and before the first (default 3)")
    ap.add_argument("--quiet-busy", type=float, default=0.15,
                    help="before each run wait until the CPUs are at most this busy (default 0.15)")
    ap.add_argument("--quiet-wait", type=float, default=30.0, help="... but wait at most this long (s)")
    ap.add_argument("--tmpdir", help="where the work dirs go (default $TMPDIR or /tmp); e.g. /dev/shm "
                    "takes the disk out of the picture")
    ap.add_argument("--cold", action="store_true",
                    help="also time gantry with its state dir deleted before every run (a first boot)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (configs, logs, gantry.out)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw figures here")
    ap.add_argument("--gantry-bin", default=GANTRY, help="gantry binary (default target/release/gantry)")
    ap.add_argument("--baseline-bin", help="a second gantry binary, run as the tool gantry-base "
                    "(add it to --tools) right after gantry in every scenario: old vs new side by side")
    ap.add_argument("--gantry-keys", default="",
                    help="TOML lines added to every gantry service, e.g. 'healthy_after = \"10s\"' "
                    "(the restart backoff before issue 14: it reset only after 10 s of uptime)")
    ap.add_argument("--fixture-bin", default=FIXTURE,
                    help="fixture binary (default target/release/gantry-fixture)")
    ap.add_argument("--static-fixture", action="store_true",
                    help="build the fixture statically linked (target/static) and use it for every tool")
    ARGS = args = ap.parse_args()
    if args.static_fixture:
        build_static_fixture()
        args.fixture_bin = STATIC_FIXTURE
    GANTRY, FIXTURE = os.path.abspath(args.gantry_bin), os.path.abspath(args.fixture_bin)
    BASELINE = os.path.abspath(args.baseline_bin) if args.baseline_bin else None
    args.runs = max(1, min(args.runs, 1000))
    args.kills = max(1, min(args.kills, 200))
    args.restart_kills = max(1, min(args.restart_kills, 50))
    args.restart_gap = max(0.1, min(args.restart_gap, 60.0))
    args.cpu_window = max(1.0, min(args.cpu_window, 600.0))
    if args.port_base < 1024 or args.port_base + 200 >= 32768:
        sys.exit("--port-base must be in 1024..32567 (below the ephemeral range)")

    tools, skipped = [], {}
    for name in args.tools.split(","):
        t = TOOLS.get(name)
        if t is None:
            sys.exit("unknown tool %s (known: %s)" % (name, ", ".join(ALL_TOOLS)))
        why = t.available()
        if why:
            skipped[name] = why
            log("skipping %s: %s" % (name, why))
        else:
            tools.append(t)
    if tools and not os.access(FIXTURE, os.X_OK):
        sys.exit("%s missing: cargo build --release -p gantry-cli -p gantry-fixture" % FIXTURE)
    scenarios = args.scenarios.split(",")
    for s in scenarios:
        if s not in ALL_SCENARIOS:
            sys.exit("unknown scenario %s (known: %s)" % (s, ", ".join(ALL_SCENARIOS)))

    where = machine()  # before the runs: the commit checked out when they started
    boot, resident, kills, restarts = [], [], [], []
    try:
        for sc in [s for s in BOOT_SCENARIOS if s in scenarios]:
            for t in tools:
                log("%s / %s" % (sc, t.name))
                boot.append(bench_boot(t, sc))
                if t.name == "gantry" and args.cold:
                    log("%s / gantry, cold state dir" % sc)
                    boot.append(bench_boot(t, sc, cold=True))
        if "mem" in scenarios or "cpu" in scenarios:
            for t in tools:
                if t.name in RESIDENT_TOOLS:
                    log("mem+cpu / %s" % t.name)
                    resident.append(bench_resident(t))
        if "kill" in scenarios:
            for t in tools:
                if t.restarts:
                    log("kill / %s" % t.name)
                    kills.append(bench_kill(t))
        if "restart" in scenarios:
            for t in tools:
                if t.restarts:
                    log("restart / %s" % t.name)
                    restarts.append(bench_restart(t))
    finally:
        cleanup_strays()
        cleanup_works()
    print("Machine: " + where + "\n")
    print(report(boot, resident, kills, skipped, restarts))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": where, "boot": boot, "resident": resident, "kills": kills, "restarts": restarts,
                       "skipped": skipped}, f, indent=1)


if __name__ == "__main__":
    main()

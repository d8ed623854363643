#!/usr/bin/env python3
"""Idle-connection attack on gantry's API: 3 unprivileged clients × 7,000 idle connections.

Target (issue 13): no healthy service restarted, /health/ready p99 <= 10 ms from another
client during the attack, gantry's descriptors in use stay below its limit.

python3, standard library only, loopback only, bounded in time (about --hold + 15 s, plus
--wait-idle at most):

    python3 bench/conns/run.py                       # builds release, 3 x 7000 for 20 s
    python3 bench/conns/run.py --wait-idle 600       # first wait for a quiet machine
    python3 bench/conns/run.py --client new          # the health client opens a connection per request
    python3 bench/conns/run.py --reconnect           # attackers reopen what gantry closes
    python3 bench/conns/run.py --no-build --attackers 3 --conns 7000 --hold 20 --rate 200

It builds `cargo build -q --release -p gantry-cli -p gantry-fixture` (into $CARGO_TARGET_DIR,
else target/), starts `gantry up` on 5 fixture services (http readiness for s0, s2, s4,
tcp readiness for s1, s3; an http liveness probe every 1 s on each) and waits for GO.

Then, with a baseline of --baseline seconds first:

- **attackers**: --attackers processes, each raising its own RLIMIT_NOFILE (soft, up to the
  hard limit) and opening --conns non-blocking TCP connections to the API port, sending
  nothing and holding them --hold seconds. Attacker k connects from 127.0.0.(k+2), so the
  three do not share one source address's ephemeral ports (nor the health client's). When
  this script runs as root they run as `nobody:nogroup` with no supplementary groups
  (`setpriv --reuid --regid --clear-groups` when installed, else `os.setuid` in the forked
  child); the output says which. With --reconnect an attacker reopens, at most 2,000 a
  second, every connection gantry closed, so the pressure lasts the whole hold.
- **health client** (this process): GET /health/ready at --rate requests/s, open loop
  (each request is due at its scheduled time; latency counts from that time, so a stalled
  answer delays the ones behind it too). `--client keepalive` (default) sends them over 4
  keep-alive connections opened before the attack (a connection gantry closes is reopened,
  and that request pays the connect); `--client new` opens a new connection per request
  (`Connection: close`). A request that gets no complete answer within 2 s, a closed or
  refused connection, or a status other than 200 is a failure.
- **descriptors**: every 100 ms, the entries of /proc/PID/fd of gantry's init (the child
  named `gantry` of the `gantry up` stub: gantry is PID 1 of its own PID namespace) against
  "Max open files" in /proc/PID/limits; gantry's CPU time (utime + stime) over the attack.
- **restarts**: `GET /api/v1/status` before the attack and --settle seconds after the
  attackers have gone; every service's `restarts` must not have grown, and each must be
  ready again. gantry's own output is searched for "Too many open files".

- **the machine**: its CPU busy share over each phase (/proc/stat) and the part of it that
  is neither this script's process tree (client, attackers, gantry, services) nor interrupt
  work (irq, softirq, ksoftirqd), i.e. other people's work: with more than 10 % of that, a
  note says the latencies are not gantry's alone. The attack's latencies are also given
  second by second.

Prints JSON, a Markdown table and the verdict against the targets; asserts nothing.
"""

import argparse
import errno
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICES = 5
POOL = 4
REQUEST_TIMEOUT = 2.0
READY_REQUEST = b"GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
READY_REQUEST_CLOSE = b"GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"

# One attacker process. Runs as `python3 -c ATTACKER SRC_IP HOST PORT CONNS HOLD RECONNECT`,
# prints one JSON line when its connections are opened and one when it leaves.
ATTACKER = r"""
import errno, json, os, resource, select, socket, sys, time
src, host, port, n, hold, reconnect = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6] == "1"
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 64
if hard != resource.RLIM_INFINITY:
    want = min(want, hard)
if soft != resource.RLIM_INFINITY and soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
poll = select.poll()
socks = {}
stats = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "nofile": limit,
         "opened": 0, "open_errors": {}, "closed_by_server": 0, "reopened": 0}
def open_one():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.bind((src, 0))
        e = s.connect_ex((host, port))
        if e not in (0, errno.EINPROGRESS):
            raise OSError(e, os.strerror(e))
    except OSError as e:
        s.close()
        k = errno.errorcode.get(e.errno, str(e.errno))
        stats["open_errors"][k] = stats["open_errors"].get(k, 0) + 1
        return False
    socks[s.fileno()] = s
    # POLLIN: the server closed it (EOF) or reset it; nothing is ever sent by either side.
    poll.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
    return True
start = time.monotonic()
for _ in range(n):
    if open_one():
        stats["opened"] += 1
    if time.monotonic() - start > hold:
        break
stats["open_seconds"] = round(time.monotonic() - start, 3)
print(json.dumps({"event": "opened", **stats}), flush=True)
end = start + hold
owed = 0
budget_at = time.monotonic()
while True:
    now = time.monotonic()
    if now >= end:
        break
    for fd, _ev in poll.poll(min(100, max(1, int((end - now) * 1000)))):
        s = socks.pop(fd, None)
        if s is None:
            continue
        poll.unregister(fd)
        s.close()
        stats["closed_by_server"] += 1
        owed += 1
    if reconnect and owed:
        # At most 2,000 reopenings a second, so the attacker does not just burn a core.
        now = time.monotonic()
        allowance = int((now - budget_at) * 2000)
        if allowance > 0:
            budget_at = now
            for _ in range(min(owed, allowance)):
                if open_one():
                    stats["reopened"] += 1
                    owed -= 1
                else:
                    break
stats["open_at_end"] = len(socks)
print(json.dumps({"event": "done", **stats}), flush=True)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(args):
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    if not args.no_build:
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "gantry-cli", "-p", "gantry-fixture"],
                       cwd=ROOT, check=True)
    bins = os.path.join(target, "release", "gantry"), os.path.join(target, "release", "gantry-fixture")
    for b in bins:
        if not os.access(b, os.X_OK):
            sys.exit("%s missing: cargo build --release -p gantry-cli -p gantry-fixture" % b)
    return bins


def http_get(addr, path, timeout=5.0):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


def status(addr):
    code, body = http_get(addr, "/api/v1/status")
    if code != 200:
        raise OSError("GET /api/v1/status answered %d" % code)
    return {s["name"]: s for s in json.loads(body)["services"]}


def init_pid(stub):
    """gantry's init: the child named gantry of the stub (`gantry up` forks into a PID namespace)."""
    try:
        with open("/proc/%d/task/%d/children" % (stub, stub)) as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return None
    for c in children:
        try:
            with open("/proc/%d/comm" % c) as f:
                if f.read().strip() == "gantry":
                    return c
        except OSError:
            continue
    return None


def fd_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return 0


def fds_in_use(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def interrupt_ticks():
    """Jiffies of interrupt work no process of ours is charged for: the irq and softirq
    columns of /proc/stat plus the ksoftirqd threads (the loopback traffic of an attack)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = v[5] + v[6]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                head, tail = f.read().rsplit(")", 1)
        except OSError:
            continue
        if "(ksoftirqd/" in head:
            fields = tail.split()
            total += int(fields[11]) + int(fields[12])
    return total


def tree_ticks(pid, reaped=True):
    """utime + stime jiffies of pid and all its descendants (every thread; zombies too), and
    of the children pid has already reaped (cutime + cstime: the attackers, once polled)."""
    total = 0
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
        if reaped:
            total += int(fields[13]) + int(fields[14])
        children = []
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                children += [int(c) for c in f.read().split()]
    except OSError:
        return total
    for c in children:
        total += tree_ticks(c, reaped=False)
    return total


def response_complete(buf):
    """(status, bytes consumed) once `buf` holds a whole response with Content-Length, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    if len(buf) < end + 4 + length:
        return None
    return int(head.split(b" ", 2)[1]), end + 4 + length


class Conn:
    """One client connection of the health client, driven by the selector."""

    def __init__(self, sel, addr, keepalive):
        self.sel, self.addr, self.keepalive = sel, addr, keepalive
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        e = self.sock.connect_ex(addr)
        if e not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise OSError(e, os.strerror(e))
        self.connected = False
        self.buf = b""
        self.out = b""
        self.due = None  # the scheduled time of the request in flight
        self.broken = None  # why sending failed, if it did
        self.sel.register(self.sock, selectors.EVENT_WRITE, self)

    def send(self, due):
        self.due = due
        self.out = READY_REQUEST if self.keepalive else READY_REQUEST_CLOSE
        if self.connected:
            self.flush()

    def flush(self):
        try:
            n = self.sock.send(self.out)
        except BlockingIOError:
            n = 0
        except OSError as e:
            self.broken = "send " + errno.errorcode.get(e.errno, str(e.errno))
            return
        self.out = self.out[n:]
        self.sel.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0), self)

    def on_event(self, mask):
        """Returns ("ok"|"fail", status or reason) when the request in flight ended, else None."""
        if not self.connected and mask & selectors.EVENT_WRITE:
            e = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e:
                return ("fail", errno.errorcode.get(e, str(e)))
            self.connected = True
            if self.out:
                self.flush()
            else:
                self.sel.modify(self.sock, selectors.EVENT_READ, self)
            return ("fail", self.broken) if self.broken else None
        if mask & selectors.EVENT_WRITE and self.out:
            self.flush()
            if self.broken:
                return ("fail", self.broken)
        if mask & selectors.EVENT_READ:
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                return None
            except OSError:
                return ("fail", "reset")
            if not chunk:
                return ("fail", "closed without an answer")
            self.buf += chunk
            done = response_complete(self.buf)
            if done:
                code, used = done
                self.buf = self.buf[used:]
                return ("ok", code)
        return None

    def close(self):
        try:
            self.sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()


def measure(addr, mode, rate, seconds, pid, should_stop=None):
    """Open-loop /health/ready client for `seconds`; samples gantry's descriptors meanwhile."""
    sel = selectors.DefaultSelector()
    keepalive = mode == "keepalive"
    idle = []
    if keepalive:
        for _ in range(POOL):
            idle.append(Conn(sel, addr, True))
    busy = {}  # Conn -> due
    queue = []  # scheduled times not yet sent (keep-alive: all connections busy)
    lat, fails = [], {}
    reconnects = 0
    fd_samples = []
    interval = 1.0 / rate
    start = time.monotonic()
    busy0, total0 = cpu_ticks()
    ours0 = tree_ticks(os.getpid()) + interrupt_ticks()
    n = int(seconds * rate)
    k = 0
    next_sample = start

    per_second = {}  # second of the phase -> [latencies of answered requests, failures]

    def second(due):
        return per_second.setdefault(int(due - start), [[], 0])

    def fail(why, due=None):
        fails[why] = fails.get(why, 0) + 1
        if due is not None:
            second(due)[1] += 1

    def finish(conn, result, now):
        nonlocal reconnects
        kind, what = result
        due = busy.pop(conn)
        if kind == "ok" and what == 200:
            lat.append(now - due)
            second(due)[0].append(now - due)
        elif kind == "ok":
            fail("HTTP %d" % what, due)
        else:
            fail(what, due)
        if keepalive and kind == "ok":
            idle.append(conn)
        else:
            conn.close()
            if keepalive:
                try:
                    idle.append(Conn(sel, addr, True))
                    reconnects += 1
                except OSError as e:
                    fail("reconnect " + errno.errorcode.get(e.errno, str(e.errno)))

    while k < n or busy or queue:
        now = time.monotonic()
        if should_stop and should_stop():
            break
        while k < n and start + k * interval <= now:
            queue.append(start + k * interval)
            k += 1
        while queue and (idle or not keepalive):
            due = queue.pop(0)
            if keepalive:
                c = idle.pop(0)
            else:
                try:
                    c = Conn(sel, addr, False)
                except OSError as e:
                    fail("connect " + errno.errorcode.get(e.errno, str(e.errno)), due)
                    continue
            busy[c] = due
            c.send(due)
            if c.broken:
                finish(c, ("fail", c.broken), time.monotonic())
        if now >= next_sample:
            fd_samples.append(fds_in_use(pid))
            next_sample += 0.1
        for c, due in list(busy.items()):
            if now - due > REQUEST_TIMEOUT:
                finish(c, ("fail", "no answer in %.0f s" % REQUEST_TIMEOUT), now)
        wake = min(next_sample, start + k * interval) if k < n else next_sample
        # The schedule is kept to ~0.1 ms without spinning a core: with nothing in flight the
        # client sleeps (clock_nanosleep, microseconds) until just before the next send; with
        # answers awaited it waits in epoll, whose timeout is whole milliseconds, so it stops
        # 1.5 ms early and polls without blocking for the rest.
        left = wake - now
        if busy:
            timeout = 0.0 if left < 0.0015 else min(left - 0.0015, 0.05)
        else:
            if left > 0.0002:
                time.sleep(min(left - 0.0001, 0.05))
            timeout = 0.0
        for key, mask in sel.select(timeout):
            c = key.data
            if c not in busy:
                # An idle keep-alive connection: only a close can arrive; reopen it.
                if c.connected and mask & selectors.EVENT_READ:
                    try:
                        gone = not c.sock.recv(65536)
                    except OSError:
                        gone = True
                    if gone and c in idle:
                        idle.remove(c)
                        c.close()
                        idle.append(Conn(sel, addr, True))
                        reconnects += 1
                elif mask & selectors.EVENT_WRITE and not c.connected:
                    c.on_event(mask)
                continue
            r = c.on_event(mask)
            if r:
                finish(c, r, time.monotonic())
        if time.monotonic() - start > seconds + 2 * REQUEST_TIMEOUT + 1:
            break
    for c in list(busy) + idle:
        c.close()
    sel.close()
    busy1, total1 = cpu_ticks()
    ours1 = tree_ticks(os.getpid()) + interrupt_ticks()
    ok = len(lat)
    total = ok + sum(fails.values())
    # Percentiles over every request, a failed one counted as infinitely slow.
    lat = sorted(lat) + [float("inf")] * (total - ok)

    def q(p):
        return round(lat[min(total - 1, int(p * total))] * 1000, 3) if total else None

    return {
        "requests": total, "ok": ok, "success_ratio": round(ok / total, 4) if total else 0.0,
        "failures": fails, "reconnects": reconnects,
        "p50_ms": q(0.50), "p90_ms": q(0.90), "p99_ms": q(0.99),
        "max_ok_ms": round(lat[ok - 1] * 1000, 3) if ok else None,
        "fds_max": max(fd_samples) if fd_samples else -1,
        "fds_samples": len(fd_samples),
        # Second by second: [second, answered, failed, p99 ms of the answered, max ms].
        "by_second": [[sec, len(l), f, round(sorted(l)[int(0.99 * len(l))] * 1000, 2) if l else None,
                       round(max(l) * 1000, 2) if l else None]
                      for sec, (l, f) in sorted(per_second.items())],
        # Everything on the machine, this client and the attackers included.
        "machine_cpu_busy_pct": round(100 * (busy1 - busy0) / max(1, total1 - total0), 1),
        # The machine's busy time minus that of this script's process tree (client, attackers,
        # gantry and its services) and of interrupt work (the attack's loopback traffic):
        # other people's work. Above ~10 % the latency figures are the machine's, not gantry's.
        "other_cpu_busy_pct": round(100 * max(0, (busy1 - busy0) - (ours1 - ours0)) / max(1, total1 - total0), 1),
    }


def attacker_launcher():
    """(argv prefix, Popen kwargs, description) that run an attacker unprivileged when root."""
    if os.geteuid() != 0:
        return [], {}, "as uid %d (not root: already unprivileged)" % os.geteuid()
    setpriv = shutil.which("setpriv")
    if setpriv:
        return ([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"], {},
                "as nobody:nogroup via setpriv --reuid=nobody --regid=nogroup --clear-groups")
    return [], {"user": 65534, "group": 65534, "extra_groups": []}, \
        "as uid 65534 via os.setuid in the forked child (no setpriv)"


def fail_with_output(why, out_path):
    try:
        with open(out_path, errors="replace") as f:
            tail = f.readlines()[-20:]
    except OSError:
        tail = []
    sys.exit("%s; the last lines of its output:\n%s" % (why, "".join(tail)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attackers", type=int, default=3)
    ap.add_argument("--conns", type=int, default=7000, help="idle connections per attacker")
    ap.add_argument("--hold", type=float, default=20.0, help="seconds the attackers hold them")
    ap.add_argument("--rate", type=int, default=200, help="/health/ready requests per second")
    ap.add_argument("--client", choices=("keepalive", "new"), default="keepalive")
    ap.add_argument("--reconnect", action="store_true", help="attackers reopen what gantry closes")
    ap.add_argument("--baseline", type=float, default=3.0, help="seconds measured before the attack")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after the attack before restarts are read")
    ap.add_argument("--wait-idle", type=float, default=0.0,
                    help="wait up to this many seconds for the machine to be under 15%% busy before starting")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    args.attackers = max(1, min(args.attackers, 8))
    args.conns = max(1, min(args.conns, 20000))
    args.hold = max(1.0, min(args.hold, 120.0))
    args.rate = max(1, min(args.rate, 2000))
    gantry, fixture = build(args)
    idle_deadline = time.monotonic() + min(max(args.wait_idle, 0.0), 3600.0)
    while True:
        b0, t0 = cpu_ticks()
        time.sleep(1.0)
        b1, t1 = cpu_ticks()
        busy_before = 100.0 * (b1 - b0) / max(1, t1 - t0)
        if busy_before < 15.0 or time.monotonic() >= idle_deadline:
            break

    work = tempfile.mkdtemp(prefix="gantry-bench-conns-")
    os.chmod(work, 0o700)
    lines = ['[settings]\napi = "127.0.0.1:0"\n']
    for i in range(SERVICES):
        port = free_port()
        ready = ('{ http = "http://127.0.0.1:%d/health" }' % port) if i % 2 == 0 else ('{ tcp = "127.0.0.1:%d" }' % port)
        lines.append('[services.s%d]\ncommand = ["%s", "--name", "s%d", "--http", "%d"]\n'
                     'readiness = %s\nliveness = { http = "http://127.0.0.1:%d/health", period = "1s" }\n'
                     % (i, fixture, i, port, ready, port))
    with open(os.path.join(work, "gantry.toml"), "w") as f:
        f.write("\n".join(lines))
    out_path = os.path.join(work, "gantry.out")
    out = open(out_path, "w")
    proc = subprocess.Popen([gantry, "up"], cwd=work, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    attackers = []
    result = {"machine_cpu_busy_pct_before": round(busy_before, 1),
              "attackers": args.attackers, "conns_each": args.conns, "hold_s": args.hold,
              "rate": args.rate, "client": args.client, "reconnect": args.reconnect}
    try:
        addr_file = os.path.join(work, ".gantry", "api.addr")
        deadline = time.monotonic() + 30
        addr = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                fail_with_output("gantry up exited with %s" % proc.returncode, out_path)
            try:
                addr = open(addr_file).read().strip()
                if addr and http_get(addr, "/health/ready")[0] == 200:
                    break
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.05)
        else:
            fail_with_output("gantry did not become ready within 30 s", out_path)
        pid = init_pid(proc.pid)
        if pid is None:
            sys.exit("cannot find gantry's init process under pid %d" % proc.pid)
        host, port = addr.rsplit(":", 1)
        target = (host, int(port))
        limit = fd_limit(pid)
        before = status(addr)
        result.update({"gantry_init_pid": pid, "fd_limit": limit, "fds_before_attack": fds_in_use(pid)})

        result["baseline"] = measure(target, args.client, args.rate, args.baseline, pid)

        prefix, kwargs, how = attacker_launcher()
        result["attackers_run"] = how
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        for k in range(args.attackers):
            argv = prefix + [sys.executable, "-c", ATTACKER, "127.0.0.%d" % (k + 2), host, port,
                             str(args.conns), str(args.hold), "1" if args.reconnect else "0"]
            attackers.append(subprocess.Popen(argv, cwd="/", stdout=subprocess.PIPE, text=True, **kwargs))
        # Measure while any attacker is still there (bounded by --hold plus its own opening time).
        result["attack"] = measure(target, args.client, args.rate, args.hold + 30, pid,
                                   should_stop=lambda: all(a.poll() is not None for a in attackers))
        result["attack_seconds"] = round(time.monotonic() - t0, 2)
        result["gantry_cpu_during_attack_s"] = round(cpu_seconds(pid) - cpu0, 2)
        reports = []
        for a in attackers:
            try:
                text, _ = a.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                a.kill()
                text, _ = a.communicate()
            reports.append([json.loads(l) for l in text.splitlines() if l.startswith("{")])
        opened = [r[0] for r in reports if r]
        done = [r[-1] for r in reports if r and r[-1]["event"] == "done"]
        result["attacker_uids"] = sorted({r["uid"] for r in opened})
        result["attacker_nofile"] = sorted({r["nofile"] for r in opened})
        result["attack_opened"] = sum(r["opened"] for r in opened)
        result["attack_open_seconds_max"] = max((r["open_seconds"] for r in opened), default=None)
        result["attack_open_errors"] = {}
        for r in done or opened:
            for e, c in r["open_errors"].items():
                result["attack_open_errors"][e] = result["attack_open_errors"].get(e, 0) + c
        result["attack_closed_by_gantry"] = sum(r["closed_by_server"] for r in done)
        result["attack_reopened"] = sum(r["reopened"] for r in done)
        result["attack_open_at_end"] = sum(r["open_at_end"] for r in done)

        # Liveness probes run every second: give a failure time to show as a restart.
        time.sleep(args.settle)
        after = status(addr)
        restarts = {n: after[n]["restarts"] - before[n]["restarts"] for n in before}
        result["restarts_during_attack"] = restarts
        result["not_ready_after"] = sorted(n for n, s in after.items() if not s["ready"])
        result["fds_after_attack"] = fds_in_use(pid)
    finally:
        for a in attackers:
            if a.poll() is None:
                a.kill()
                a.wait()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.close()
        emfile = 0
        try:
            with open(out_path, errors="replace") as f:
                emfile = sum(1 for l in f if "Too many open files" in l or "EMFILE" in l)
        except OSError:
            pass
        result["gantry_lines_too_many_open_files"] = emfile
        shutil.rmtree(work, ignore_errors=True)

    print(json.dumps(result, indent=2))
    base, att = result["baseline"], result["attack"]
    print("\nattackers: %d × %d idle connections for %.0f s%s, run %s; health client: %s, %d req/s open loop; "
          "machine %.0f %% busy before the start"
          % (args.attackers, args.conns, args.hold, " (reopening what gantry closes)" if args.reconnect else "",
             result["attackers_run"], "4 keep-alive connections" if args.client == "keepalive"
             else "a new connection per request", args.rate, result["machine_cpu_busy_pct_before"]))
    print("\n| phase | requests | answered 200 | p50 | p99 | max (answered) | gantry fds max / limit | machine CPU busy (others) |")
    print("|---|---|---|---|---|---|---|---|")

    def fmt(v):
        return "–" if v is None else ("failed" if v == float("inf") else "%.3f ms" % v)

    for name, m in (("baseline", base), ("attack", att)):
        print("| %s | %d | %.2f %% | %s | %s | %s | %d / %d | %.0f %% (%.0f %%) |" % (
            name, m["requests"], 100 * m["success_ratio"], fmt(m["p50_ms"]), fmt(m["p99_ms"]),
            fmt(m["max_ok_ms"]), m["fds_max"], result["fd_limit"], m["machine_cpu_busy_pct"],
            m["other_cpu_busy_pct"]))
    restarted = sum(result["restarts_during_attack"].values())
    p99 = att["p99_ms"]
    print("\nattack: %d connections opened (errors %s), %d closed by gantry, %d reopened, %d open at the end; "
          "gantry CPU %.2f s over %.1f s; 'Too many open files' lines in gantry's output: %d"
          % (result["attack_opened"], result["attack_open_errors"] or "none", result["attack_closed_by_gantry"],
             result["attack_reopened"], result["attack_open_at_end"], result["gantry_cpu_during_attack_s"],
             result["attack_seconds"], result["gantry_lines_too_many_open_files"]))
    print("attack second by second (second: answered/failed, p99 ms of the answered, max ms): " + "; ".join(
        "%d: %d/%d %s %s" % tuple(row) for row in att["by_second"]))
    verdicts = [
        ("no healthy service restarted", restarted == 0 and not result["not_ready_after"],
         "%d restarts, not ready after: %s" % (restarted, result["not_ready_after"] or "none")),
        ("/health/ready p99 <= 10 ms during the attack", p99 is not None and p99 <= 10.0,
         "p99 %s, answered %.2f %%%s" % (fmt(p99), 100 * att["success_ratio"],
                                             ", failures %s" % att["failures"] if att["failures"] else "")),
        ("descriptors stay below the limit", 0 <= att["fds_max"] < result["fd_limit"],
         "%d of %d at most" % (att["fds_max"], result["fd_limit"])),
    ]
    if max(base["other_cpu_busy_pct"], att["other_cpu_busy_pct"]) > 10:
        print("\nNOTE: other work kept the machine > 10 % busy during a phase: the latencies are "
              "not gantry's alone; run again on a quiet machine (--wait-idle 600).")
    print("\n| target | verdict | measured |")
    print("|---|---|---|")
    for name, ok, what in verdicts:
        print("| %s | %s | %s |" % (name, "met" if ok else "**missed**", what))


if __name__ == "__main__":
    main()

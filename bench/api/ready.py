#!/usr/bin/env python3
"""/health/ready latency under load: gantry supervising 50 services, 1,000 requests/s on loopback.

Starts `gantry up` (release build) on 50 fixture services with tcp readiness and liveness
probes, waits for GO, then sends GET /health/ready at a fixed 1,000 requests/s for
DURATION seconds over keep-alive connections (open loop: each request is sent at its
scheduled time on the next free connection, so a slow answer cannot hide behind a paused
sender), and prints p50/p90/p99/p99.9/max latency. Loopback only; bounded in time.

usage: bench/api/ready.py [--duration 10] [--rate 1000] [--services 50]
"""
import argparse, os, socket, subprocess, sys, tempfile, time, json, signal

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def build():
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "gantry-cli", "-p", "gantry-fixture"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target/release/gantry"), os.path.join(ROOT, "target/release/gantry-fixture")


def request(sock, buf):
    sock.sendall(b"GET /health/ready HTTP/1.1\r\nHost: gantry\r\n\r\n")
    # Read one response: headers, then Content-Length bytes.
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    status = int(head.split(b" ", 2)[1])
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        rest += sock.recv(65536)
    return status, rest[length:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--services", type=int, default=50)
    args = ap.parse_args()
    gantry, fixture = build()
    tmp = tempfile.mkdtemp(prefix="gantry-bench-api-")
    api = free_port()
    lines = [f'[settings]\napi = "127.0.0.1:{api}"\n']
    for i in range(args.services):
        port = free_port()
        lines.append(
            f'[services.s{i}]\ncommand = "{fixture} --name s{i} --listen {port}"\n'
            f'readiness = {{ tcp = "127.0.0.1:{port}" }}\n'
            f'liveness = {{ tcp = "127.0.0.1:{port}", period = "1s" }}\n'
        )
    with open(os.path.join(tmp, "gantry.toml"), "w") as f:
        f.write("\n".join(lines))
    proc = subprocess.Popen([gantry, "up", "--skip-preflight"], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", api), timeout=1)
                st, _ = request(s, b"")
                s.close()
                if st == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("gantry did not become ready")
            time.sleep(0.05)
        conns = [socket.create_connection(("127.0.0.1", api)) for _ in range(4)]
        for c in conns:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        bufs = [b""] * len(conns)
        interval = 1.0 / args.rate
        n = int(args.duration * args.rate)
        lat = []
        errors = 0
        start = time.perf_counter()
        for k in range(n):
            due = start + k * interval
            now = time.perf_counter()
            if due > now:
                # Busy-wait the last stretch: sleep() granularity would skew the schedule.
                while time.perf_counter() < due:
                    pass
            c = k % len(conns)
            t0 = time.perf_counter()
            st, bufs[c] = request(conns[c], bufs[c])
            t1 = time.perf_counter()
            if st != 200:
                errors += 1
            # Open loop: latency counts from the scheduled time, so queueing is included.
            lat.append(t1 - min(t0, max(due, start)))
        elapsed = time.perf_counter() - start
        lat.sort()
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
        print(json.dumps({
            "services": args.services, "requests": n, "seconds": round(elapsed, 2),
            "rate_achieved": round(n / elapsed), "non_200": errors,
            "p50_ms": round(q(0.50), 3), "p90_ms": round(q(0.90), 3), "p99_ms": round(q(0.99), 3),
            "p999_ms": round(q(0.999), 3), "max_ms": round(lat[-1] * 1000, 3),
        }))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Open-loop OFREP latency at a fixed rate: one keep-alive connection, a request every 1/RATE s
(on schedule, not after the previous answer), for SECONDS; prints p50/p99/max in ms. The client's
own time (Python, http.client) is in the figure, so it is an upper bound of gantry's.

usage: rate.py HOST:PORT PATH TOKEN [RATE=500] [SECONDS=10]
"""
import http.client, json, sys, time

host, port = sys.argv[1].rsplit(":", 1)
path, token = sys.argv[2], sys.argv[3]
rate = float(sys.argv[4]) if len(sys.argv) > 4 else 500.0
secs = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
body = json.dumps({"context": {"targetingKey": "user-42", "email": "ann@example.com", "plan": "pro"}})
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
conn = http.client.HTTPConnection(host, int(port), timeout=5)
lat, late = [], 0
start = time.perf_counter()
n = int(rate * secs)
for i in range(n):
    due = start + i / rate
    now = time.perf_counter()
    if due > now:
        time.sleep(due - now)
    else:
        late += 1
    t0 = time.perf_counter()
    conn.request("POST", path, body, headers)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"answer {r.status}")
    lat.append((time.perf_counter() - t0) * 1000)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"{path}: {n} requests at {rate:.0f}/s: p50 {q(0.5):.3f} ms, p99 {q(0.99):.3f} ms, max {lat[-1]:.3f} ms ({late} sent late)")

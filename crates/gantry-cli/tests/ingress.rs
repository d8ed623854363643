//! `gantry up` with an `[ingress]`: the proxy answers 503 until the boot is GO, forwards to
//! the ready instance, switches to write_drain through `gantry ingress mode`, and answers
//! 503 (never 502) naming the service once it is stopped.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::*;

/// One request through the ingress on 127.0.0.1:port: the status code and the whole answer.
fn request(port: u16, method: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, "connection refused".into());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return (0, "write failed".into());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

#[test]
fn the_ingress_opens_at_go_drains_writes_on_command_and_never_answers_502() {
    let (api, ing) = (free_port(), free_port());
    let toml = format!(
        r#"
[ingress]
listen = "127.0.0.1:{ing}"
# Two proxy threads (the default on 2 cores is one): connections balanced between them.
threads = 2

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "FIXTURE --name api --delay 1500 --http {api}"
upstream = "127.0.0.1:{api}"
readiness = {{ http = "http://127.0.0.1:{api}/health" }}
"#
    );
    let mut up = up("ingress", &toml, &[]);
    // Bound before the boot, closed until it is GO: 503 with Retry-After, saying why.
    let mut closed = (0, String::new());
    assert!(
        eventually(10, || {
            closed = request(ing, "GET", "/health");
            closed.0 != 0
        }),
        "the ingress never answered: {}",
        up.log()
    );
    assert_eq!(closed.0, 503, "{}", closed.1);
    assert!(
        closed.1.to_ascii_lowercase().contains("retry-after"),
        "{}",
        closed.1
    );
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    assert!(
        eventually(10, || request(ing, "GET", "/health").0 == 200),
        "no 200 through the ingress after GO: {:?}",
        request(ing, "GET", "/health")
    );
    // Writes reach the service (the fixture answers 405 to a POST) ...
    assert_eq!(request(ing, "POST", "/health").0, 405);
    // ... until write_drain: then 503 for writes, reads still pass.
    let (code, out) = gantry_in(
        &up.dir,
        &["ingress", "mode", "write_drain", "--reason", "test"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, drained) = request(ing, "POST", "/health");
    assert_eq!(code, 503, "{drained}");
    assert_eq!(request(ing, "GET", "/health").0, 200);
    let (code, status) = gantry_in(&up.dir, &["ingress", "--json"]);
    assert_eq!(code, 0, "{status}");
    let status: serde_json::Value = serde_json::from_str(&status).expect("JSON status");
    assert_eq!(status["mode"]["mode"], "write_drain", "{status}");
    assert_eq!(status["open"], true, "{status}");
    let (code, out) = gantry_in(&up.dir, &["ingress", "mode", "normal"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(request(ing, "POST", "/health").0, 405);
    // The service stopped: 503 naming it, never a 502.
    let (code, out) = gantry_in(&up.dir, &["stop", "api"]);
    assert_eq!(code, 0, "{out}");
    let mut last = (0, String::new());
    assert!(
        eventually(10, || {
            last = request(ing, "GET", "/health");
            assert_ne!(last.0, 502, "{}", last.1);
            last.0 == 503
        }),
        "{:?}",
        last
    );
    assert!(last.1.contains("api"), "{}", last.1);
    // Metrics carry the proxy's series, in a form Prometheus' own checker accepts.
    let addr = std::fs::read_to_string(up.dir.join(".gantry/api.addr")).expect("api.addr");
    let port: u16 = addr.trim().rsplit(':').next().unwrap().parse().unwrap();
    let (code, out) = request(port, "GET", "/metrics");
    assert_eq!(code, 200, "{out}");
    let metrics = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    assert!(
        metrics.contains("gantry_ingress_requests_total{"),
        "{metrics}"
    );
    promtool_accepts(metrics);
    assert_eq!(up.stop(), 0);
}

/// `promtool check metrics` (Prometheus' own checker, installed by scripts/setup) parses the
/// text and finds no problem. promtool 2.42 reads the Prometheus text format, where a counter's
/// HELP names the `_total` sample; OpenMetrics (what /metrics serves) names the family without
/// it, so "NAME_total no help text" for a family whose HELP is there is the one lint allowed.
fn promtool_accepts(metrics: &str) {
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/setup installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 1 is a parse error; 3 is lint problems only.
    assert!(
        out.status.success() || out.status.code() == Some(3),
        "promtool check metrics failed: {report}\n{metrics}"
    );
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        let family = line
            .strip_suffix(" no help text")
            .and_then(|n| n.strip_suffix("_total"));
        assert!(
            family.is_some_and(|f| metrics.contains(&format!("# HELP {f} "))),
            "promtool check metrics: {line}\n{metrics}"
        );
    }
}

/// Host pids of `gantry status --json` by service name, and whether each is ready.
fn instances(dir: &std::path::Path) -> Vec<(String, Option<u64>, bool)> {
    let (code, out) = gantry_in(dir, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    v["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["pid"].as_u64(),
                s["ready"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// GETs through the ingress from `threads` clients until `stop` is set: (answered, failures).
fn load(
    port: u16,
    threads: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<(u64, Vec<String>)>> {
    (0..threads)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u64, Vec::new());
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && std::time::Instant::now() < deadline
                {
                    let (code, answer) = request(port, "GET", "/health");
                    if code == 200 {
                        ok += 1;
                    } else if failed.len() < 5 {
                        failed.push(answer);
                    } else {
                        failed.push(String::new());
                    }
                }
                (ok, failed)
            })
        })
        .collect()
}

#[test]
fn two_replicas_behind_the_ingress_lose_no_request_to_kills_or_rolling_restarts() {
    let ing = free_port();
    let first = free_pair();
    let range = (first, first + 1);
    let toml = format!(
        r#"
[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "FIXTURE --name api-${{REPLICA}} --http ${{PORT}}"
replicas = 2
replica_ports = "{}-{}"
restart = "always"
readiness = {{ http = "http://127.0.0.1:${{PORT}}/health", period = "100ms" }}
"#,
        range.0, range.1
    );
    let mut up = up("ingress-replicas", &toml, &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    assert!(eventually(10, || request(ing, "GET", "/health").0 == 200));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = load(ing, 2, stop.clone());
    // Chaos: SIGKILL an instance three times; gantry restarts it, the ingress routes around it.
    for round in 0..3 {
        let victim = if round % 2 == 0 { "api.1" } else { "api.2" };
        // A host pid is shown once gantry has mapped it (at most 2 s after a start).
        let mut pid = 0;
        assert!(eventually(10, || {
            pid = instances(&up.dir)
                .into_iter()
                .find(|(n, _, ready)| n == victim && *ready)
                .and_then(|(_, pid, _)| pid)
                .unwrap_or(0);
            pid != 0
        }));
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        assert!(
            eventually(20, || instances(&up.dir).iter().any(|(n, p, ready)| n
                == victim
                && *ready
                && p.is_some()
                && *p != Some(pid))),
            "{victim} did not come back: {}",
            up.log()
        );
    }
    // Rolling restarts: every instance replaced, one at a time.
    for _ in 0..2 {
        let before = instances(&up.dir);
        let (code, out) = gantry_in(&up.dir, &["restart", "api"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("rolling restart"), "{out}");
        assert!(
            eventually(30, || {
                let now = instances(&up.dir);
                ["api.1", "api.2"].iter().all(|name| {
                    let old = before.iter().find(|(n, _, _)| n == name).and_then(|x| x.1);
                    now.iter()
                        .any(|(n, p, ready)| n == name && *ready && p.is_some() && *p != old)
                })
            }),
            "the rolling restart did not replace both instances: {}",
            up.log()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for c in clients {
        let (o, f) = c.join().unwrap();
        ok += o;
        failed.extend(f);
    }
    assert!(ok > 0);
    assert!(
        failed.is_empty(),
        "{} of {} requests failed; first: {:?}",
        failed.len(),
        ok + failed.len() as u64,
        failed.iter().find(|f| !f.is_empty())
    );
    assert_eq!(up.stop(), 0);
}

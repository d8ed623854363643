//! A replicated fixture behind the ingress under client load, for the rollout and blue/green
//! tests: `GET /app` (status and the answering release), load threads and what they saw.

use super::{Up, eventually, free_port, free_run, up};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One `GET /app` through the ingress: the status and the release that answered.
pub fn get_app(port: u16) -> (u16, String) {
    get_app_as(port, None)
}

/// `GET /app` with a `sid` cookie.
pub fn get_app_as(port: u16, sid: Option<&str>) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cookie = sid
        .map(|c| format!("Cookie: theme=dark; sid={c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "GET /app HTTP/1.1\r\nHost: localhost\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let version = out
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-fixture-version:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (code, version)
}

/// What the clients saw.
#[derive(Default, Debug)]
pub struct Seen {
    pub ok: u64,
    /// 500s (the new release's injected failures).
    pub injected: u64,
    /// Anything else that is not a 200: connection errors, 502, 503.
    pub other: Vec<u16>,
}

/// `n` clients sending `GET /app` in a loop until `stop`.
pub fn load(port: u16, n: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Seen>> {
    (0..n)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = Seen::default();
                while !stop.load(Ordering::Relaxed) {
                    match get_app(port).0 {
                        200 => seen.ok += 1,
                        500 => seen.injected += 1,
                        other => seen.other.push(other),
                    }
                }
                seen
            })
        })
        .collect()
}

pub fn join(clients: Vec<std::thread::JoinHandle<Seen>>) -> Seen {
    let mut all = Seen::default();
    for c in clients {
        let s = c.join().unwrap();
        all.ok += s.ok;
        all.injected += s.injected;
        all.other.extend(s.other);
    }
    all
}

/// A stack of `replicas` fixtures (VERSION=1) behind the ingress, with `rollout` appended to
/// the service; the ingress port and the instances' ports.
pub fn replicated_stack(name: &str, replicas: u16, rollout: &str) -> (Up, u16, Vec<u16>) {
    let ing = free_port();
    let base = free_run(replicas);
    let toml = format!(
        r#"
[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "FIXTURE --name api-${{REPLICA}} --http ${{PORT}}"
env = {{ VERSION = "1" }}
replicas = {replicas}
replica_ports = "{base}-{}"
restart = "always"
readiness = {{ http = "http://127.0.0.1:${{PORT}}/health", period = "100ms" }}
{rollout}
"#,
        base + replicas - 1
    );
    let mut up = up(name, &toml, &[]);
    let boot = up.wait_boot(30);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    assert!(
        eventually(10, || get_app(ing) == (200, "1".into())),
        "the stable release does not answer through the ingress: {}",
        up.log()
    );
    (up, ing, (base..base + replicas).collect())
}

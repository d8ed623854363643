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
    // Metrics carry the proxy's series.
    assert_eq!(up.stop(), 0);
}

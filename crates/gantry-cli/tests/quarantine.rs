//! Quarantine against a real `gantry up`: `gantry quarantine` freezes the service's process
//! (state `T` in /proc/PID/stat, or `frozen 1` in its quarantine group's `cgroup.events`), its
//! failing liveness probe no longer restarts it, the ingress answers 503 for its route, status
//! says quarantined with who and why; `gantry release` thaws it, its probes pass again and the
//! ingress forwards to it again; 404 / 409 cases; no token in any output.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;
use support::*;

fn stack(port: u16, ing: u16) -> String {
    format!(
        r#"
[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "web"

[services.web]
command = "FIXTURE --name web --http {port}"
upstream = "127.0.0.1:{port}"
readiness = {{ http = "http://127.0.0.1:{port}/health" }}
liveness = {{ http = "http://127.0.0.1:{port}/health", period = "200ms", timeout = "200ms", failure_threshold = 1 }}
"#
    )
}

fn status_of(dir: &std::path::Path, service: &str) -> serde_json::Value {
    let (code, out) = gantry_in(dir, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == service).cloned())
        .unwrap_or_else(|| panic!("no {service} in {out}"))
}

/// Whether host pid `pid` is frozen: stopped (`T`) or in a frozen cgroup v2 / v1 freezer group.
fn frozen(pid: u64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
    if state.as_deref() == Some("T") {
        return true;
    }
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    cgroups.lines().any(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            return false;
        };
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                .iter()
                .any(|m| {
                    std::fs::read_to_string(format!("{m}/{path}/cgroup.events"))
                        .is_ok_and(|t| t.lines().any(|l| l == "frozen 1"))
                })
        } else if controllers.split(',').any(|c| c == "freezer") {
            std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/{path}/freezer.state"))
                .is_ok_and(|t| t.trim() == "FROZEN")
        } else {
            false
        }
    })
}

/// One GET through the ingress: the status code (0 when it cannot be had).
fn through_ingress(port: u16) -> u16 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if s.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The latest probe run as `/health?verbose` shows it: (status, output).
fn last_probe(addr: &str) -> Option<(String, String)> {
    let (_, body) = http(addr, "GET", "/health?verbose", None)?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let p = &v["checks"]["web:probe"][0];
    Some((
        p["status"].as_str()?.to_string(),
        p["componentType"].as_str()?.to_string(),
    ))
}

#[test]
fn quarantine_freezes_without_restarts_and_release_thaws() {
    let (port, ing) = (free_port(), free_port());
    let mut up = up("quarantine", &stack(port, ing), &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let token = std::fs::read_to_string(up.dir.join(".gantry/api.token"))
        .unwrap()
        .trim()
        .to_string();
    let addr = api_addr_in(&up.dir);
    let web = status_of(&up.dir, "web");
    let pid = web["pid"].as_u64().expect("web has a pid");
    assert!(!frozen(pid));
    assert!(eventually(10, || through_ingress(ing) == 200));

    // A reason is required; release of a service that is not quarantined is 409; unknown 404.
    let (code, out) = gantry_in(&up.dir, &["quarantine", "web"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("--reason"), "{out}");
    let (status, body) = http(&addr, "POST", "/api/v1/services/web/release", Some(&token)).unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not quarantined"), "{body}");
    let (status, body) = http(
        &addr,
        "POST",
        "/api/v1/services/nope/quarantine",
        Some(&token),
    )
    .unwrap();
    assert_eq!(status, 404, "{body}");

    let (code, out) = gantry_in(&up.dir, &["quarantine", "web", "--reason", "heap dump"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("web quarantined ("), "{out}");
    assert!(
        eventually(10, || frozen(pid)),
        "web ({pid}) is not frozen: {out}"
    );

    // Its liveness probe fails (the process cannot answer) and nothing restarts it.
    let failed = eventually(20, || {
        last_probe(&addr).is_some_and(|(s, role)| s == "fail" && role.starts_with("liveness"))
    });
    assert!(failed, "{:?}\n{}", last_probe(&addr), up.log());
    let web = status_of(&up.dir, "web");
    assert_eq!(web["pid"].as_u64(), Some(pid), "{web}");
    assert_eq!(web["restarts"], 0, "{web}");
    assert_eq!(web["switch"], "quarantined", "{web}");
    let detail = web["switch_detail"].as_str().unwrap_or("");
    assert!(detail.starts_with("quarantined by "), "{web}");
    assert!(detail.ends_with(": heap dump"), "{web}");
    let (status, body) = http(
        &addr,
        "POST",
        "/api/v1/services/web/quarantine",
        Some(&token),
    )
    .unwrap();
    assert_eq!(status, 409, "{body}");

    // Released: running again, probes pass, still the same process, never restarted.
    let (code, out) = gantry_in(&up.dir, &["release", "web", "--reason", "done"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        eventually(10, || !frozen(pid)),
        "web ({pid}) is still frozen"
    );
    let passed = eventually(20, || {
        last_probe(&addr).is_some_and(|(s, role)| s == "pass" && role.starts_with("liveness"))
    });
    assert!(passed, "{:?}", last_probe(&addr));
    let web = status_of(&up.dir, "web");
    assert_eq!(web["pid"].as_u64(), Some(pid), "{web}");
    assert_eq!(web["restarts"], 0, "{web}");
    assert!(web["switch"].is_null(), "{web}");
    assert!(eventually(10, || through_ingress(ing) == 200));

    let (code, audit) = gantry_in(&up.dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{audit}");
    assert!(audit.contains("service.quarantine"), "{audit}");
    assert!(audit.contains("heap dump"), "{audit}");
    assert!(audit.contains("service.release"), "{audit}");
    assert_eq!(up.stop(), 0, "{}", up.log());
    assert!(
        !up.log().contains(&token),
        "the token leaked into gantry's output"
    );
    assert!(!audit.contains(&token));
}

//! A service that floods its output (`yes`): gantry's memory stays bounded, lines are dropped and counted, and commands, signals and probes still go first.

mod support;

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// GET over loopback: (status, body).
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf.split_once("\r\n\r\n")?.1.to_string()))
}

/// Resident kB of `pid` and all its descendants (gantry's stub and its namespace init).
fn rss_kb_tree(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let own: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    own + children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        // The services themselves (yes, the fixture) are not gantry's memory.
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm"))
                .is_ok_and(|comm| comm.trim() == "gantry")
        })
        .map(rss_kb_tree)
        .sum::<u64>()
}

fn dropped(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("gantry_output_dropped_lines_total{service=\"flood\"}"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_flooding_service_costs_bounded_memory_and_never_delays_commands_or_probes() {
    let calm = free_port();
    let dir = tempdir("flood");
    let toml = format!(
        r#"
[settings]
api = "127.0.0.1:0"

[services.flood]
command = ["yes", "a line of a service that writes as fast as it can"]

[services.calm]
command = "FIXTURE --name calm --listen {calm}"
readiness = {{ tcp = "127.0.0.1:{calm}" }}
liveness = {{ tcp = "127.0.0.1:{calm}", period = "200ms", failure_threshold = 2 }}
"#
    )
    .replace("FIXTURE", fixture().to_str().unwrap());
    std::fs::write(dir.join("gantry.toml"), toml).unwrap();
    let out = std::fs::File::create(dir.join("gantry.out")).unwrap();
    let mut child = Command::new(gantry())
        .arg("up")
        .current_dir(&dir)
        .stdout(Stdio::from(out))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr_file = dir.join(".gantry/api.addr");
    assert!(eventually(20, || addr_file.exists()), "no API address");
    let addr = std::fs::read_to_string(&addr_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        eventually(20, || get(&addr, "/health/ready")
            .is_some_and(|(s, _)| s == 200)),
        "the stack never became ready under the flood"
    );

    // The flood outpaces gantry: lines are dropped and counted, not queued.
    let mut metrics = String::new();
    assert!(
        eventually(30, || {
            metrics = get(&addr, "/metrics").map(|(_, b)| b).unwrap_or_default();
            dropped(&metrics) > 0
        }),
        "no dropped lines counted:\n{metrics}"
    );
    // Memory stays bounded while it goes on (the budget is 1 MiB of lines in flight; a
    // debug build's own footprint is most of this).
    let mut peak = 0;
    eventually(3, || {
        peak = peak.max(rss_kb_tree(child.id()));
        false
    });
    assert!(
        peak > 0 && peak < 192 * 1024,
        "gantry's RSS peaked at {peak} kB"
    );
    let log = std::fs::read_to_string(dir.join(".gantry/logs/flood.log")).unwrap_or_default();
    assert!(
        log.contains("line(s) dropped: flood wrote faster"),
        "no marker in the log"
    );
    // The calm service's liveness probes still pass: nothing restarted it.
    let status = get(&addr, "/api/v1/status")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    let calm = v["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "calm"))
        .expect("calm in the status")
        .clone();
    assert_eq!(calm["restarts"], 0, "{calm}");

    // A command is answered while the flood goes on.
    let stop = Command::new(gantry())
        .args(["stop", "flood"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        stop.status.success(),
        "gantry stop: {}",
        String::from_utf8_lossy(&stop.stderr)
    );
    // And a signal stops the whole stack.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut code = None;
    assert!(
        eventually(20, || {
            code = child.try_wait().unwrap().map(|s| s.code());
            code.is_some()
        }),
        "gantry did not stop on SIGTERM"
    );
    assert_eq!(code, Some(Some(0)));
}

//! Runbooks against a real `gantry up`: a manual run drains the ingress, restarts a service, waits
//! for it, runs a command and overrides a flag, each step audited as `runbook:NAME`; a failing step
//! stops the run; a dry run changes nothing; a P0 alert runs its runbook by itself exactly once.

mod support;

use std::path::Path;
use support::*;

fn through(port: u16, method: &str) -> u16 {
    http_with(&format!("127.0.0.1:{port}"), method, "/health", &[], "").map_or(0, |(s, _)| s)
}

fn stack(api: u16, ing: u16, extra: &str) -> String {
    format!(
        r#"
[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[flags.greeting]
variants = {{ hello = "hello", hi = "hi" }}
default = "hello"

[services.api]
command = "FIXTURE --name rb-api --http {api}"
upstream = "127.0.0.1:{api}"
readiness = {{ http = "http://127.0.0.1:{api}/health", period = "100ms" }}

[services.worker]
command = ["sleep", "600"]
start_grace = "100ms"
working_dir = "."
{extra}
"#
    )
}

fn audit(dir: &Path) -> Vec<serde_json::Value> {
    let (code, out) = gantry_in(dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .cloned()
        .unwrap_or_else(|| v["audit"].as_array().cloned().unwrap_or_default())
}

#[test]
fn a_runbook_runs_its_steps_in_order_each_audited_and_a_failing_step_stops_it() {
    let (api, ing) = (free_port(), free_port());
    let runbooks = r#"
[runbooks.mitigate]
description = "stop writes, bounce the worker"

[[runbooks.mitigate.steps]]
drain = "on"

[[runbooks.mitigate.steps]]
restart = "worker"

[[runbooks.mitigate.steps]]
wait = { service = "worker", state = "running", timeout = "20s" }

[[runbooks.mitigate.steps]]
run = ["sh", "-c", "echo mitigated > marker; echo wrote the marker"]

[[runbooks.mitigate.steps]]
flag = { key = "greeting", value = "hi" }

[runbooks.broken]

[[runbooks.broken.steps]]
run = "false"

[[runbooks.broken.steps]]
emergency = "on"
"#;
    let mut up = up("runbooks", &stack(api, ing, runbooks), &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    assert!(eventually(10, || through(ing, "GET") == 200));
    let post_before = through(ing, "POST");
    assert_ne!(post_before, 503);

    // A dry run does nothing and says what it would find.
    let (code, out) = gantry_in(&dir, &["runbook", "run", "mitigate", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("write_drain is off now"), "{out}");
    assert!(out.contains("worker is running"), "{out}");
    assert!(!dir.join("marker").exists());
    assert_ne!(through(ing, "POST"), 503);

    let (code, out) = gantry_in(
        &dir,
        &["runbook", "run", "mitigate", "--reason", "db incident"],
    );
    assert_eq!(code, 0, "{out}");
    for step in [
        "1/5 write_drain on",
        "2/5 restart worker",
        "3/5 wait until worker is running",
        "4/5 run",
        "5/5 flag greeting",
    ] {
        assert!(out.contains(step), "{step} in {out}");
    }
    assert!(out.contains("wrote the marker"), "{out}");
    assert!(dir.join("marker").exists());
    assert_eq!(through(ing, "POST"), 503, "drained");
    assert_eq!(through(ing, "GET"), 200);
    let (_, flag) = gantry_in(&dir, &["flag", "get", "greeting"]);
    assert!(flag.contains("greeting = hi"), "{flag}");
    up.wait_count("worker", "running", 2, 10);

    let rows = audit(&dir);
    let by = |action: &str| {
        rows.iter()
            .find(|r| r["action"] == action && r["actor"] == "runbook:mitigate")
            .cloned()
    };
    assert!(
        rows.iter().any(|r| r["action"] == "runbook.run"
            && r["target"] == "mitigate"
            && r["reason"] == "db incident"),
        "{rows:?}"
    );
    for action in ["flag.set", "service.restart", "runbook.run_command"] {
        assert!(
            by(action).is_some(),
            "{action} by runbook:mitigate in {rows:?}"
        );
    }

    // A failing step stops the run: the emergency switch after it is never flipped.
    let (code, out) = gantry_in(&dir, &["runbook", "run", "broken", "--reason", "t"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED"), "{out}");
    assert_eq!(through(ing, "GET"), 200, "no emergency");
    let (code, out) = gantry_in(&dir, &["runbook", "run", "nope"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("unknown runbook"), "{out}");
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_p0_alert_runs_its_runbook_by_itself_once() {
    let (api, ing) = (free_port(), free_port());
    let extra = r#"priority = "critical"
restart = "never"

[alerts]
log = true

[alerts.rules.critical_service_down]
runbook = "drain"
auto_runbook = true

[runbooks.drain]
description = "P0 auto-mitigation: stop writes"

[[runbooks.drain.steps]]
drain = "on"
"#;
    let mut up = up("runbooks-auto", &stack(api, ing, extra), &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    assert!(eventually(10, || through(ing, "GET") == 200));
    assert_ne!(through(ing, "POST"), 503);
    let pids = processes_with("sleep 600");
    let worker = pids
        .iter()
        .find(|p| std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|d| d == up.dir))
        .copied()
        .expect("the worker's pid");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &worker.to_string()])
        .status();
    up.wait_for("the runbook ran", 20, |v| {
        v["event"] == "runbook_finished" && v["runbook"] == "drain"
    });
    assert_eq!(through(ing, "POST"), 503, "drained by the runbook");
    // The worker started again: the alert resolves; the runbook ran once for that incident.
    let (code, out) = gantry_in(&up.dir, &["start", "worker"]);
    assert_eq!(code, 0, "{out}");
    up.wait_count("worker", "running", 2, 10);
    let started = up
        .events
        .iter()
        .filter(|v| v["event"] == "runbook_started")
        .count();
    assert_eq!(started, 1, "{}", up.log());
    let rows = audit(&up.dir);
    assert!(
        rows.iter()
            .any(|r| r["action"] == "flag.set" && r["actor"] == "runbook:drain"),
        "{rows:?}"
    );
    // Its start is audited too (actor gantry), and it is on the incident's timeline once.
    assert_eq!(
        rows.iter()
            .filter(|r| r["action"] == "runbook.run"
                && r["actor"] == "gantry"
                && r["target"] == "drain")
            .count(),
        1,
        "{rows:?}"
    );
    let (code, show) = gantry_in(&up.dir, &["incident", "show", "1", "--json"]);
    assert_eq!(code, 0, "{show}");
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    let timeline = v["timeline"].as_array().cloned().unwrap_or_default();
    let started: Vec<_> = timeline
        .iter()
        .filter(|t| {
            t["text"]
                .as_str()
                .is_some_and(|x| x.starts_with("runbook.run drain by gantry"))
        })
        .collect();
    assert_eq!(started.len(), 1, "{timeline:?}");
    assert_eq!(started[0]["kind"], "action", "{timeline:?}");
    assert_eq!(up.stop(), 0);
}

//! Incidents by hand against a real `gantry up`: `gantry incident open` (audited, an event on the
//! stream), operator actions, gantry's own audited actions (an override's expiry) and missions land
//! on its timeline, once each, `ack` and `resolve` change its status with who
//! and why, a resolved incident cannot be resolved again, and the API answers the same.

mod support;

use support::*;

#[test]
fn an_incident_opened_by_hand_collects_actions_and_is_acked_and_resolved() {
    let toml = r#"
[flags.greeting]
variants = { hello = "hello", hi = "hi" }
default = "hello"

[services.worker]
command = ["sleep", "600"]
start_grace = "100ms"
"#;
    let mut up = up("incidents", toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    let (code, out) = gantry_in(
        &dir,
        &[
            "incident",
            "open",
            "--severity",
            "P1",
            "--title",
            "checkout errors",
            "--reason",
            "support called",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("incident 1 opened"), "{out}");
    up.wait_for("incident_opened", 10, |v| {
        v["event"] == "incident_opened" && v["title"] == "checkout errors"
    });
    // A second one while it is open: refused, with what to do.
    let (code, out) = gantry_in(
        &dir,
        &["incident", "open", "--severity", "P2", "--title", "again"],
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("incident 1 is open"), "{out}");

    // An operator action goes on its timeline.
    let (code, out) = gantry_in(&dir, &["restart", "worker", "--reason", "stuck"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = gantry_in(&dir, &["incident", "ack", "1", "--reason", "on it"]);
    assert_eq!(code, 0, "{out}");
    let (code, show) = gantry_in(&dir, &["incident", "show", "1", "--json"]);
    assert_eq!(code, 0, "{show}");
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(v["status"], "acknowledged", "{v}");
    let timeline = v["timeline"].to_string();
    assert!(timeline.contains("service.restart worker"), "{timeline}");
    assert!(timeline.contains("incident.ack 1 by cli:"), "{timeline}");
    assert!(timeline.contains(": on it"), "{timeline}");

    // What gantry does by itself goes on it too: an override's expiry (audited, actor gantry)
    // and a mission (a reload of a broken file opens one).
    let (code, out) = gantry_in(
        &dir,
        &[
            "flag",
            "set",
            "greeting",
            "hi",
            "--reason",
            "try hi",
            "--expires",
            "2s",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let file = dir.join("gantry.toml");
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        good.replace(
            "[services.worker]\n",
            "[services.worker]\nstop_timeout = \"soon\"\n",
        ),
    )
    .unwrap();
    let (code, out) = gantry_in(&dir, &["reload"]);
    assert_eq!(code, 1, "{out}");
    std::fs::write(&file, &good).unwrap();
    let timeline = || {
        let (_, show) = gantry_in(&dir, &["incident", "show", "1", "--json"]);
        serde_json::from_str::<serde_json::Value>(&show).unwrap()["timeline"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        eventually(15, || timeline().iter().any(|t| t["kind"] == "action"
            && t["text"].as_str().is_some_and(
                |x| x.starts_with("flag.expire greeting by gantry")
            ))),
        "{:?}",
        timeline()
    );
    let rows = timeline();
    let count = |kind: &str, start: &str| {
        rows.iter()
            .filter(|t| {
                t["kind"] == kind && t["text"].as_str().is_some_and(|x| x.starts_with(start))
            })
            .count()
    };
    // Each noted once: the operator's actions, gantry's own, the mission.
    assert_eq!(
        count("action", "service.restart worker by cli:"),
        1,
        "{rows:?}"
    );
    assert_eq!(count("action", "flag.set greeting by cli:"), 1, "{rows:?}");
    assert_eq!(
        count("action", "flag.expire greeting by gantry"),
        1,
        "{rows:?}"
    );
    assert_eq!(count("action", "stack.reload"), 1, "{rows:?}");
    assert_eq!(count("mission", "mission "), 1, "{rows:?}");
    assert!(
        rows.iter().any(|t| t["kind"] == "mission"
            && t["text"].as_str().is_some_and(|x| x.contains(": reload: "))),
        "{rows:?}"
    );

    let (code, out) = gantry_in(&dir, &["incident", "resolve", "1", "--reason", "fixed"]);
    assert_eq!(code, 0, "{out}");
    up.wait_for("incident_resolved", 10, |v| {
        v["event"] == "incident_resolved" && v["id"] == 1
    });
    let (code, out) = gantry_in(&dir, &["incident", "resolve", "1"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("is resolved, not open"), "{out}");
    let (code, out) = gantry_in(&dir, &["incident", "ack", "7"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("no incident 7"), "{out}");
    // The ack and the resolve are on its timeline once each; the refused second resolve is not.
    let rows = timeline();
    for start in ["incident.ack 1 by cli:", "incident.resolve 1 by cli:"] {
        assert_eq!(
            rows.iter()
                .filter(|t| t["text"].as_str().is_some_and(|x| x.starts_with(start)))
                .count(),
            1,
            "{start}: {rows:?}"
        );
    }
    assert!(
        !rows
            .iter()
            .any(|t| t["kind"] == "ack" || t["kind"] == "resolved"),
        "{rows:?}"
    );

    // The API reads the same, and every step is in the audit log with its reason.
    let addr = api_addr_in(&dir);
    let (status, body) = http(&addr, "GET", "/api/v1/incidents/1", None).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"resolved\""), "{body}");
    let (_, audit) = gantry_in(&dir, &["audit", "--json"]);
    for (action, reason) in [
        ("incident.open", "support called"),
        ("incident.ack", "on it"),
        ("incident.resolve", "fixed"),
    ] {
        assert!(
            audit.contains(action) && audit.contains(reason),
            "{action} in {audit}"
        );
    }
    assert_eq!(up.stop(), 0);
}

/// The post-incident draft counts the requests that went through the ingress while the incident
/// was open, and how many failed.
#[test]
fn the_postmortem_counts_the_requests_that_failed_while_it_was_open() {
    let (api, ing) = (free_port(), free_port());
    let toml = format!(
        r#"
[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "FIXTURE --name pm-api --http {api}"
upstream = "127.0.0.1:{api}"
readiness = {{ http = "http://127.0.0.1:{api}/health", period = "100ms" }}
"#
    );
    // Inherited by the service (the name would not survive the harness's FIXTURE replacement).
    let mut up = up_env(
        "incidents-postmortem",
        &toml,
        &[],
        &[("FIXTURE_ERROR_PERCENT", "20")],
        |_| {},
    );
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    let get = |path: &str| {
        http_with(&format!("127.0.0.1:{ing}"), "GET", path, &[], "").map_or(0, |(s, _)| s)
    };
    assert!(eventually(10, || get("/health") == 200));
    // Before the incident: not counted.
    for _ in 0..4 {
        get("/app");
    }
    let (code, out) = gantry_in(
        &dir,
        &[
            "incident",
            "open",
            "--severity",
            "P1",
            "--title",
            "errors on /app",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let statuses: Vec<u16> = (0..20).map(|_| get("/app")).collect();
    let failed = statuses.iter().filter(|s| **s >= 500).count();
    assert!(failed >= 4, "{statuses:?}");
    let (code, out) = gantry_in(&dir, &["incident", "resolve", "1"]);
    assert_eq!(code, 0, "{out}");
    // Afterwards: not counted either.
    get("/app");
    let (code, pm) = gantry_in(&dir, &["incident", "postmortem", "1"]);
    assert_eq!(code, 0, "{pm}");
    let share = failed as f64 * 100.0 / 20.0;
    assert!(
        pm.contains(&format!(
            "Requests through the ingress while it was open: 20, failed (5xx or no upstream): {failed} ({share:.1} %)"
        )),
        "{statuses:?}\n{pm}"
    );
    assert_eq!(up.stop(), 0);
}

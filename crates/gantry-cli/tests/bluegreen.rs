//! Blue/green rollouts on a real stack: a replicated fixture behind the ingress under a
//! constant client load. A healthy green set takes all traffic in one switch with no failed
//! request and becomes the release the service runs (the blue processes gone); a green set
//! answering 20 % 500s is switched back within one analysis interval and clients see blue.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::releases::*;
use support::*;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
    })
}

/// `gantry rollout status api --json`.
fn status(up: &Up) -> serde_json::Value {
    let (code, out) = gantry_in(&up.dir, &["rollout", "status", "api", "--json"]);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).unwrap_or_default()
}

#[test]
fn a_healthy_green_set_takes_all_traffic_in_one_switch_without_a_failed_request() {
    // The strategy comes from the file; the check runs against each green instance.
    let (mut up, ing, ports) = replicated_stack(
        "bluegreen-promote",
        2,
        "rollout = { strategy = \"blue_green\", check = \"http://127.0.0.1:${PORT}/health\" }",
    );
    let blue: Vec<u32> = ports
        .iter()
        .flat_map(|p| processes_with(&format!("--http {p}")))
        .collect();
    assert_eq!(blue.len(), 2, "{blue:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(ing, 3, stop.clone());
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "rollout",
            "api",
            "--set-env",
            "VERSION=2",
            "--interval",
            "1s",
            "--min-requests",
            "5",
            "--reason",
            "release 2, blue/green",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("blue/green"), "{out}");
    let starting = up.wait_for("green starting", 30, |v| {
        v["event"] == "rollout" && v["phase"] == "starting_green"
    });
    assert_eq!(starting["strategy"], "blue_green", "{starting}");
    up.wait_for("the switch", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "switched"
    });
    // After the switch every answer comes from green (release 2), blue still running.
    for _ in 0..30 {
        assert_eq!(get_app(ing), (200, "2".into()), "{}", up.log());
    }
    assert!(
        blue.iter().all(|p| alive(*p)),
        "blue runs during the analysis"
    );
    let s = status(&up);
    assert_eq!(s["weight"], 100, "{s}");
    let green_ports: Vec<u64> = s["green_ports"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(green_ports.len(), 2, "{s}");
    let done = up.wait_for("the rollout's end", 90, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    assert_eq!(done["outcome"], "promoted", "{}", up.log());
    for _ in 0..30 {
        assert_eq!(get_app(ing), (200, "2".into()), "{}", up.log());
    }
    stop.store(true, Ordering::Relaxed);
    let seen = join(clients);
    eprintln!("blue/green promote: clients saw {seen:?}");
    assert!(seen.ok > 100, "{seen:?}");
    assert_eq!(seen.injected, 0, "{seen:?}");
    assert!(seen.other.is_empty(), "failed requests: {seen:?}");
    // Blue's processes are gone, and so are green's: the service's own instances run release 2.
    assert!(
        eventually(10, || !blue.iter().any(|p| alive(*p))),
        "blue processes still run: {blue:?}"
    );
    for p in &green_ports {
        assert!(
            eventually(10, || processes_with(&format!("--http {p}")).is_empty()),
            "green on {p} still runs"
        );
    }
    let (code, out) = gantry_in(&up.dir, &["releases", "api", "--json"]);
    assert_eq!(code, 0, "{out}");
    let releases: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(releases[0]["status"], "stable", "{out}");
    assert_eq!(releases[1]["status"], "superseded", "{out}");
    let (code, out) = gantry_in(&up.dir, &["rollout", "status", "api"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("blue/green") && out.contains("promoted"),
        "{out}"
    );
    // The status lists the service's own instances running release 2 under its name.
    let (code, out) = gantry_in(&up.dir, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\"api.1\"") && out.contains("\"api.2\""),
        "{out}"
    );
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_green_set_failing_one_request_in_five_is_switched_back_within_one_interval() {
    let (mut up, ing, ports) = replicated_stack("bluegreen-back", 2, "");
    let blue: Vec<u32> = ports
        .iter()
        .flat_map(|p| processes_with(&format!("--http {p}")))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(ing, 3, stop.clone());
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "rollout",
            "api",
            "--strategy",
            "blue-green",
            "--set-env",
            "VERSION=2",
            "--set-env",
            "FIXTURE_ERROR_PERCENT=20",
            "--interval",
            "5s",
            "--min-requests",
            "20",
            "--max-error-ratio",
            "0.05",
            "--reason",
            "release 2, blue/green",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let switched = up.wait_for("the switch", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "switched"
    });
    let back = up.wait_for("the switch back", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "rolled_back"
    });
    // Within one analysis interval of the switch, on green's own numbers.
    let took = back["analyses"].as_u64().unwrap_or(99);
    assert!(took <= 4, "{took} analyses: {back}");
    let breach = &back["detail"]["RolledBack"]["breach"];
    let failures = breach["failures"].as_u64().unwrap_or(0);
    assert!(failures > 0, "{back}");
    assert!(breach["observed"].as_f64().unwrap_or(0.0) > 0.05, "{back}");
    assert_eq!(switched["weight"], 100, "{switched}");
    up.wait_for("green stopped", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    for _ in 0..60 {
        assert_eq!(get_app(ing), (200, "1".into()), "{}", up.log());
    }
    stop.store(true, Ordering::Relaxed);
    let seen = join(clients);
    eprintln!("blue/green back: clients saw {seen:?}, the breach counted {failures}: {back}");
    assert!(seen.other.is_empty(), "failed requests: {seen:?}");
    assert!(
        seen.injected >= failures && seen.injected <= failures + 3,
        "clients saw {} injected 500s, the breach counted {failures}",
        seen.injected
    );
    // Blue kept running throughout; green is gone.
    assert!(blue.iter().all(|p| alive(*p)), "blue was restarted");
    let s = status(&up);
    for p in s["green_ports"].as_array().into_iter().flatten() {
        let p = p.as_u64().unwrap_or(0);
        assert!(
            eventually(10, || processes_with(&format!("--http {p}")).is_empty()),
            "green on {p} still runs"
        );
    }
    let addr = api_addr_in(&up.dir);
    let (status_code, missions) = http(&addr, "GET", "/api/v1/missions", None).unwrap();
    assert_eq!(status_code, 200, "{missions}");
    assert!(missions.contains("error ratio"), "{missions}");
    let (code, audit) = gantry_in(&up.dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{audit}");
    assert!(audit.contains("rollout.rollback"), "{audit}");
    // A reload afterwards finds nothing changed (green is gantry's own).
    let (code, out) = gantry_in(&up.dir, &["reload"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(up.stop(), 0);
}

/// A release edited in gantry.toml, blue/green: promoted, the service's own instances run it,
/// a reload finds nothing changed, and the next blue/green rollout reuses the green units.
#[test]
fn a_blue_green_release_from_the_file_leaves_nothing_for_a_reload() {
    let (mut up, ing, _) = replicated_stack(
        "bluegreen-file",
        2,
        "rollout = { strategy = \"blue_green\", interval = \"300ms\", min_requests = 3 }",
    );
    let file = up.dir.join("gantry.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("VERSION = \"1\"", "VERSION = \"2\"")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(ing, 2, stop.clone());
    let (code, out) = gantry_in(&up.dir, &["rollout", "api", "--reason", "r2 from the file"]);
    assert_eq!(code, 0, "{out}");
    let done = up.wait_for("the rollout's end", 90, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    assert_eq!(done["outcome"], "promoted", "{}", up.log());
    for _ in 0..20 {
        assert_eq!(get_app(ing), (200, "2".into()), "{}", up.log());
    }
    let (code, out) = gantry_in(&up.dir, &["reload"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing changed"), "{out}");
    // Again, with a change given: the green units of the first rollout are started again.
    let (code, out) = gantry_in(
        &up.dir,
        &["rollout", "api", "--set-env", "VERSION=3", "--reason", "r3"],
    );
    assert_eq!(code, 0, "{out}");
    let done = up.wait_for("the second rollout's end", 90, |v| {
        v["event"] == "rollout" && v["phase"] == "done" && v["new_release"] == 3
    });
    assert_eq!(done["outcome"], "promoted", "{}", up.log());
    stop.store(true, Ordering::Relaxed);
    let seen = join(clients);
    assert!(seen.other.is_empty(), "failed requests: {seen:?}");
    for _ in 0..20 {
        assert_eq!(get_app(ing), (200, "3".into()), "{}", up.log());
    }
    assert_eq!(
        done["green"],
        serde_json::json!(["api.green.1", "api.green.2"])
    );
    assert_eq!(up.stop(), 0);
}

/// `gantry rollout status|abort|promote` on a blue/green rollout held in its analysis (an hour
/// long): the status names the strategy and stage, an abort switches back to blue, a promote
/// of the next one ends it with green's release on every instance.
#[test]
fn a_blue_green_rollout_is_aborted_and_promoted_by_hand() {
    let (mut up, ing, _) = replicated_stack("bluegreen-manual", 2, "");
    let start = |up: &Up, version: &str| {
        let env = format!("VERSION={version}");
        let (code, out) = gantry_in(
            &up.dir,
            &[
                "rollout",
                "api",
                "--strategy",
                "blue-green",
                "--set-env",
                &env,
                "--interval",
                "1h",
                "--reason",
                "by hand",
            ],
        );
        assert_eq!(code, 0, "{out}");
    };
    start(&up, "2");
    up.wait_for("the switch", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "switched"
    });
    let s = status(&up);
    assert_eq!(s["strategy"], "blue_green", "{s}");
    assert_eq!(s["phase"], "analysing", "{s}");
    assert_eq!(s["stage"], "switched", "{s}");
    let (_, text) = gantry_in(&up.dir, &["rollout", "status", "api"]);
    assert!(
        text.contains("blue/green") && text.contains("switched"),
        "{text}"
    );
    assert_eq!(get_app(ing), (200, "2".into()));
    let (code, out) = gantry_in(&up.dir, &["rollout", "abort", "api", "--reason", "no"]);
    assert_eq!(code, 0, "{out}");
    let done = up.wait_for("the abort's end", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    assert_eq!(done["outcome"], "rolled_back", "{done}");
    for _ in 0..20 {
        assert_eq!(get_app(ing), (200, "1".into()), "{}", up.log());
    }
    start(&up, "3");
    up.wait_for("the second switch", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "switched" && v["new_release"] == 3
    });
    let (code, out) = gantry_in(&up.dir, &["rollout", "promote", "api", "--reason", "ok"]);
    assert_eq!(code, 0, "{out}");
    let done = up.wait_for("the promote's end", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "done" && v["new_release"] == 3
    });
    assert_eq!(done["outcome"], "promoted", "{done}");
    for _ in 0..20 {
        assert_eq!(get_app(ing), (200, "3".into()), "{}", up.log());
    }
    assert_eq!(up.stop(), 0);
}

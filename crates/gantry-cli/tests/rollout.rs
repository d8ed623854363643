//! `gantry rollout NAME` on a real stack: a replicated fixture behind the ingress under a
//! constant client load. A healthy canary (`VERSION=2`) is promoted through every step with no
//! failed request; a canary answering 20 % 500s is rolled back in its first step, clients then
//! see only the stable release, and the only failures they saw are the canary's own.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::releases::*;
use support::*;

/// A stack of `replicas` fixtures (VERSION=1) behind the ingress; the ingress port.
fn stack(name: &str, replicas: u16) -> (Up, u16) {
    let (up, ing, _) = replicated_stack(name, replicas, "");
    (up, ing)
}

fn rollout_events(up: &Up) -> Vec<serde_json::Value> {
    up.events
        .iter()
        .filter(|v| v["event"] == "rollout")
        .cloned()
        .collect()
}

#[test]
fn a_healthy_canary_is_promoted_through_every_step_without_a_failed_request() {
    let (mut up, ing) = stack("rollout-promote", 3);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(ing, 3, stop.clone());
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "rollout",
            "api",
            "--set-env",
            "VERSION=2",
            "--steps",
            "20,50,100",
            "--interval",
            "400ms",
            "--min-requests",
            "5",
            "--max-error-ratio",
            "0.05",
            "--reason",
            "release 2",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("canary api.3"), "{out}");
    let done = up.wait_for("the rollout's end", 90, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    assert_eq!(done["outcome"], "promoted", "{}", up.log());
    // Every step was entered, in order, before the promote.
    let steps: Vec<u64> = rollout_events(&up)
        .iter()
        .filter(|v| v["phase"] == "analysing")
        .filter_map(|v| v["weight"].as_u64())
        .collect();
    let mut distinct = steps.clone();
    distinct.dedup();
    assert_eq!(distinct, vec![20, 50, 100], "{}", up.log());
    // After the promote every instance runs release 2.
    for _ in 0..60 {
        assert_eq!(get_app(ing), (200, "2".into()), "{}", up.log());
    }
    stop.store(true, Ordering::Relaxed);
    let seen = join(clients);
    eprintln!("promote: clients saw {seen:?}");
    assert!(seen.ok > 100, "{seen:?}");
    assert_eq!(seen.injected, 0, "{seen:?}");
    assert!(seen.other.is_empty(), "failed requests: {seen:?}");
    // The status says so.
    let (code, out) = gantry_in(&up.dir, &["rollout", "status", "api"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("promoted"), "{out}");
    // Release 1 (the boot's) superseded, release 2 stable.
    let (code, out) = gantry_in(&up.dir, &["releases", "api", "--json"]);
    assert_eq!(code, 0, "{out}");
    let releases: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(releases[0]["number"], 2, "{out}");
    assert_eq!(releases[0]["status"], "stable", "{out}");
    assert_eq!(releases[0]["definition"]["env"]["VERSION"], "2", "{out}");
    assert_eq!(releases[1]["number"], 1, "{out}");
    assert_eq!(releases[1]["status"], "superseded", "{out}");
    assert_eq!(releases[1]["definition"]["env"]["VERSION"], "1", "{out}");
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_canary_failing_one_request_in_five_is_rolled_back_in_its_first_step() {
    let (mut up, ing) = stack("rollout-rollback", 2);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(ing, 3, stop.clone());
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "rollout",
            "api",
            "--set-env",
            "VERSION=2",
            "--set-env",
            "FIXTURE_ERROR_PERCENT=20",
            "--steps",
            "50,100",
            "--interval",
            "5s",
            "--min-requests",
            "20",
            "--max-error-ratio",
            "0.05",
            "--reason",
            "release 2",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let back = up.wait_for("the rollback", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "rolled_back"
    });
    // Within one analysis interval: during the first step, on its numbers.
    let why = back["detail"]["RolledBack"]["why"].as_str().unwrap_or("");
    assert!(why.starts_with("step 1 breached: error ratio"), "{back}");
    let breach = &back["detail"]["RolledBack"]["breach"];
    let failures = breach["failures"].as_u64().unwrap_or(0);
    assert!(failures > 0, "{back}");
    assert!(breach["observed"].as_f64().unwrap_or(0.0) > 0.05, "{back}");
    up.wait_for("the canary back on the stable release", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    // Clients see the stable release only.
    for _ in 0..60 {
        assert_eq!(get_app(ing), (200, "1".into()), "{}", up.log());
    }
    stop.store(true, Ordering::Relaxed);
    let seen = join(clients);
    eprintln!("rollback: clients saw {seen:?}, the breach counted {failures} failures: {back}");
    assert!(seen.other.is_empty(), "failed requests: {seen:?}");
    // The only failures the clients saw are the canary's injected 500s: those the analysis
    // counted, plus at most the few in flight when the weight went to 0.
    assert!(
        seen.injected >= failures && seen.injected <= failures + 3,
        "clients saw {} injected 500s, the breach counted {failures}",
        seen.injected
    );
    // A mission and an audit row with the numbers.
    let addr = api_addr_in(&up.dir);
    let (status, missions) = http(&addr, "GET", "/api/v1/missions", None).unwrap();
    assert_eq!(status, 200, "{missions}");
    assert!(
        missions.contains("rollout") && missions.contains("error ratio"),
        "{missions}"
    );
    let (code, audit) = gantry_in(&up.dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{audit}");
    assert!(
        audit.contains("rollout.rollback") && audit.contains("rollout.start"),
        "{audit}"
    );
    let (code, out) = gantry_in(&up.dir, &["rollout", "status", "api"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("rolled_back") && out.contains("error ratio"),
        "{out}"
    );
    let (code, out) = gantry_in(&up.dir, &["releases", "api"]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().map(str::trim_start).collect();
    assert!(lines[0].starts_with("2  rolled_back"), "{out}");
    assert!(lines[1].starts_with("1  stable"), "{out}");
    assert_eq!(up.stop(), 0);
}

/// `gantry rollout status api --json`.
fn status(up: &Up) -> serde_json::Value {
    let (code, out) = gantry_in(&up.dir, &["rollout", "status", "api", "--json"]);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).unwrap_or_default()
}

#[test]
fn a_canary_without_traffic_holds_and_never_promotes_then_pause_resume_and_abort() {
    let (mut up, _ing) = stack("rollout-hold", 2);
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "rollout",
            "api",
            "--set-env",
            "VERSION=2",
            "--steps",
            "50,100",
            "--interval",
            "300ms",
            "--min-requests",
            "20",
            "--max-hold",
            "1h",
            "--reason",
            "no traffic",
        ],
    );
    assert_eq!(code, 0, "{out}");
    up.wait_for("the first step", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "analysing"
    });
    // Eight analyses (two intervals) without a request: still step 1, not verified.
    let mut s = serde_json::Value::Null;
    assert!(
        eventually(60, || {
            s = status(&up);
            s["analyses"].as_u64().unwrap_or(0) >= 8
        }),
        "{s}"
    );
    assert_eq!(s["phase"], "analysing", "{s}");
    assert_eq!(s["step"], 1, "{s}");
    assert_eq!(s["last_verdict"]["verdict"], "not_verified", "{s}");
    let (_, text) = gantry_in(&up.dir, &["rollout", "status", "api"]);
    assert!(
        text.contains("not verified: 0 of the 20 requests"),
        "{text}"
    );
    assert!(
        !rollout_events(&up).iter().any(|v| v["phase"] == "promoted"),
        "{}",
        up.log()
    );
    // Pause, resume, abort.
    let (code, out) = gantry_in(&up.dir, &["rollout", "pause", "api", "--reason", "look"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(status(&up)["phase"], "paused");
    let (code, out) = gantry_in(&up.dir, &["rollout", "pause", "api"]);
    assert_ne!(code, 0, "a second pause is refused: {out}");
    let (code, out) = gantry_in(&up.dir, &["rollout", "resume", "api"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(status(&up)["phase"], "analysing");
    let (code, out) = gantry_in(&up.dir, &["rollout", "abort", "api", "--reason", "enough"]);
    assert_eq!(code, 0, "{out}");
    let done = up.wait_for("the end of the abort", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    assert_eq!(done["outcome"], "rolled_back", "{done}");
    let (code, audit) = gantry_in(&up.dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{audit}");
    for action in ["rollout.pause", "rollout.resume", "rollout.abort"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    // The abort sends traffic from the new release back to the stable one.
    let rows: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
    let abort = rows
        .iter()
        .find(|r| r["action"] == "rollout.abort")
        .unwrap();
    assert_eq!(abort["before"], "release 2", "{audit}");
    assert_eq!(abort["after"], "release 1", "{audit}");
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_sticky_cookie_keeps_a_client_on_one_release() {
    let (mut up, ing) = stack("rollout-sticky", 2);
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "rollout",
            "api",
            "--set-env",
            "VERSION=2",
            "--steps",
            "50,100",
            "--interval",
            "1h",
            "--sticky-cookie",
            "sid",
            "--reason",
            "sticky",
        ],
    );
    assert_eq!(code, 0, "{out}");
    up.wait_for("the 50 % step", 60, |v| {
        v["event"] == "rollout" && v["phase"] == "analysing" && v["weight"] == 50
    });
    // Different clients land on both releases...
    let mut versions = std::collections::BTreeSet::new();
    for i in 0..64 {
        let (code, v) = get_app_as(ing, Some(&format!("client-{i}")));
        assert_eq!(code, 200);
        versions.insert(v);
    }
    assert_eq!(versions.len(), 2, "{versions:?}");
    // ...and one client stays on its own for 1,000 requests.
    for sid in ["alice", "bob"] {
        let first = get_app_as(ing, Some(sid));
        for _ in 0..1000 {
            assert_eq!(get_app_as(ing, Some(sid)), first, "{sid}");
        }
    }
    let (code, out) = gantry_in(&up.dir, &["rollout", "abort", "api"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(up.stop(), 0);
}

/// `gantry rollout api` with no change given: the release is the service's definition in the
/// edited gantry.toml; promoted, it is what runs, and a reload afterwards finds nothing changed.
#[test]
fn a_release_edited_in_the_file_is_rolled_out_and_a_reload_then_changes_nothing() {
    let (mut up, ing) = stack("rollout-file", 2);
    // The file as it is: nothing to roll out.
    let (code, out) = gantry_in(&up.dir, &["rollout", "api", "--reason", "noop"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("nothing to roll out"), "{out}");
    let file = up.dir.join("gantry.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("VERSION = \"1\"", "VERSION = \"2\"")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(ing, 2, stop.clone());
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "rollout",
            "api",
            "--steps",
            "50,100",
            "--interval",
            "300ms",
            "--min-requests",
            "3",
            "--reason",
            "release 2 from the file",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let done = up.wait_for("the rollout's end", 90, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    assert_eq!(done["outcome"], "promoted", "{}", up.log());
    stop.store(true, Ordering::Relaxed);
    let seen = join(clients);
    assert!(seen.other.is_empty(), "failed requests: {seen:?}");
    for _ in 0..20 {
        assert_eq!(get_app(ing), (200, "2".into()), "{}", up.log());
    }
    // The file and the running stack agree: a reload restarts nothing.
    let (code, out) = gantry_in(&up.dir, &["reload"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing changed"), "{out}");
    let (code, out) = gantry_in(&up.dir, &["releases", "api", "--json"]);
    assert_eq!(code, 0, "{out}");
    let releases: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(releases[0]["definition"]["env"]["VERSION"], "2", "{out}");
    assert_eq!(releases[0]["status"], "stable", "{out}");
    assert_eq!(up.stop(), 0);
}

/// The port of each instance `stack` started (`--http PORT` in their command lines).
fn instance_markers(up: &Up) -> Vec<String> {
    let text = std::fs::read_to_string(up.dir.join("gantry.toml")).unwrap();
    let range = text
        .lines()
        .find_map(|l| l.strip_prefix("replica_ports = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let (a, b) = range.split_once('-').unwrap();
    let (a, b): (u16, u16) = (a.parse().unwrap(), b.parse().unwrap());
    (a..=b).map(|p| format!("--http {p}")).collect()
}

/// kill -9 of gantry mid-canary, then `gantry up`: a consistent state, said in so many words.
/// A `--set-env` canary is resumed at its step (no traffic until the canary is ready again,
/// then the step's analysis starts over) and can be aborted back to release 1; a canary from
/// the edited file runs on every instance, marked unverified.
#[test]
fn a_gantry_killed_mid_canary_comes_back_consistent_and_says_which_release_runs() {
    let (up, ing) = stack("rollout-crash", 2);
    let markers = instance_markers(&up);
    // Held in its first step: no traffic, a long interval.
    let hold = [
        "--steps",
        "50,100",
        "--interval",
        "60s",
        "--min-requests",
        "1000",
    ];
    let mut args = vec!["rollout", "api", "--set-env", "VERSION=2", "--reason", "r2"];
    args.extend(hold);
    let (code, out) = gantry_in(&up.dir, &args);
    assert_eq!(code, 0, "{out}");
    let mut up = up;
    up.wait_for("the canary's first step", 30, |v| {
        v["event"] == "rollout" && v["phase"] == "analysing"
    });
    let mut up = up.crash_and_again(&markers, &[]);
    assert_eq!(up.wait_boot(30)["outcome"], "go", "{}", up.log());
    let resuming = up.wait_for("the resumed canary", 10, |v| {
        v["event"] == "rollout" && v["phase"] == "resuming"
    });
    assert!(
        resuming["message"]
            .as_str()
            .is_some_and(|m| m.contains("resuming at step 1 (50 %)")),
        "{resuming}"
    );
    let step = up.wait_for("the resumed step", 30, |v| {
        v["event"] == "rollout" && v["phase"] == "analysing"
    });
    assert_eq!(step["step"], 1, "{step}");
    assert_eq!(step["weight"], 50, "{step}");
    let (_, out) = gantry_in(&up.dir, &["releases", "api", "--json"]);
    let releases: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(releases[0]["status"], "canary", "{out}");
    // Half the requests reach the canary again.
    assert!(eventually(10, || get_app(ing) == (200, "2".into())));
    let (code, out) = gantry_in(&up.dir, &["rollout", "abort", "api", "--reason", "r2 off"]);
    assert_eq!(code, 0, "{out}");
    up.wait_for("the abort's end", 30, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    assert!(eventually(10, || get_app(ing) == (200, "1".into())));
    for _ in 0..20 {
        assert_eq!(get_app(ing), (200, "1".into()), "no split after the abort");
    }
    let (_, out) = gantry_in(&up.dir, &["releases", "api", "--json"]);
    let releases: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(releases[0]["status"], "rolled_back", "{out}");

    // A canary from the edited file: the file holds it, so it is what runs after the crash.
    let file = up.dir.join("gantry.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("VERSION = \"1\"", "VERSION = \"3\"")).unwrap();
    let mut args = vec!["rollout", "api", "--reason", "r3"];
    args.extend(hold);
    let (code, out) = gantry_in(&up.dir, &args);
    assert_eq!(code, 0, "{out}");
    up.wait_for("the second canary's first step", 30, |v| {
        v["event"] == "rollout" && v["phase"] == "analysing" && v["new_release"] == 3
    });
    let mut up = up.crash_and_again(&markers, &[]);
    assert_eq!(up.wait_boot(30)["outcome"], "go", "{}", up.log());
    let abandoned = up.wait_for("the abandoned file canary", 10, |v| {
        v["event"] == "rollout"
            && v["phase"] == "abandoned"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("came from gantry.toml"))
    });
    assert!(
        abandoned["message"]
            .as_str()
            .unwrap()
            .contains("without the canary's analysis"),
        "{abandoned}"
    );
    assert!(eventually(10, || get_app(ing) == (200, "3".into())));
    let (_, out) = gantry_in(&up.dir, &["releases", "api", "--json"]);
    let releases: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(releases[0]["status"], "unverified", "{out}");
    assert_eq!(up.stop(), 0);
}

/// Two canaries promoted (releases 2 and 3), then `gantry rollback api --to 1` under load:
/// every instance back on release 1 through the rolling machinery with no failed request, a
/// new release that restores 1 (said by `gantry releases`), an audit row; then `gantry
/// rollback api` goes back to the previous stable release (3).
#[test]
fn a_rollback_to_an_earlier_release_under_load_fails_no_request() {
    let (mut up, ing) = stack("rollout-rollback-to", 2);
    for (n, version) in [(2, "2"), (3, "3")] {
        let env = format!("VERSION={version}");
        let (code, out) = gantry_in(
            &up.dir,
            &[
                "rollout",
                "api",
                "--set-env",
                &env,
                "--steps",
                "100",
                "--interval",
                "200ms",
                "--min-requests",
                "1",
                "--reason",
                "next",
            ],
        );
        assert_eq!(code, 0, "{out}");
        let stop = Arc::new(AtomicBool::new(false));
        let clients = load(ing, 1, stop.clone());
        let done = up.wait_for("the rollout's end", 90, |v| {
            v["event"] == "rollout" && v["phase"] == "done" && v["new_release"] == n
        });
        stop.store(true, Ordering::Relaxed);
        join(clients);
        assert_eq!(done["outcome"], "promoted", "{}", up.log());
    }
    assert!(eventually(30, || (0..10).all(|_| get_app(ing) == (200, "3".into()))));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(ing, 3, stop.clone());
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "rollback",
            "api",
            "--to",
            "1",
            "--reason",
            "release 3 breaks checkout",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("restores 1"), "{out}");
    let ev = up.wait_for("the rollback", 30, |v| v["event"] == "rollback");
    assert_eq!(ev["restores"], 1, "{ev}");
    assert!(
        eventually(60, || (0..20).all(|_| get_app(ing) == (200, "1".into()))),
        "release 1 is not back: {}",
        up.log()
    );
    stop.store(true, Ordering::Relaxed);
    let seen = join(clients);
    eprintln!("rollback: clients saw {seen:?}");
    assert!(seen.ok > 50, "{seen:?}");
    assert_eq!(seen.injected, 0, "{seen:?}");
    assert!(seen.other.is_empty(), "failed requests: {seen:?}");
    let (code, out) = gantry_in(&up.dir, &["releases", "api"]);
    assert_eq!(code, 0, "{out}");
    let first = out.lines().next().unwrap_or("").trim_start().to_string();
    assert!(
        first.starts_with("4  stable") && first.contains("restores 1"),
        "{out}"
    );
    let (code, audit) = gantry_in(&up.dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{audit}");
    assert!(audit.contains("\"rollback\""), "{audit}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
    let rollback = rows.iter().find(|r| r["action"] == "rollback").unwrap();
    assert_eq!(rollback["before"], "release 3", "{audit}");
    assert_eq!(rollback["after"], "release 1", "{audit}");
    // Without --to: the previous stable release, 3.
    let (code, out) = gantry_in(&up.dir, &["rollback", "api"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("to release 3"), "{out}");
    assert!(
        eventually(60, || (0..20).all(|_| get_app(ing) == (200, "3".into()))),
        "{}",
        up.log()
    );
    // A release that is running is refused, with the way out.
    let (code, out) = gantry_in(&up.dir, &["rollback", "api", "--to", "5"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("is the one api runs"), "{out}");
    assert_eq!(up.stop(), 0);
}

/// The environment of the live process whose command line contains `marker`.
fn environ_of(marker: &str) -> String {
    processes_with(marker)
        .into_iter()
        .filter_map(|p| std::fs::read(format!("/proc/{p}/environ")).ok())
        .map(|b| String::from_utf8_lossy(&b).replace('\0', "\n"))
        .collect()
}

/// A rollback re-runs the release with its secrets read afresh (the secret's file changed
/// since), and neither value appears in the releases, the audit log or any answer.
#[test]
fn a_rollback_reads_the_secrets_afresh_and_never_shows_them() {
    let pid = std::process::id();
    let old = format!("tok-old-{pid}-a81f");
    let new = format!("tok-new-{pid}-c03d");
    let ing = free_port();
    let base = free_pair();
    let toml = format!(
        r#"
[secrets.TOKEN]
from_file = "token"
services = ["api"]

[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "FIXTURE --name api-${{REPLICA}} --http ${{PORT}}"
env = {{ VERSION = "1" }}
replicas = 2
replica_ports = "{base}-{}"
restart = "always"
readiness = {{ http = "http://127.0.0.1:${{PORT}}/health", period = "100ms" }}
"#,
        base + 1
    );
    let mut up = up_with("rollout-rollback-secret", &toml, &[], |dir| {
        std::fs::write(dir.join("token"), &old).unwrap();
    });
    assert_eq!(up.wait_boot(30)["outcome"], "go", "{}", up.log());
    let (code, out) = gantry_in(
        &up.dir,
        &[
            "rollout",
            "api",
            "--set-env",
            "VERSION=2",
            "--steps",
            "100",
            "--interval",
            "200ms",
            "--min-requests",
            "1",
            "--reason",
            "r2",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(ing, 1, stop.clone());
    let done = up.wait_for("the rollout's end", 90, |v| {
        v["event"] == "rollout" && v["phase"] == "done"
    });
    stop.store(true, Ordering::Relaxed);
    join(clients);
    assert_eq!(done["outcome"], "promoted", "{}", up.log());
    std::fs::write(up.dir.join("token"), &new).unwrap();
    let (code, answer) = gantry_in(&up.dir, &["rollback", "api", "--reason", "back"]);
    assert_eq!(code, 0, "{answer}");
    assert!(
        eventually(60, || (0..10).all(|_| get_app(ing) == (200, "1".into()))),
        "{}",
        up.log()
    );
    for p in [base, base + 1] {
        let marker = format!("--http {p}");
        assert!(
            eventually(20, || environ_of(&marker).contains(&format!("TOKEN={new}"))),
            "instance on {p} does not have the new secret"
        );
    }
    let (_, releases) = gantry_in(&up.dir, &["releases", "api", "--json"]);
    let (_, audit) = gantry_in(&up.dir, &["audit", "--json"]);
    for text in [&answer, &releases, &audit, &up.log()] {
        assert!(!text.contains(&old) && !text.contains(&new), "{text}");
    }
    let releases: serde_json::Value = serde_json::from_str(&releases).unwrap();
    assert_eq!(releases[0]["restores"], 1, "{releases}");
    assert_eq!(up.stop(), 0);
}

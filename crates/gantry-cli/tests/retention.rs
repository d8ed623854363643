//! `[settings] retention` in a real `gantry up`: a state store with 500 boots and old resolved missions is pruned to the limits once the boot is decided; open and recent missions stay.

mod support;

use gantry_state::StateDir;
use gantry_state::missions::NewMission;
use gantry_state::store::{ServiceRecord, Store};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime};
use support::*;

const DAY: Duration = Duration::from_secs(86_400);

fn mission(store: &Store, check: &str) -> i64 {
    store
        .open_mission(&NewMission {
            service: Some("app".into()),
            layer: None,
            check: check.into(),
            error: "failed".into(),
            output: vec![],
            fix_criteria: "app becomes ready".into(),
            next_step: "fix it".into(),
        })
        .unwrap()
}

/// A state store as a long-lived stack leaves it: 500 decided boots of two services, and
/// missions resolved 40 and 10 days ago plus one still open (opened 40 days ago).
fn old_history(dir: &Path) {
    let state = dir.join(".gantry");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&state)
        .unwrap();
    let mut store = Store::open(StateDir::new(&state)).unwrap();
    let records: Vec<ServiceRecord> = ["app", "db"]
        .iter()
        .map(|n| ServiceRecord {
            name: n.to_string(),
            state: "ready".into(),
            priority: "medium".into(),
            started_ms: Some(0),
            ready_ms: Some(10),
            attempts: 1,
            error: None,
        })
        .collect();
    for _ in 0..500 {
        let id = store
            .begin_boot("2026-01-01T00:00:00.000Z", "gantry.toml")
            .unwrap();
        store
            .finish_boot(id, "go", Duration::from_millis(10), None, &records)
            .unwrap();
    }
    let now = SystemTime::now();
    let db = rusqlite::Connection::open(state.join("state.db")).unwrap();
    let backdate = |id: i64, status: &str, ago: Duration| {
        let at = gantry_state::time::rfc3339_utc(now - ago);
        db.execute(
            "UPDATE missions SET status = ?1, created_at = ?2, resolved_at = CASE WHEN ?1 = 'resolved' THEN ?2 END WHERE id = ?3",
            rusqlite::params![status, at, id],
        )
        .unwrap();
    };
    for i in 0..120 {
        backdate(mission(&store, &format!("old {i}")), "resolved", 40 * DAY);
    }
    backdate(mission(&store, "recent"), "resolved", 10 * DAY);
    backdate(mission(&store, "still open"), "open", 40 * DAY);
}

/// (boots, open missions, resolved missions) and the checks of the missions left.
fn history(dir: &Path) -> ((u64, u64, u64), Vec<String>) {
    let store = Store::open(StateDir::new(dir.join(".gantry"))).unwrap();
    let checks = store
        .missions(true)
        .unwrap()
        .iter()
        .map(|m| m["check"].as_str().unwrap().to_string())
        .collect();
    (store.counts().unwrap(), checks)
}

#[test]
fn the_next_up_prunes_boots_and_old_resolved_missions_to_the_limits() {
    let mut up = up_with(
        "retention",
        r#"
[settings]
retention = { boots = 100, missions = "30d" }

[services.app]
command = "FIXTURE --name app"
"#,
        &[],
        old_history,
    );
    up.wait_boot(30);
    let event = up.wait_for("the retention pass", 30, |v| v["event"] == "retention");
    // 401 went: the new boot is one of the 100 kept.
    assert_eq!(
        (event["boots"].as_u64(), event["missions"].as_u64()),
        (Some(401), Some(120)),
        "{event}"
    );
    let (counts, checks) = history(&up.dir);
    assert_eq!(counts, (100, 1, 1), "boots, open and resolved missions");
    assert_eq!(checks, ["still open", "recent"]);
    // The boot of this run is recorded and kept.
    let store = Store::open(StateDir::new(up.dir.join(".gantry"))).unwrap();
    let newest = store.last_boot().expect("this boot").0;
    assert_eq!(store.boot_services(newest).unwrap().len(), 1, "app");
    assert_eq!(up.stop(), 0);
}

#[test]
fn the_default_retention_keeps_a_hundred_boots() {
    let mut up = up_with(
        "retention-default",
        "[services.app]\ncommand = \"FIXTURE --name app\"\n",
        &[],
        old_history,
    );
    up.wait_boot(30);
    let event = up.wait_for("the retention pass", 30, |v| v["event"] == "retention");
    assert_eq!(event["boots"].as_u64(), Some(401), "{event}");
    assert_eq!(history(&up.dir).0, (100, 1, 1));
    assert_eq!(up.stop(), 0);
}

/// Regression: a boot decided within the first wave (services without readiness probes are
/// running as soon as they are spawned) came before the store opened, so it stayed
/// undecided in the history (outcome NULL, no service records) and a service failing that
/// early had no mission.
#[test]
fn a_boot_decided_within_the_first_wave_is_recorded_with_its_missions() {
    let mut up = up(
        "first-wave-record",
        r#"
[services.app]
command = "FIXTURE --name app"

[services.broken]
command = "/nonexistent/broken"
"#,
        // The pre-flight would refuse the missing command before anything starts.
        &["--skip-preflight"],
    );
    up.wait_boot(30);
    up.wait_for("the retention pass", 30, |v| v["event"] == "retention");
    let store = Store::open(StateDir::new(up.dir.join(".gantry"))).unwrap();
    let boots = store.decided_boots(10).unwrap();
    assert_eq!(boots.len(), 1, "the boot is decided in the history");
    assert_eq!(boots[0].outcome.as_deref(), Some("degraded"));
    let names: Vec<String> = store
        .boot_services(boots[0].id)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["app", "broken"]);
    let missions = store.missions(false).unwrap();
    assert_eq!(missions.len(), 1, "{missions:?}");
    assert_eq!(missions[0]["service"], "broken");
    assert_eq!(up.stop(), 0);
}

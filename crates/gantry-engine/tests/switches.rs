//! Operator switches under virtual time: a disabled unit stays down (no restart, no start by a command or a dependency's recovery, skipped dependents at boot, a degraded verdict), enable brings it up through its gates, a quarantined unit's probe failures do not restart it.

mod support;

use gantry_engine::{Command, Condition, Outcome, ProbeRole, RestartPolicy, State};
use support::*;

use Condition::Ready;
use ProbeRole::{Liveness, Readiness};

fn disable(sim: &mut Sim, name: &str) {
    let unit = sim.id(name);
    sim.command(Command::Disable {
        unit,
        why: format!("disabled by cli:bob: {name} under maintenance"),
    });
}

#[test]
fn a_disabled_unit_is_stopped_with_its_dependents_and_never_restarted() {
    let mut sim = Sim::new(vec![
        process("db")
            .ready(probe(1_000))
            .restart(RestartPolicy::Always),
        process("api").after("db", Ready),
    ]);
    sim.start();
    sim.make_ready("db");
    sim.spawned("api");
    sim.take();
    disable(&mut sim, "db");
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal api#1 graceful"]);
    sim.killed("api", 15);
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal db#1 graceful"]);
    sim.killed("db", 15);
    assert_eq!(sim.state("db"), State::Stopped);
    assert_eq!(
        sim.view("db").reason,
        Some("disabled by cli:bob: db under maintenance")
    );
    // Neither a start, a restart nor time brings it back.
    sim.start_unit("db");
    sim.restart_unit("db");
    sim.start_unit("api");
    for _ in 0..20 {
        sim.advance_to_next();
    }
    assert_eq!(sim.take_only(&["spawn"]), Vec::<String>::new());
    assert_eq!(sim.state("db"), State::Stopped);
    assert_eq!(sim.state("api"), State::Skipped);
}

#[test]
fn a_unit_disabled_before_the_boot_skips_its_dependents_and_degrades_the_boot() {
    let mut sim = Sim::new(vec![
        process("db").critical(),
        process("api").critical().after("db", Ready),
        process("cache"),
    ]);
    let db = sim.id("db");
    assert!(
        sim.engine
            .preset_disabled(db, "disabled by cli:bob: restore".to_string())
    );
    sim.start();
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn cache#1"]);
    sim.spawned("cache");
    assert_eq!(sim.state("db"), State::Stopped);
    assert_eq!(sim.state("api"), State::Skipped);
    assert_eq!(
        sim.view("api").reason,
        Some("dependency db disabled by cli:bob: restore")
    );
    // Not a NO-GO (an operator's choice), not a GO that hides it.
    assert_eq!(sim.outcome(), Some(Outcome::Degraded { failed: vec![db] }));
}

#[test]
fn enable_brings_the_unit_up_through_its_gate_then_its_skipped_dependents_one_after_another() {
    let mut sim = Sim::new(vec![
        process("db").ready(probe(1_000)),
        process("queue").ready(probe(1_000)).after("db", Ready),
        process("api").ready(probe(1_000)).after("queue", Ready),
        process("web").after("api", Ready),
    ]);
    let queue = sim.id("queue");
    sim.engine
        .preset_disabled(queue, "disabled by operator: x".to_string());
    sim.start();
    sim.make_ready("db");
    sim.take();
    assert_eq!(sim.state("api"), State::Skipped);
    assert_eq!(sim.state("web"), State::Skipped);
    // Enabling api while its dependency is disabled starts nothing.
    let api = sim.id("api");
    sim.command(Command::Enable(api));
    sim.start_unit("api");
    assert_eq!(sim.take_only(&["spawn"]), Vec::<String>::new());
    sim.command(Command::Enable(queue));
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn queue#1"]);
    sim.spawned("queue");
    // api waits for the queue's readiness gate.
    assert_eq!(sim.take_only(&["spawn"]), Vec::<String>::new());
    sim.make_ready("queue");
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn api#1"]);
    sim.spawned("api");
    assert_eq!(sim.take_only(&["spawn"]), Vec::<String>::new());
    sim.make_ready("api");
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn web#1"]);
    assert_eq!(sim.engine.disabled(queue), None);
}

#[test]
fn a_quarantined_units_probe_failures_do_not_restart_it_and_release_resumes() {
    let mut sim = Sim::new(vec![
        process("api")
            .ready(probe(1_000))
            .live(probe(1_000))
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.make_ready("api");
    sim.take();
    let api = sim.id("api");
    sim.command(Command::Quarantine(api));
    for _ in 0..10 {
        sim.advance_ms(1_000);
        if sim.has_probe("api", Liveness) {
            sim.probe("api", Liveness, false);
        }
        if sim.has_probe("api", Readiness) {
            sim.probe("api", Readiness, false);
        }
    }
    assert_eq!(sim.take_only(&["signal", "spawn"]), Vec::<String>::new());
    assert_eq!(sim.state("api"), State::Ready);
    assert!(sim.engine.quarantined(api));
    // Released: the probes count again; failing liveness now restarts it.
    sim.command(Command::Release(api));
    for _ in 0..10 {
        sim.advance_ms(1_000);
        if sim.has_probe("api", Liveness) {
            sim.probe("api", Liveness, false);
        }
    }
    let signals = sim.take_only(&["signal"]);
    assert!(
        signals.iter().any(|s| s.ends_with("signal api#1 graceful")),
        "{signals:?}"
    );
}

#[test]
fn a_quarantine_ends_with_the_process_it_froze() {
    let mut sim = Sim::new(vec![
        process("api")
            .ready(probe(1_000))
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.make_ready("api");
    let api = sim.id("api");
    sim.command(Command::Quarantine(api));
    assert!(sim.engine.quarantined(api));
    // Killed from outside while frozen: the next incarnation is not quarantined, so its
    // readiness probe counts and it becomes ready again.
    sim.killed("api", 9);
    assert!(!sim.engine.quarantined(api));
    for _ in 0..10 {
        sim.advance_to_next();
    }
    sim.make_ready("api");
    assert_eq!(sim.state("api"), State::Ready);
    assert_eq!(sim.view("api").restarts, 1);
}

#[test]
fn enable_starts_independent_dependencies_one_at_a_time_each_through_its_gate() {
    let mut sim = Sim::new(vec![
        process("db").ready(probe(1_000)),
        process("cache").ready(probe(1_000)),
        process("api")
            .ready(probe(1_000))
            .after("db", Ready)
            .after("cache", Ready),
        process("web").after("api", Ready),
    ]);
    let api = sim.id("api");
    sim.engine
        .preset_disabled(api, "disabled by operator: x".to_string());
    sim.start();
    sim.make_ready("db");
    sim.make_ready("cache");
    sim.stop_unit("db");
    sim.killed("db", 15);
    sim.stop_unit("cache");
    sim.killed("cache", 15);
    sim.take();
    sim.command(Command::Enable(api));
    // One dependency at a time: the second waits for the first's readiness.
    let first = sim.take_only(&["spawn"]);
    assert_eq!(first.len(), 1, "{first:?}");
    let (first, second) = if first[0].contains("db#") {
        ("db", "cache")
    } else {
        ("cache", "db")
    };
    sim.spawned(first);
    assert_eq!(sim.take_only(&["spawn"]), Vec::<String>::new());
    sim.make_ready(first);
    let next = sim.take_only(&["spawn"]);
    assert_eq!(next.len(), 1, "{next:?}");
    assert!(next[0].contains(&format!("spawn {second}#2")), "{next:?}");
    sim.make_ready(second);
    let next = sim.take_only(&["spawn"]);
    assert_eq!(next.len(), 1, "{next:?}");
    assert!(next[0].contains("spawn api#1"), "{next:?}");
    sim.make_ready("api");
    assert_eq!(sim.state("api"), State::Ready);
    // web was stopped by the stop of db (a stop takes hard dependents down for good), so
    // it stays stopped, as after `gantry start`.
    assert_eq!(sim.take_only(&["spawn"]), Vec::<String>::new());
}

//! A disabled unit under virtual time when what it depends on recovers: neither a restart of its
//! dependency nor that dependency's crash-and-restart starts it again; enable does.

mod support;

use gantry_engine::{Command, Condition, RestartPolicy, State};
use support::*;

#[test]
fn a_dependencys_recovery_does_not_start_a_disabled_unit() {
    let mut sim = Sim::new(vec![
        process("db")
            .ready(probe(1_000))
            .restart(RestartPolicy::Always),
        process("api").after("db", Condition::Ready),
    ]);
    sim.start();
    sim.make_ready("db");
    sim.spawned("api");
    sim.take();
    let api = sim.id("api");
    sim.command(Command::Disable {
        unit: api,
        why: "disabled by cli:bob: bad build".to_string(),
    });
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal api#1 graceful"]);
    sim.killed("api", 15);
    assert_eq!(sim.state("api"), State::Stopped);

    // db restarts (a command) and becomes ready again: api stays down.
    sim.restart_unit("db");
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal db#1 graceful"]);
    sim.killed("db", 15);
    for _ in 0..5 {
        sim.advance_to_next();
    }
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn db#2"]);
    sim.make_ready("db");
    for _ in 0..20 {
        sim.advance_to_next();
    }
    let spawns: Vec<String> = sim
        .take_only(&["spawn"])
        .into_iter()
        .filter(|s| s.contains("api"))
        .collect();
    assert_eq!(spawns, Vec::<String>::new());
    assert_eq!(sim.state("api"), State::Stopped);
    assert_eq!(
        sim.engine.disabled(api),
        Some("disabled by cli:bob: bad build")
    );

    // Enable brings it back once its dependency is ready.
    sim.command(Command::Enable(api));
    let spawns = sim.take_only(&["spawn"]);
    assert_eq!(spawns.len(), 1, "{spawns:?}");
    assert!(spawns[0].ends_with("spawn api#2"), "{spawns:?}");
}

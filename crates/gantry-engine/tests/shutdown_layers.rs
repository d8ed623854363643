//! Shutdown in reverse layer order (virtual time): a unit of layer k is signalled only once every unit of the layers above it has stopped.

mod support;

use gantry_engine::{Condition::*, State};
use support::*;

/// The shape: stores, schema, apis, workers.
fn stack() -> Sim {
    let mut sim = Sim::new(vec![
        process("pg"),
        process("redis"),
        task("migrate").after("pg", Ready).layer(1),
        process("api")
            .after("pg", Ready)
            .layer(2)
            .stop_timeout(2_000),
        process("worker")
            .after("redis", Ready)
            .after("api", Ready)
            .layer(3),
        process("mailer").after("redis", Ready).layer(3),
    ]);
    sim.start();
    sim.spawned("pg");
    sim.spawned("redis");
    sim.spawned("migrate");
    sim.exit("migrate", 0);
    sim.spawned("api");
    sim.spawned("worker");
    sim.spawned("mailer");
    let spawns = sim.take_only(&["spawn"]);
    assert_eq!(spawns.len(), 6, "every unit started: {spawns:?}");
    sim
}

#[test]
fn the_stores_stop_last_and_each_layer_waits_for_the_ones_above() {
    let mut sim = stack();
    sim.shutdown();
    // Only the top layer: pg and redis have no running dependents of their own
    // left in lower layers, but layers are barriers at stop too.
    assert_eq!(
        sim.take_only(&["signal"]),
        [
            "0ms signal worker#1 graceful",
            "0ms signal mailer#1 graceful"
        ]
    );
    sim.advance_ms(10);
    sim.killed("worker", 15);
    assert!(
        sim.take_only(&["signal"]).is_empty(),
        "mailer (layer 3) is still running"
    );
    sim.advance_ms(10);
    sim.killed("mailer", 15);
    assert_eq!(sim.take_only(&["signal"]), ["20ms signal api#1 graceful"]);
    sim.advance_ms(10);
    sim.exit("api", 0);
    assert_eq!(
        sim.take_only(&["signal"]),
        ["30ms signal pg#1 graceful", "30ms signal redis#1 graceful"]
    );
    sim.killed("pg", 15);
    sim.killed("redis", 15);
    assert_eq!(sim.grep("finished"), ["30ms finished 0"]);
    for name in ["pg", "redis", "api", "worker", "mailer"] {
        assert_eq!(sim.state(name), State::Stopped, "{name}");
    }
}

#[test]
fn a_unit_that_ignores_the_stop_signal_holds_the_lower_layers_until_it_is_killed() {
    let mut sim = stack();
    sim.shutdown();
    sim.take();
    sim.killed("worker", 15);
    sim.killed("mailer", 15);
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal api#1 graceful"]);
    sim.advance_ms(1_999);
    assert!(sim.take_only(&["signal"]).is_empty());
    sim.advance_ms(1);
    assert_eq!(sim.take_only(&["signal"]), ["2000ms signal api#1 kill"]);
    sim.killed("api", 9);
    assert_eq!(
        sim.take_only(&["signal"]),
        [
            "2000ms signal pg#1 graceful",
            "2000ms signal redis#1 graceful"
        ]
    );
}

#[test]
fn within_a_layer_the_order_is_still_reverse_dependency_order() {
    let mut sim = Sim::new(vec![
        process("pg"),
        process("pgbouncer").after("pg", Ready),
        process("api").after("pgbouncer", Ready).layer(1),
    ]);
    sim.start();
    sim.spawned("pg");
    sim.spawned("pgbouncer");
    sim.spawned("api");
    sim.take();
    sim.shutdown();
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal api#1 graceful"]);
    sim.killed("api", 15);
    assert_eq!(
        sim.take_only(&["signal"]),
        ["0ms signal pgbouncer#1 graceful"]
    );
    sim.killed("pgbouncer", 15);
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal pg#1 graceful"]);
}

#[test]
fn an_empty_middle_layer_does_not_stall_the_ones_below() {
    // migrate (layer 1) completed long ago: nothing of layer 1 is going down, so
    // when api (layer 2) stops, layer 0 follows at once.
    let mut sim = Sim::new(vec![
        process("pg"),
        task("migrate").after("pg", Ready).layer(1),
        process("api").layer(2),
    ]);
    sim.start();
    sim.spawned("pg");
    sim.spawned("migrate");
    sim.exit("migrate", 0);
    sim.spawned("api");
    sim.take();
    sim.shutdown();
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal api#1 graceful"]);
    sim.advance_ms(5);
    sim.killed("api", 15);
    assert_eq!(sim.take_only(&["signal"]), ["5ms signal pg#1 graceful"]);
}

#[test]
fn a_task_cleanup_in_a_higher_layer_runs_before_the_lower_layers_stop() {
    let mut sim = Sim::new(vec![
        process("pg"),
        task("migrate").after("pg", Ready).layer(1).cleanup(),
    ]);
    sim.start();
    sim.spawned("pg");
    sim.spawned("migrate");
    sim.exit("migrate", 0);
    sim.take();
    sim.shutdown();
    assert_eq!(
        sim.take_only(&["signal", "cleanup"]),
        ["0ms cleanup migrate"]
    );
    sim.advance_ms(7);
    sim.cleanup_done("migrate", true);
    assert_eq!(
        sim.take_only(&["signal", "cleanup"]),
        ["7ms signal pg#1 graceful"]
    );
}

#[test]
fn a_kill_is_not_held_by_layers() {
    let mut sim = stack();
    sim.shutdown();
    sim.take();
    sim.kill();
    let kills = sim.take_only(&["signal"]);
    for name in ["pg", "redis", "api", "worker", "mailer"] {
        assert!(
            kills
                .iter()
                .any(|l| l.contains(&format!("signal {name}#1 kill"))),
            "{name} not killed: {kills:?}"
        );
    }
}

#[test]
fn stopping_one_store_by_command_is_not_held_by_the_layers_above() {
    // `gantry stop redis` stops redis and what depends on it, not the whole stack
    // above it: layers order a shutdown only.
    let mut sim = stack();
    sim.stop_unit("redis");
    assert_eq!(
        sim.take_only(&["signal"]),
        [
            "0ms signal worker#1 graceful",
            "0ms signal mailer#1 graceful"
        ]
    );
    sim.killed("worker", 15);
    sim.killed("mailer", 15);
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal redis#1 graceful"]);
    assert!(sim.grep("signal api").is_empty(), "{:?}", sim.log());
    assert!(sim.grep("signal pg").is_empty(), "{:?}", sim.log());
}

//! A unit's definition replaced while the stack runs (a reload), on virtual time: taken on at the unit's next start, the graph refused, untouched units left alone.

mod support;

use gantry_engine::State;
use support::*;

/// `db` <- `api` <- `web`, plus a lone `cache`; every process is started on spawn.
fn stack() -> Sim {
    let mut sim = Sim::new(vec![
        process("db"),
        process("api").after("db", gantry_engine::Condition::Started),
        process("web").after("api", gantry_engine::Condition::Started),
        process("cache"),
    ])
    .cooperative();
    sim.start();
    sim.run_timers(100);
    for name in ["db", "api", "web", "cache"] {
        assert_eq!(sim.state(name), State::Running, "{name}");
    }
    sim
}

#[test]
fn a_replaced_definition_is_taken_on_at_the_restart_and_dependents_follow() {
    let mut sim = stack();
    let api = sim.id("api");
    let mut config = sim.view("api").config.clone();
    assert!(config.readiness.is_none());
    config.readiness = Some(probe(100));
    config.stop_timeout = ms(1_234);
    // The process is up: the new definition waits for its next start.
    assert_eq!(sim.engine.replace_config(api, config.clone()), Ok(false));
    assert!(sim.view("api").config.readiness.is_none());
    let cache_spawns = sim.spawn_times("cache").len();
    let db_spawns = sim.spawn_times("db").len();
    sim.restart_unit("api");
    sim.run_timers(100);
    assert_eq!(sim.view("api").config, &config);
    // The new readiness probe is run (and passes: the world is cooperative).
    assert_eq!(sim.state("api"), State::Ready);
    assert_eq!(sim.spawn_times("api").len(), 2);
    // Its dependent was restarted after it, the rest left alone.
    assert_eq!(sim.spawn_times("web").len(), 2);
    assert_eq!(sim.state("web"), State::Running);
    assert_eq!(sim.spawn_times("cache").len(), cache_spawns);
    assert_eq!(sim.spawn_times("db").len(), db_spawns);
}

#[test]
fn a_unit_without_a_process_takes_the_definition_at_once() {
    let mut sim = stack();
    sim.stop_unit("cache");
    sim.run_timers(100);
    assert_eq!(sim.state("cache"), State::Stopped);
    let cache = sim.id("cache");
    let mut config = sim.view("cache").config.clone();
    config.liveness = Some(probe(500));
    assert_eq!(sim.engine.replace_config(cache, config.clone()), Ok(true));
    assert_eq!(sim.view("cache").config, &config);
    // Not started by the replacement: a stopped unit stays stopped.
    sim.run_timers(10);
    assert_eq!(sim.state("cache"), State::Stopped);
    sim.start_unit("cache");
    sim.run_timers(100);
    assert_eq!(sim.state("cache"), State::Running);
}

#[test]
fn the_graph_cannot_change_by_a_replacement() {
    let mut sim = stack();
    let web = sim.id("web");
    let mut config = sim.view("web").config.clone();
    config.deps.clear();
    let err = sim.engine.replace_config(web, config).unwrap_err();
    assert_eq!(
        err,
        "the dependencies of web cannot change while the stack runs"
    );
    let mut config = sim.view("web").config.clone();
    config.name = "www".into();
    assert!(sim.engine.replace_config(web, config).is_err());
    // Nothing was kept for later either.
    sim.restart_unit("web");
    sim.run_timers(100);
    assert_eq!(sim.view("web").name, "web");
    assert_eq!(sim.view("web").config.deps.len(), 1);
}

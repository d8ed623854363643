//! Temporary: prints traces for review.
mod support;
use gantry_engine::*;
use support::*;
#[test]
fn show() {
    let mut sim = Sim::new(vec![process("db").retry(10, 100, 10_000).breaker(3, 5_000).ready(probe(1000)).start_timeout(50)]);
    sim.start();
    sim.spawn_failed("db", "boom");
    sim.advance_to_next();
    sim.spawned("db");
    sim.exit("db", 3);
    sim.advance_to_next();
    sim.spawned("db");
    sim.advance_ms(50);
    sim.exit("db", 9);
    sim.advance_to_next();
    sim.spawned("db");
    sim.probe("db", ProbeRole::Readiness, true);
    sim.shutdown();
    sim.killed("db", 15);
    for l in sim.log() { eprintln!("{l}"); }
    eprintln!("----");
    let mut sim = Sim::degraded(vec![process("db").cleanup(), process("cache").critical().ready(probe(10)).start_timeout(100), process("api").after("db", Condition::Ready)]);
    sim.start();
    sim.spawned("db"); sim.spawned("cache"); sim.spawned("api");
    sim.run_timers(1000);
    sim.killed("api", 15);
    sim.killed("db", 15);
    sim.exit("cache", 9);
    sim.cleanup_done("db", true);
    for l in sim.log() { if !l.contains("probe") { eprintln!("{l}"); } }
}

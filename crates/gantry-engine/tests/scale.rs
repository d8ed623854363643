//! Scale check: 10,000-unit graphs boot and shut down; run with --release and --nocapture to see timings.

mod support;

use gantry_engine::{Condition, Outcome, State};
use support::*;

// The wall clock only measures the test itself (printed timings); the engine runs on virtual time.
#[allow(clippy::disallowed_methods)]
fn run(name: &str, units: Vec<U>) {
    let n = units.len();
    let started = std::time::Instant::now();
    let mut sim = Sim::new(units).cooperative();
    sim.start();
    sim.run_timers(10);
    assert_eq!(sim.outcome(), Some(Outcome::Go), "{name}");
    let booted = started.elapsed();
    sim.shutdown();
    assert!(sim.engine.is_finished(), "{name}");
    assert!(sim.engine.units().all(|u| u.state == State::Stopped));
    eprintln!(
        "{name}: {n} units, boot {booted:?}, total {:?}",
        started.elapsed()
    );
}

#[test]
fn ten_thousand_units_fan_out() {
    let mut units = vec![process("db").ready(probe(1_000))];
    for i in 0..10_000 {
        units.push(process(&format!("svc{i}")).after("db", Condition::Ready));
    }
    run("fan-out", units);
}

#[test]
fn ten_thousand_units_fan_in() {
    let mut units = Vec::new();
    let mut ingress = process("ingress");
    for i in 0..10_000 {
        units.push(process(&format!("svc{i}")).ready(probe(1_000)));
        ingress = ingress.after(&format!("svc{i}"), Condition::Ready);
    }
    units.push(ingress);
    run("fan-in", units);
}

#[test]
fn ten_thousand_units_chain() {
    let mut units = vec![process("u0")];
    for i in 1..10_000 {
        units.push(process(&format!("u{i}")).after(&format!("u{}", i - 1), Condition::Ready));
    }
    run("chain", units);
}

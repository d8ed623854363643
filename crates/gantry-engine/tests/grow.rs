//! Units added to a running engine under virtual time: they arrive stopped with their reason,
//! every cached count stays right, and an enable starts them dependencies first, each through
//! its gate; adding is refused before the boot is decided and for a name already taken.

mod support;

use gantry_engine::{Command, Condition, State};
use support::*;

use Condition::Ready;

#[test]
fn added_units_arrive_stopped_and_an_enable_starts_them_dependencies_first() {
    let mut sim = Sim::new(vec![process("db").ready(probe(1_000))]);
    // Before the boot is decided: refused.
    let early = sim.add(vec![process("early")], "left out");
    assert!(early.is_err(), "{early:?}");
    sim.start();
    sim.make_ready("db");
    assert!(sim.outcome().is_some());
    sim.take();

    let ids = sim
        .add(
            vec![
                process("worker")
                    .ready(probe(1_000))
                    .after("db", Ready)
                    .after("queue", Ready),
                process("queue").ready(probe(1_000)).after("db", Ready),
            ],
            "left out by the selection",
        )
        .expect("added");
    assert_eq!(ids.len(), 2);
    assert_eq!(sim.state("worker"), State::Stopped);
    assert_eq!(sim.state("queue"), State::Stopped);
    assert_eq!(sim.view("worker").reason, Some("left out by the selection"));
    assert!(
        sim.take_only(&["spawn"]).is_empty(),
        "nothing starts by itself"
    );
    sim.engine.check_invariants().expect("books right");

    // A name already taken: refused, nothing changes.
    assert!(sim.add(vec![process("db")], "again").is_err());

    // Enable: queue first (worker's dependency), then worker once queue is ready.
    let worker = sim.id("worker");
    sim.command(Command::Enable(worker));
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn queue#1"]);
    sim.make_ready("queue");
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn worker#1"]);
    sim.make_ready("worker");
    assert_eq!(sim.state("worker"), State::Ready);
    sim.engine.check_invariants().expect("books right");

    // The added units take part in the shutdown like the others: dependents first.
    sim.command(Command::Shutdown);
    let first = sim.take_only(&["signal"]);
    assert_eq!(first, ["0ms signal worker#1 graceful"], "{first:?}");
}

#[test]
fn added_units_started_together_start_in_dependency_order() {
    let mut sim = Sim::new(vec![process("db").ready(probe(1_000))]);
    sim.start();
    sim.make_ready("db");
    sim.take();
    sim.add(
        vec![
            process("queue").ready(probe(1_000)).after("db", Ready),
            process("worker").ready(probe(1_000)).after("queue", Ready),
        ],
        "added by a reload",
    )
    .expect("added");
    // Started in plan order, as a reload does: each waits for its dependencies' gates.
    for name in ["queue", "worker"] {
        let id = sim.id(name);
        sim.command(Command::Start(id));
    }
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn queue#1"]);
    sim.make_ready("queue");
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn worker#1"]);
    sim.make_ready("worker");
    assert_eq!(sim.state("worker"), State::Ready);
    sim.engine.check_invariants().expect("books right");
}

/// Restarts a command asked for are counted apart from crashes (alerts count only the latter).
#[test]
fn commanded_restarts_are_counted_apart_from_crashes() {
    use gantry_engine::RestartPolicy;
    let mut sim = Sim::new(vec![process("api").restart(RestartPolicy::Always)]);
    sim.auto_spawn = true;
    sim.auto_exit = true;
    sim.start();
    sim.advance(ms(2_000));
    sim.restart_unit("api");
    sim.advance(ms(2_000));
    sim.exit("api", 1);
    sim.advance(ms(2_000));
    let v = sim.view("api");
    assert_eq!((v.restarts, v.commanded_restarts), (2, 1), "{v:?}");
}

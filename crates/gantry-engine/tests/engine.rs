//! Scenario tests of the lifecycle engine under virtual time: boot ordering, gates, retries, restarts and shutdown.

mod support;

use gantry_engine::{
    Action, BreakerState, Command, Condition, Engine, EngineError, EngineOptions, Event,
    ExitStatus, Outcome, ProbeRole, RestartPolicy, State, Time, UnitId,
};
use support::*;

use Condition::{Completed, Ready, Started};
use ProbeRole::{Liveness, Readiness, Startup};

// ----- Starting -----------------------------------------------------------

#[test]
fn independent_units_start_in_parallel_at_the_same_instant() {
    let mut sim = Sim::new(vec![
        process("db"),
        process("cache"),
        process("queue"),
        process("api").after("db", Ready),
    ]);
    sim.start();
    assert_eq!(
        sim.take_only(&["spawn"]),
        ["0ms spawn db#1", "0ms spawn cache#1", "0ms spawn queue#1"]
    );
    assert_eq!(sim.state("api"), State::Pending);
}

#[test]
fn dependent_waits_for_exactly_n_consecutive_passes() {
    let mut gate = probe(1_000);
    gate.success_threshold = 3;
    let mut sim = Sim::new(vec![
        process("db").ready(gate),
        process("api").after("db", Ready),
    ]);
    sim.start();
    sim.spawned("db");
    sim.probe("db", Readiness, true);
    sim.advance_ms(1);
    sim.probe("db", Readiness, true);
    sim.advance_ms(1);
    // A failure after two passes resets the streak.
    sim.probe("db", Readiness, false);
    sim.advance_ms(1);
    sim.probe("db", Readiness, true);
    sim.advance_ms(1);
    sim.probe("db", Readiness, true);
    assert_eq!(sim.state("db"), State::Starting);
    assert!(
        sim.spawn_times("api").is_empty(),
        "api started before db's gate held"
    );
    sim.advance_ms(1);
    sim.probe("db", Readiness, true);
    assert_eq!(sim.state("db"), State::Ready);
    assert_eq!(sim.spawn_times("api"), [5]);
    assert_eq!(sim.probe_times("db", Readiness).len(), 6);
}

#[test]
fn started_ready_and_completed_conditions() {
    let mut sim = Sim::new(vec![
        process("db").ready(probe(1_000)),
        task("migrate").after("db", Ready),
        process("tail").after("db", Started),
        process("api").after("migrate", Completed),
    ]);
    sim.start();
    sim.take();
    sim.advance_ms(2);
    sim.spawned("db");
    // Started is met by a live process, before any readiness.
    assert_eq!(sim.take_only(&["spawn"]), ["2ms spawn tail#1"]);
    sim.advance_ms(3);
    sim.probe("db", Readiness, true);
    assert_eq!(sim.take_only(&["spawn"]), ["5ms spawn migrate#1"]);
    sim.spawned("migrate");
    sim.advance_ms(10);
    // A running task does not satisfy Completed.
    assert!(sim.spawn_times("api").is_empty());
    sim.exit("migrate", 0);
    assert_eq!(sim.state("migrate"), State::Completed);
    assert_eq!(sim.take_only(&["spawn"]), ["15ms spawn api#1"]);
}

#[test]
fn layers_are_barriers() {
    let mut sim = Sim::degraded(vec![
        process("db").ready(probe(1_000)),
        process("flaky"),
        process("api").layer(1),
        process("ui").layer(2),
    ]);
    sim.start();
    assert_eq!(
        sim.take_only(&["spawn"]),
        ["0ms spawn db#1", "0ms spawn flaky#1"]
    );
    sim.spawned("db");
    sim.advance_ms(4);
    // flaky failing non-critically still settles layer 0.
    sim.spawn_failed("flaky", "command not found");
    assert!(
        sim.take_only(&["spawn"]).is_empty(),
        "layer 1 opened before db was ready"
    );
    sim.probe("db", Readiness, true);
    assert_eq!(sim.take_only(&["spawn"]), ["4ms spawn api#1"]);
    sim.advance_ms(1);
    sim.spawned("api");
    assert_eq!(sim.take_only(&["spawn"]), ["5ms spawn ui#1"]);
}

#[test]
fn startup_probe_runs_before_readiness() {
    let mut sim = Sim::new(vec![
        process("db").startup(probe(1_000)).ready(probe(1_000)),
    ]);
    sim.start();
    sim.spawned("db");
    assert!(sim.has_probe("db", Startup));
    assert!(!sim.has_probe("db", Readiness));
    sim.probe("db", Startup, false);
    sim.advance_ms(1);
    assert!(!sim.has_probe("db", Readiness));
    sim.probe("db", Startup, true);
    assert!(sim.has_probe("db", Readiness));
    sim.probe("db", Readiness, true);
    assert_eq!(sim.state("db"), State::Ready);
}

#[test]
fn process_without_readiness_runs_right_after_spawn() {
    let mut sim = Sim::new(vec![process("worker")]);
    sim.start();
    sim.advance_ms(7);
    sim.spawned("worker");
    assert_eq!(
        sim.take(),
        [
            "0ms worker: pending -> starting",
            "0ms spawn worker#1",
            "7ms worker: starting -> running",
            "7ms boot go",
        ]
    );
    assert_eq!(sim.view("worker").ready_at, Some(Time::from_millis(7)));
    assert!(sim.view("worker").pid.is_some());
}

#[test]
fn a_process_without_probes_counts_as_started_only_after_its_start_grace() {
    let mut sim = Sim::new(vec![
        process("worker").grace(250),
        process("ready_dep").after("worker", Ready),
        process("started_dep").after("worker", Started),
    ]);
    sim.start();
    sim.advance_ms(7);
    sim.spawned("worker");
    sim.advance_ms(100);
    assert_eq!(sim.state("worker"), State::Starting);
    assert_eq!(sim.spawn_times("started_dep"), Vec::<u64>::new());
    sim.advance_ms(150);
    assert_eq!(
        sim.take_only(&["worker:", "spawn"]),
        [
            "0ms worker: pending -> starting",
            "0ms spawn worker#1",
            "257ms worker: starting -> running",
            "257ms spawn started_dep#1",
            "257ms spawn ready_dep#1",
        ]
    );
    assert_eq!(sim.view("worker").ready_at, Some(Time::from_millis(257)));
}

/// Issue 14, item 9: a critical process without a readiness probe that exits right after
/// its spawn was counted as started (GO, dependents started). Now it is NO-GO.
#[test]
fn an_immediate_crash_of_a_critical_process_without_probes_is_nogo() {
    let mut sim = Sim::new(vec![
        process("core").grace(250).critical().retry(2, 100, 100),
        process("api").after("core", Started),
    ]);
    sim.start();
    sim.spawned("core");
    sim.advance_ms(5);
    sim.exit("core", 3);
    assert_eq!(sim.state("core"), State::Starting);
    sim.advance_ms(100);
    sim.spawned("core");
    sim.advance_ms(5);
    sim.exit("core", 3);
    assert_eq!(
        sim.outcome(),
        Some(Outcome::NoGo {
            unit: sim.id("core"),
            reason:
                "exited within its start_grace of 250ms (exit code 3) (gave up after 2 attempts)"
                    .into()
        })
    );
    assert_eq!(sim.spawn_times("api"), Vec::<u64>::new());
    assert_eq!(sim.engine.exit_code(), 1);
}

#[test]
fn services_with_a_probe_never_wait_for_the_grace() {
    let mut sim = Sim::new(vec![
        process("db").grace(250).ready(probe(1_000)),
        process("api").grace(250).startup(probe(1_000)),
        external("pg").grace(250),
        process("web")
            .after("db", Ready)
            .after("api", Ready)
            .after("pg", Ready),
    ]);
    sim.start();
    sim.make_ready("db");
    sim.spawned("api");
    sim.probe("api", Startup, true);
    assert_eq!(sim.spawn_times("web"), [0]);
    assert_eq!(sim.state("pg"), State::Ready);
}

// ----- Readiness probing ----------------------------------------------------

#[test]
fn adaptive_probe_schedule_first_at_once_then_min_interval_then_capped() {
    let mut p = probe(1_000);
    p.initial_delay = ms(20);
    let mut sim = Sim::new(vec![process("db").ready(p)]);
    sim.start();
    sim.advance_ms(10);
    sim.spawned("db");
    assert!(
        !sim.has_probe("db", Readiness),
        "initial_delay not honoured"
    );
    sim.advance_ms(20);
    assert_eq!(sim.probe_times("db", Readiness), [30]);
    // Early on, the next run follows the result by min_interval (1ms).
    for _ in 0..5 {
        sim.probe("db", Readiness, false);
        sim.advance_to_next();
    }
    assert_eq!(sim.probe_times("db", Readiness), [30, 31, 32, 33, 34, 35]);

    // No overlap: while a run is outstanding nothing else is scheduled.
    assert_eq!(sim.engine.poll_timeout(), None);
    sim.advance_ms(400);
    assert_eq!(sim.probe_times("db", Readiness).len(), 6);
    // 405ms after probing began: interval = 405/50 = 8.1ms, measured from
    // the result.
    sim.probe("db", Readiness, false);
    let next = sim.engine.poll_timeout().unwrap();
    assert_eq!(next - sim.now, std::time::Duration::from_micros(8_100));

    // Much later the interval is capped at the period.
    sim.advance_to_next();
    sim.advance_ms(100_000);
    sim.probe("db", Readiness, false);
    assert_eq!(sim.engine.poll_timeout().unwrap() - sim.now, ms(1_000));
}

#[test]
fn readiness_failures_do_not_fail_the_service_but_start_timeout_does() {
    let mut p = probe(10);
    p.failure_threshold = 1;
    let mut sim = Sim::new(vec![process("db").ready(p).start_timeout(500)]);
    sim.start();
    sim.spawned("db");
    for _ in 0..30 {
        sim.probe("db", Readiness, false);
        sim.advance_to_next();
    }
    assert_eq!(sim.state("db"), State::Starting);
    sim.advance_ms(500);
    assert_eq!(sim.state("db"), State::Failed);
    assert_eq!(
        sim.view("db").last_error,
        Some("did not become ready within 500ms (last readiness probe: connection refused)")
    );
    assert_eq!(sim.grep("signal"), ["500ms signal db#1 kill"]);
}

#[test]
fn pushed_probes_are_never_polled() {
    let mut sim = Sim::new(vec![
        process("api").ready(pushed()),
        process("web").after("api", Ready),
    ]);
    sim.start();
    sim.spawned("api");
    sim.advance_ms(50);
    assert!(sim.probe_times("api", Readiness).is_empty());
    assert_eq!(sim.engine.poll_timeout(), None);
    sim.push("api", Readiness, true);
    assert_eq!(sim.state("api"), State::Ready);
    assert_eq!(sim.spawn_times("web"), [50]);
}

// ----- Retries, timeouts, breaker ------------------------------------------

#[test]
fn retries_back_off_exactly_without_jitter() {
    let mut sim = Sim::new(vec![process("db").retry(4, 100, 250)]);
    sim.start();
    for _ in 0..3 {
        sim.spawn_failed("db", "command not found: postgres");
        sim.advance_to_next();
    }
    assert_eq!(sim.spawn_times("db"), [0, 100, 300, 550]);
    sim.spawn_failed("db", "command not found: postgres");
    assert_eq!(sim.state("db"), State::Failed);
    assert_eq!(
        sim.view("db").last_error,
        Some("failed to spawn: command not found: postgres")
    );
    assert_eq!(
        sim.grep("-> failed"),
        [
            "550ms db: starting -> failed (failed to spawn: command not found: postgres (gave up after 4 attempts))"
        ]
    );
    assert_eq!(
        sim.grep("attempt 2 failed"),
        [
            "100ms db: starting -> starting (attempt 2 failed: failed to spawn: command not found: postgres; retrying in 200ms)"
        ]
    );
}

#[test]
fn one_attempt_means_no_retry() {
    let mut sim = Sim::new(vec![process("db").ready(probe(1_000)).retry(1, 100, 1_000)]);
    sim.start();
    sim.spawned("db");
    sim.exit("db", 2);
    assert_eq!(sim.state("db"), State::Failed);
    assert_eq!(
        sim.view("db").last_error,
        Some("exited before becoming ready (exit code 2)")
    );
    sim.run_timers(10);
    assert_eq!(sim.spawn_times("db"), [0]);
}

#[test]
fn start_timeout_kills_and_retries_after_the_old_process_is_gone() {
    let mut sim = Sim::new(vec![
        process("db")
            .ready(probe(1_000))
            .start_timeout(500)
            .retry(2, 100, 100),
    ]);
    sim.start();
    sim.spawned("db");
    sim.probe("db", Readiness, false);
    sim.advance_ms(500);
    assert_eq!(
        sim.take_only(&["signal", "db: starting"]),
        [
            "500ms signal db#1 kill",
            "500ms db: starting -> starting (attempt 1 failed: did not become ready within 500ms (last readiness probe: connection refused); retrying in 100ms)",
        ]
    );
    // The killed process has not exited yet: no second copy is started.
    sim.advance_ms(200);
    assert_eq!(sim.spawn_times("db"), [0]);
    assert_eq!(sim.state("db"), State::Starting);
    sim.exit_gen("db", 1, ExitStatus::signal(9));
    assert_eq!(sim.spawn_times("db"), [0, 700]);
    assert_eq!(sim.view("db").attempt, 2);
}

#[test]
fn breaker_opens_then_allows_one_half_open_attempt() {
    let mut sim = Sim::new(vec![process("db").retry(10, 100, 10_000).breaker(3, 5_000)]);
    sim.start();
    sim.spawn_failed("db", "boom");
    sim.advance_to_next();
    sim.spawn_failed("db", "boom");
    sim.advance_to_next();
    sim.spawn_failed("db", "boom");
    assert_eq!(
        sim.view("db").breaker,
        Some(BreakerState::Open {
            until: Time::from_millis(5_300)
        })
    );
    assert_eq!(sim.view("db").retry_at, Some(Time::from_millis(5_300)));
    sim.advance_to_next();
    assert_eq!(sim.view("db").breaker, Some(BreakerState::HalfOpen));
    // The half-open attempt fails: open again for a full cooldown.
    sim.spawn_failed("db", "boom");
    sim.advance_to_next();
    assert_eq!(sim.spawn_times("db"), [0, 100, 300, 5_300, 10_300]);
    sim.spawned("db");
    assert_eq!(sim.state("db"), State::Running);
    assert_eq!(sim.view("db").breaker, Some(BreakerState::Closed));
}

// ----- Start timeout extensions (sd_notify EXTEND_TIMEOUT_USEC) ------------------

#[test]
fn an_extension_keeps_a_slow_unit_alive_past_its_start_timeout() {
    let mut sim = Sim::new(vec![
        process("db").ready(pushed()).start_timeout(300),
        process("api").after("db", Ready),
    ]);
    sim.start();
    sim.spawned("db");
    assert_eq!(sim.view("db").start_deadline, Some(Time::from_millis(300)));
    sim.advance_ms(100);
    sim.extend("db", 2_000);
    assert_eq!(
        sim.view("db").start_deadline,
        Some(Time::from_millis(2_100))
    );
    // A shorter extension never moves the deadline earlier: max(deadline, now + by).
    sim.advance_ms(50);
    sim.extend("db", 10);
    assert_eq!(
        sim.view("db").start_deadline,
        Some(Time::from_millis(2_100))
    );
    // Well past the configured 300 ms: still starting, nothing killed.
    sim.advance_ms(650);
    assert_eq!(sim.state("db"), State::Starting);
    assert!(sim.grep("signal").is_empty(), "{:?}", sim.log());
    sim.push("db", Readiness, true);
    assert_eq!(sim.state("db"), State::Ready);
    assert_eq!(sim.view("db").start_deadline, None);
    assert_eq!(sim.spawn_times("api"), [800]);
    sim.run_timers(10);
    assert_eq!(sim.state("db"), State::Ready);
}

#[test]
fn a_unit_that_extends_once_then_stays_silent_times_out_at_now_plus_by() {
    // Degraded mode: seed failing first must not abort the boot and stop db.
    let mut sim = Sim::degraded(vec![
        process("db").ready(pushed()).start_timeout(300),
        task("seed").start_timeout(300),
    ]);
    sim.start();
    sim.spawned("db");
    sim.spawned("seed");
    sim.advance_ms(100);
    sim.extend("db", 2_000);
    sim.extend("seed", 500);
    sim.advance_ms(499);
    assert_eq!(sim.state("seed"), State::Starting);
    sim.advance_ms(1);
    assert_eq!(sim.state("seed"), State::Failed);
    assert_eq!(
        sim.view("seed").last_error,
        Some("did not complete within 600ms (start_timeout 300ms extended by the service)")
    );
    sim.advance_ms(1_499);
    assert_eq!(sim.state("db"), State::Starting);
    sim.advance_ms(1);
    assert_eq!(sim.state("db"), State::Failed);
    assert_eq!(
        sim.view("db").last_error,
        Some("did not become ready within 2.1s (start_timeout 300ms extended by the service)")
    );
    assert_eq!(
        sim.grep("signal"),
        ["600ms signal seed#1 kill", "2100ms signal db#1 kill"]
    );
}

#[test]
fn extensions_from_another_generation_are_ignored_and_a_new_attempt_starts_afresh() {
    let mut sim = Sim::new(vec![
        process("db")
            .ready(pushed())
            .start_timeout(300)
            .retry(2, 100, 100),
    ]);
    sim.start();
    sim.spawned("db");
    sim.advance_ms(100);
    sim.extend("db", 1_000);
    assert_eq!(
        sim.view("db").start_deadline,
        Some(Time::from_millis(1_100))
    );
    sim.advance_ms(1_000);
    // Attempt 1 timed out at 1.1 s; its process is killed and gone, attempt 2 starts.
    sim.killed("db", 9);
    sim.advance_ms(100);
    assert_eq!(sim.spawn_times("db"), [0, 1_200]);
    sim.spawned("db");
    assert_eq!(sim.generation("db"), 2);
    // The extension of attempt 1 did not carry over.
    assert_eq!(
        sim.view("db").start_deadline,
        Some(Time::from_millis(1_500))
    );
    // Late (generation 1) and future (generation 3) extensions change nothing.
    sim.extend_gen("db", 1, 5_000);
    sim.extend_gen("db", 3, 5_000);
    assert_eq!(
        sim.view("db").start_deadline,
        Some(Time::from_millis(1_500))
    );
    sim.advance_ms(300);
    assert_eq!(sim.state("db"), State::Failed);
    assert_eq!(
        sim.view("db").last_error,
        Some("did not become ready within 300ms")
    );
}

#[test]
fn extensions_are_ignored_once_ready_between_attempts_and_without_a_start_timeout() {
    let mut sim = Sim::new(vec![
        process("db").ready(pushed()).start_timeout(300),
        process("slow")
            .ready(pushed())
            .start_timeout(300)
            .retry(3, 1_000, 1_000),
        process("free").ready(pushed()),
    ]);
    sim.start();
    sim.spawned("db");
    sim.spawned("slow");
    sim.spawned("free");
    sim.push("db", Readiness, true);
    sim.extend("db", 5_000);
    assert_eq!(sim.view("db").start_deadline, None);
    // Between attempts (backing off): no deadline to move.
    sim.exit("slow", 1);
    assert_eq!(sim.view("slow").retry_at, Some(Time::from_millis(1_000)));
    sim.extend("slow", 5_000);
    assert_eq!(sim.view("slow").start_deadline, None);
    // No start_timeout configured: nothing to extend, nothing armed.
    sim.extend("free", 5_000);
    assert_eq!(sim.view("free").start_deadline, None);
    sim.advance_ms(1_000);
    sim.spawned("slow");
    assert_eq!(
        sim.view("slow").start_deadline,
        Some(Time::from_millis(1_300))
    );
    assert_eq!(sim.state("db"), State::Ready);
    assert_eq!(sim.state("free"), State::Starting);
}

// ----- Outcome ----------------------------------------------------------------

#[test]
fn critical_failure_is_nogo_with_reverse_stop_order_and_exit_code_1() {
    let mut sim = Sim::new(vec![
        process("db"),
        process("api").after("db", Ready),
        process("web").after("api", Ready),
        process("vault").critical(),
        process("worker").after("vault", Ready),
        process("slow").ready(probe(1_000)),
    ]);
    sim.start();
    sim.spawned("db");
    sim.spawned("api");
    sim.spawned("web");
    sim.spawned("slow");
    sim.take();
    sim.advance_ms(10);
    sim.spawn_failed("vault", "no such file");
    assert_eq!(
        sim.take_only(&["boot", "signal", "worker", "vault"]),
        [
            "10ms vault: starting -> failed (failed to spawn: no such file)",
            "10ms boot no-go vault: failed to spawn: no such file",
            "10ms worker: pending -> skipped (boot aborted: vault failed)",
            "10ms signal web#1 graceful",
            "10ms signal slow#1 graceful",
        ]
    );
    sim.advance_ms(1);
    sim.killed("web", 15);
    assert_eq!(sim.take_only(&["signal"]), ["11ms signal api#1 graceful"]);
    sim.killed("slow", 15);
    sim.killed("api", 15);
    assert_eq!(sim.take_only(&["signal"]), ["11ms signal db#1 graceful"]);
    sim.killed("db", 15);
    assert_eq!(sim.take_only(&["finished"]), ["11ms finished 1"]);
    assert!(sim.engine.is_finished());
    assert_eq!(
        sim.outcome(),
        Some(Outcome::NoGo {
            unit: sim.id("vault"),
            reason: "failed to spawn: no such file".into()
        })
    );
}

#[test]
fn non_critical_failure_degrades_skips_hard_dependents_and_starts_soft_ones() {
    let mut sim = Sim::degraded(vec![
        process("db"),
        process("cache"),
        process("api").after("cache", Ready).after("db", Ready),
        process("ui").after("api", Ready),
        process("stats").soft_after("cache", Ready),
    ]);
    sim.start();
    sim.spawned("db");
    sim.take();
    sim.spawn_failed("cache", "port in use");
    assert_eq!(
        sim.take_only(&["api", "ui", "spawn", "boot"]),
        [
            "0ms api: pending -> skipped (dependency cache failed)",
            "0ms spawn stats#1",
            "0ms ui: pending -> skipped (dependency api skipped)",
        ]
    );
    sim.spawned("stats");
    assert_eq!(sim.take_only(&["boot"]), ["0ms boot degraded [cache]"]);
    assert_eq!(
        sim.outcome(),
        Some(Outcome::Degraded {
            failed: vec![sim.id("cache")]
        })
    );
}

#[test]
fn non_critical_failure_without_allow_degraded_is_nogo() {
    let mut sim = Sim::new(vec![process("db"), process("cache")]);
    sim.start();
    sim.spawned("db");
    sim.spawn_failed("cache", "port in use");
    assert_eq!(
        sim.outcome(),
        Some(Outcome::NoGo {
            unit: sim.id("cache"),
            reason: "failed to spawn: port in use".into()
        })
    );
    sim.killed("db", 15);
    assert_eq!(sim.grep("finished"), ["0ms finished 1"]);
}

#[test]
fn a_critical_unit_skipped_by_a_failed_dependency_is_nogo() {
    let mut sim = Sim::degraded(vec![
        process("cache"),
        process("api").critical().after("cache", Ready),
    ]);
    sim.start();
    sim.spawn_failed("cache", "boom");
    assert_eq!(
        sim.outcome(),
        Some(Outcome::NoGo {
            unit: sim.id("api"),
            reason: "skipped: dependency cache failed".into()
        })
    );
}

// ----- Tasks and external units ------------------------------------------------

#[test]
fn tasks_complete_on_exit_0_retry_otherwise_and_never_restart() {
    let mut sim = Sim::new(vec![
        task("migrate")
            .retry(2, 50, 50)
            .ready(probe(10))
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.spawned("migrate");
    // Readiness probes do not apply to tasks.
    assert!(sim.probe_times("migrate", Readiness).is_empty());
    assert_eq!(sim.state("migrate"), State::Starting);
    sim.exit("migrate", 3);
    assert_eq!(
        sim.view("migrate").last_error,
        Some("exited with exit code 3")
    );
    sim.advance_ms(50);
    sim.spawned("migrate");
    sim.exit("migrate", 0);
    assert_eq!(sim.state("migrate"), State::Completed);
    sim.run_timers(10);
    assert_eq!(sim.spawn_times("migrate"), [0, 50]);
    assert_eq!(sim.outcome(), Some(Outcome::Go));
}

#[test]
fn task_start_timeout_says_complete() {
    let mut sim = Sim::new(vec![task("seed").start_timeout(1_000)]);
    sim.start();
    sim.spawned("seed");
    sim.advance_ms(1_000);
    assert_eq!(
        sim.view("seed").last_error,
        Some("did not complete within 1s")
    );
    assert_eq!(sim.grep("signal"), ["1000ms signal seed#1 kill"]);
}

#[test]
fn external_units_are_probed_never_spawned() {
    let mut sim = Sim::new(vec![
        external("s3"),
        external("pg")
            .ready(probe(1_000))
            .start_timeout(300)
            .retry(2, 100, 100),
        process("api").after("pg", Ready).after("s3", Ready),
    ]);
    sim.start();
    assert_eq!(sim.state("s3"), State::Ready);
    assert!(sim.spawn_times("s3").is_empty() && sim.spawn_times("pg").is_empty());
    assert_eq!(sim.probe_times("pg", Readiness), [0]);
    sim.probe("pg", Readiness, false);
    sim.advance_ms(300);
    // start_timeout on an external unit: a failed attempt, nothing to kill.
    assert!(sim.grep("signal").is_empty());
    assert_eq!(sim.view("pg").attempt, 1);
    sim.advance_ms(100);
    assert_eq!(sim.view("pg").attempt, 2);
    sim.probe("pg", Readiness, true);
    assert_eq!(sim.state("pg"), State::Ready);
    assert_eq!(sim.spawn_times("api"), [400]);
    // Stopping an external unit needs no signal.
    sim.spawned("api");
    sim.shutdown();
    sim.killed("api", 15);
    assert_eq!(sim.state("pg"), State::Stopped);
    assert_eq!(sim.grep("signal"), ["400ms signal api#1 graceful"]);
    assert!(sim.engine.is_finished());
}

// ----- Running: readiness for the life of the unit --------------------------------

fn gate(period_ms: u64, failures: u32, passes: u32) -> gantry_engine::ProbeConfig {
    let mut p = probe(period_ms);
    p.failure_threshold = failures;
    p.success_threshold = passes;
    p
}

#[test]
fn readiness_keeps_running_while_up_and_a_loss_makes_the_unit_unready_without_a_restart() {
    let mut sim = Sim::new(vec![
        process("db")
            .ready(gate(1_000, 3, 2))
            .restart(RestartPolicy::Always),
        process("api").after("db", Ready),
        process("worker").after("db", Started),
    ]);
    sim.start();
    sim.make_ready("db");
    sim.spawned("api");
    sim.spawned("worker");
    assert_eq!(sim.outcome(), Some(Outcome::Go));
    let pid = sim.view("db").pid;
    sim.take();
    sim.advance_ms(1_000);
    sim.probe("db", Readiness, true);
    // Two failures: still ready.
    for _ in 0..2 {
        sim.advance_ms(1_000);
        sim.probe("db", Readiness, false);
    }
    assert_eq!(sim.state("db"), State::Ready);
    sim.advance_ms(1_000);
    sim.probe("db", Readiness, false);
    assert_eq!(
        sim.take_only(&["db:", "api:", "worker:", "signal", "spawn"]),
        [
            "4001ms db: ready -> unready (readiness failed 3 times: connection refused; not restarted, dependents keep running)",
            "4001ms api: running -> running (dependency db is unready (readiness failed 3 times: connection refused))",
        ]
    );
    let v = sim.view("db");
    assert_eq!(
        (v.pid, v.r#gen, v.restarts, v.readiness_losses),
        (pid, 1, 0, 1)
    );
    assert_eq!(
        v.last_error,
        Some("readiness failed 3 times: connection refused")
    );
    // Two passes at boot (1 ms apart), then the probe runs at its period, never faster,
    // on the shared beat (multiples of the period since the epoch).
    assert_eq!(
        sim.probe_times("db", Readiness),
        [0, 1, 1_000, 2_000, 3_000, 4_000]
    );
    // A gate on its readiness holds meanwhile: api restarted by hand waits.
    sim.restart_unit("api");
    sim.killed("api", 15);
    assert_eq!(sim.state("api"), State::Pending);
    // One pass is not enough (success_threshold 2); the second makes it ready again.
    sim.advance_ms(1_000);
    sim.probe("db", Readiness, true);
    assert_eq!(sim.state("db"), State::Unready);
    sim.advance_ms(1_000);
    sim.probe("db", Readiness, true);
    assert_eq!(
        sim.take_only(&["db:", "signal", "spawn"]),
        [
            "4001ms signal api#1 graceful",
            "6001ms db: unready -> ready (readiness passed 2 times in a row again)",
            "6001ms spawn api#2",
        ]
    );
    assert_eq!(sim.view("db").pid, pid);
    assert_eq!(sim.spawn_times("db"), [0]);
    assert_eq!(sim.spawn_times("worker"), [0]);
}

#[test]
fn running_probes_of_services_up_at_different_instants_fall_due_together() {
    // Three services become ready 0, 130 and 370 ms into the boot; afterwards their
    // readiness (and the liveness) probes of period 1 s all run at the same instants, so
    // one wakeup serves them all.
    let mut sim = Sim::new(vec![
        process("a").ready(probe(1_000)).live(probe(1_000)),
        process("b").ready(probe(1_000)),
        process("c").ready(probe(1_000)),
    ]);
    sim.start();
    sim.make_ready("a");
    sim.advance_ms(130);
    sim.make_ready("b");
    sim.advance_ms(240);
    sim.make_ready("c");
    for _ in 0..3_000 {
        if !sim.advance_to_next() {
            break;
        }
        for (name, role) in [
            ("a", Readiness),
            ("a", Liveness),
            ("b", Readiness),
            ("c", Readiness),
        ] {
            if sim.has_probe(name, role) {
                sim.probe(name, role, true);
            }
        }
        if sim.now.as_millis() >= 4_000 {
            break;
        }
    }
    let after_boot = |name: &str, role| -> Vec<u64> {
        sim.probe_times(name, role)
            .into_iter()
            .filter(|&t| t >= 500)
            .collect()
    };
    assert_eq!(after_boot("a", Readiness), [1_000, 2_000, 3_000, 4_000]);
    assert_eq!(after_boot("a", Liveness), [1_000, 2_000, 3_000, 4_000]);
    assert_eq!(after_boot("b", Readiness), [1_000, 2_000, 3_000, 4_000]);
    assert_eq!(after_boot("c", Readiness), [1_000, 2_000, 3_000, 4_000]);
}

#[test]
fn an_external_service_that_stops_answering_turns_unready_and_ready_again() {
    let mut sim = Sim::new(vec![
        external("pg").ready(gate(500, 2, 1)).critical(),
        process("api").after("pg", Ready).critical(),
    ]);
    sim.start();
    sim.probe("pg", Readiness, true);
    sim.spawned("api");
    assert_eq!(sim.outcome(), Some(Outcome::Go));
    sim.take();
    sim.advance_ms(500);
    sim.probe("pg", Readiness, false);
    sim.advance_ms(500);
    sim.probe("pg", Readiness, false);
    assert_eq!(sim.state("pg"), State::Unready);
    assert_eq!(sim.state("api"), State::Running);
    sim.advance_ms(500);
    sim.probe("pg", Readiness, true);
    assert_eq!(
        sim.take_only(&["pg:", "api:", "signal", "spawn"]),
        [
            "1000ms pg: ready -> unready (readiness failed 2 times: connection refused; not restarted, dependents keep running)",
            "1000ms api: running -> running (dependency pg is unready (readiness failed 2 times: connection refused))",
            "1500ms pg: unready -> ready (readiness passed again)",
            "1500ms api: running -> running (dependency pg is ready again)",
        ]
    );
    assert_eq!(sim.view("pg").readiness_losses, 1);
    // A shutdown from unready is an ordinary one.
    sim.advance_ms(500);
    sim.probe("pg", Readiness, false);
    sim.advance_ms(500);
    sim.probe("pg", Readiness, false);
    sim.shutdown();
    sim.killed("api", 15);
    assert_eq!(sim.state("pg"), State::Stopped);
    assert!(sim.engine.is_finished());
    assert_eq!(sim.engine.exit_code(), 0);
}

#[test]
fn liveness_still_restarts_a_unit_whose_readiness_is_lost() {
    let mut live = probe(1_000);
    live.failure_threshold = 2;
    let mut sim = Sim::new(vec![
        process("api")
            .ready(gate(1_000, 1, 1))
            .live(live)
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.make_ready("api");
    sim.advance_ms(1_000);
    sim.probe("api", Readiness, false);
    assert_eq!(sim.state("api"), State::Unready);
    sim.probe("api", Liveness, false);
    sim.advance_ms(1_000);
    sim.probe("api", Liveness, false);
    assert_eq!(sim.grep("signal"), ["2000ms signal api#1 graceful"]);
    sim.killed("api", 15);
    assert_eq!(sim.spawn_times("api"), [0, 2_000]);
    // The new incarnation starts on the boot schedule and is ready again.
    sim.make_ready("api");
    assert_eq!(sim.state("api"), State::Ready);
}

#[test]
fn a_pushed_readiness_ends_with_the_boot() {
    let mut sim = Sim::new(vec![process("api").ready(pushed())]);
    sim.start();
    sim.spawned("api");
    sim.push("api", Readiness, true);
    assert_eq!(sim.state("api"), State::Ready);
    // A log line or READY=1 can never say "not ready": nothing runs after the boot.
    sim.push("api", Readiness, false);
    sim.advance_ms(10_000);
    assert_eq!(sim.state("api"), State::Ready);
    assert!(sim.probe_times("api", Readiness).is_empty());
}

// ----- Running: liveness and restart policies -----------------------------------

#[test]
fn liveness_restarts_after_failure_threshold() {
    let mut sim = Sim::new(vec![
        process("api")
            .ready(probe(1_000))
            .live(probe(1_000))
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.make_ready("api");
    sim.take();
    sim.advance_ms(1_000);
    sim.probe("api", Liveness, false);
    assert_eq!(sim.state("api"), State::Degraded);
    sim.advance_ms(1_000);
    sim.probe("api", Liveness, true);
    assert_eq!(
        sim.state("api"),
        State::Ready,
        "a pass resets the failure streak"
    );
    for _ in 0..3 {
        sim.advance_ms(1_000);
        sim.probe("api", Liveness, false);
    }
    assert_eq!(
        sim.take_only(&[
            "signal",
            "api: degraded -> degraded",
            "api: degraded -> stopping",
            "spawn"
        ]),
        [
            "5000ms api: degraded -> degraded (liveness failed 3 times: connection refused; restarting)",
            "5000ms api: degraded -> stopping (liveness failed 3 times: connection refused; restarting)",
            "5000ms signal api#1 graceful",
        ]
    );
    // Graceful is ignored: Kill after stop_timeout, then spawn again.
    sim.advance_ms(5_000);
    assert_eq!(sim.take_only(&["signal"]), ["10000ms signal api#1 kill"]);
    sim.killed("api", 9);
    assert_eq!(sim.take_only(&["spawn"]), ["10000ms spawn api#2"]);
    assert_eq!(sim.view("api").restarts, 1);
}

#[test]
fn restart_policy_never() {
    let mut sim = Sim::new(vec![process("a"), process("b")]);
    sim.start();
    sim.spawned("a");
    sim.spawned("b");
    sim.exit("a", 1);
    sim.exit("b", 0);
    assert_eq!(sim.state("a"), State::Failed);
    assert_eq!(
        sim.view("a").last_error,
        Some("exited unexpectedly (exit code 1)")
    );
    assert_eq!(sim.state("b"), State::Stopped);
    assert_eq!(sim.spawn_times("a"), [0]);
    assert_eq!(sim.spawn_times("b"), [0]);
}

#[test]
fn restart_policy_on_failure() {
    let mut sim = Sim::new(vec![
        process("a").restart(RestartPolicy::OnFailure),
        process("b").restart(RestartPolicy::OnFailure),
    ]);
    sim.start();
    sim.spawned("a");
    sim.spawned("b");
    sim.exit("a", 0);
    assert_eq!(sim.state("a"), State::Stopped);
    sim.killed("b", 11);
    assert_eq!(sim.spawn_times("b"), [0, 0]);
    assert_eq!(
        sim.grep("b: running"),
        [
            "0ms b: running -> degraded (exited unexpectedly (killed by signal 11); restarting in 0s)"
        ]
    );
    sim.spawned("b");
    sim.exit("b", 4);
    assert_eq!(sim.state("b"), State::Degraded);
    sim.advance_ms(100);
    assert_eq!(sim.spawn_times("b"), [0, 0, 100]);
}

#[test]
fn restart_policy_always_restarts_even_after_exit_0() {
    let mut sim = Sim::new(vec![process("a").restart(RestartPolicy::Always)]);
    sim.start();
    sim.spawned("a");
    sim.exit("a", 0);
    assert_eq!(sim.spawn_times("a"), [0, 0]);
}

#[test]
fn restart_backoff_is_immediate_first_then_grows_then_resets_after_healthy_after() {
    let mut sim = Sim::new(vec![
        process("a")
            .restart(RestartPolicy::Always)
            .retry(3, 100, 1_000)
            .healthy_after(1_000)
            .start_limit(100, 10_000),
    ]);
    sim.start();
    sim.spawned("a");
    sim.advance_ms(1_000);
    for _ in 0..4 {
        sim.exit("a", 1);
        sim.advance_to_next();
        sim.spawned("a");
        sim.advance_ms(10);
    }
    // Crash at 1000 after a healthy second -> immediate; then 100, 200, 400ms for quick crashes.
    assert_eq!(sim.spawn_times("a"), [0, 1_000, 1_110, 1_320, 1_730]);
    // Up for just under healthy_after: still a crash loop, the backoff keeps growing.
    sim.advance_ms(989);
    sim.exit("a", 1);
    assert_eq!(*sim.spawn_times("a").last().unwrap(), 1_730);
    sim.advance_to_next();
    sim.spawned("a");
    assert_eq!(*sim.spawn_times("a").last().unwrap(), 3_529);
    // Up for healthy_after: the next restart is immediate again.
    sim.advance_ms(1_000);
    sim.exit("a", 1);
    assert_eq!(*sim.spawn_times("a").last().unwrap(), 4_529);
    assert_eq!(sim.view("a").restarts, 6);
}

/// Issue 14, item 8: a service that was ready and serving for 3 s and is then SIGKILLed is
/// restarted at once, every time (it waited 0.2-2.8 s when the backoff only reset after 10 s).
#[test]
fn a_ready_service_killed_five_times_three_seconds_apart_restarts_at_once_every_time() {
    let mut sim = Sim::new(vec![
        process("api")
            .ready(probe(1_000))
            .restart(RestartPolicy::Always)
            .retry(3, 1_000, 30_000)
            .healthy_after(1_000)
            .start_limit(5, 10_000),
    ]);
    sim.start();
    sim.make_ready("api");
    for _ in 0..5 {
        sim.advance_ms(3_000);
        sim.killed("api", 9);
        sim.make_ready("api");
    }
    assert_eq!(
        sim.spawn_times("api"),
        [0, 3_000, 6_000, 9_000, 12_000, 15_000]
    );
    assert_eq!(sim.grep("restarting in 1s"), Vec::<String>::new());
    assert_eq!(sim.view("api").restarts, 5);
    assert_eq!(sim.state("api"), State::Ready);
}

#[test]
fn quick_crashes_back_off_and_the_start_limit_still_caps_them() {
    let mut sim = Sim::new(vec![
        process("a")
            .ready(probe(1_000))
            .restart(RestartPolicy::Always)
            .retry(3, 100, 1_000)
            .healthy_after(1_000)
            .start_limit(3, 10_000),
    ]);
    sim.start();
    sim.make_ready("a");
    // Each incarnation is ready for 500 ms only: below healthy_after, a crash loop.
    for _ in 0..3 {
        sim.advance_ms(500);
        sim.killed("a", 9);
        sim.run_timers(1);
        sim.make_ready("a");
    }
    assert_eq!(sim.spawn_times("a"), [0, 500, 1_100, 1_800]);
    sim.advance_ms(500);
    sim.killed("a", 9);
    assert_eq!(sim.state("a"), State::Failed);
    assert_eq!(
        sim.view("a").last_error,
        Some("restarted 3 times in 10s; giving up (exited unexpectedly (killed by signal 9))")
    );
}

#[test]
fn start_limit_fails_a_restart_loop() {
    let mut sim = Sim::new(vec![
        process("a")
            .restart(RestartPolicy::Always)
            .retry(3, 10, 10)
            .start_limit(3, 10_000),
    ]);
    sim.start();
    for _ in 0..3 {
        sim.spawned("a");
        sim.exit("a", 1);
        sim.advance_to_next();
    }
    sim.spawned("a");
    sim.exit("a", 1);
    assert_eq!(sim.state("a"), State::Failed);
    assert_eq!(
        sim.view("a").last_error,
        Some("restarted 3 times in 10s; giving up (exited unexpectedly (exit code 1))")
    );
    assert_eq!(sim.spawn_times("a").len(), 4);
}

#[test]
fn start_limit_window_slides() {
    let mut sim = Sim::new(vec![
        process("a")
            .restart(RestartPolicy::Always)
            .start_limit(2, 1_000),
    ]);
    sim.start();
    for _ in 0..6 {
        sim.spawned("a");
        sim.advance_ms(600);
        sim.exit("a", 1);
        sim.advance_to_next();
    }
    assert_ne!(sim.state("a"), State::Failed);
}

// ----- Restarting with dependents --------------------------------------------

#[test]
fn restart_command_stops_dependents_first_and_restarts_them_in_order() {
    let mut sim = Sim::new(vec![
        process("db").ready(probe(1_000)),
        process("api").after("db", Ready),
        process("web").after("api", Ready),
        process("cron").soft_after("db", Ready),
    ]);
    sim.start();
    sim.make_ready("db");
    sim.spawned("api");
    sim.spawned("web");
    sim.spawned("cron");
    sim.take();
    sim.restart_unit("db");
    assert_eq!(
        sim.take_only(&["signal", "spawn"]),
        ["0ms signal web#1 graceful"]
    );
    sim.advance_ms(1);
    sim.killed("web", 15);
    assert_eq!(
        sim.take_only(&["signal", "spawn"]),
        ["1ms signal api#1 graceful"]
    );
    sim.advance_ms(1);
    sim.killed("api", 15);
    assert_eq!(
        sim.take_only(&["signal", "spawn"]),
        ["2ms signal db#1 graceful"]
    );
    sim.advance_ms(1);
    sim.killed("db", 15);
    assert_eq!(sim.take_only(&["signal", "spawn"]), ["3ms spawn db#2"]);
    sim.spawned("db");
    assert!(
        sim.take_only(&["spawn"]).is_empty(),
        "api started before db was ready"
    );
    sim.advance_ms(1);
    sim.probe("db", Readiness, true);
    assert_eq!(sim.take_only(&["spawn"]), ["4ms spawn api#2"]);
    sim.spawned("api");
    assert_eq!(sim.take_only(&["spawn"]), ["4ms spawn web#2"]);
    // The soft dependent was never touched.
    assert_eq!(sim.generation("cron"), 1);
    assert_eq!(sim.state("cron"), State::Running);
}

#[test]
fn crash_restart_waits_for_dependents_to_stop_before_respawning() {
    let mut sim = Sim::new(vec![
        process("db").restart(RestartPolicy::Always),
        process("api").after("db", Ready),
    ]);
    sim.start();
    sim.spawned("db");
    sim.spawned("api");
    sim.take();
    sim.exit("db", 1);
    assert_eq!(
        sim.take_only(&["signal", "spawn"]),
        ["0ms signal api#1 graceful"]
    );
    sim.advance_ms(5);
    sim.killed("api", 15);
    assert_eq!(sim.take_only(&["signal", "spawn"]), ["5ms spawn db#2"]);
    sim.spawned("db");
    assert_eq!(sim.take_only(&["spawn"]), ["5ms spawn api#2"]);
}

#[test]
fn runtime_failure_stops_and_skips_hard_dependents() {
    let mut sim = Sim::degraded(vec![process("cache"), process("api").after("cache", Ready)]);
    sim.start();
    sim.spawned("cache");
    sim.spawned("api");
    assert_eq!(sim.outcome(), Some(Outcome::Go));
    sim.exit("cache", 1);
    assert_eq!(sim.grep("signal"), ["0ms signal api#1 graceful"]);
    sim.killed("api", 15);
    assert_eq!(sim.state("api"), State::Skipped);
    assert_eq!(sim.view("api").reason, Some("dependency cache failed"));
}

// ----- Stale events ---------------------------------------------------------

#[test]
fn events_from_an_old_generation_or_stale_probe_are_ignored() {
    let mut sim = Sim::new(vec![
        process("db")
            .ready(probe(1_000))
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.make_ready("db");
    sim.exit("db", 1);
    assert_eq!(sim.generation("db"), 2);
    // A late exit of incarnation 1 changes nothing.
    sim.exit_gen("db", 1, ExitStatus::code(1));
    assert_eq!(sim.spawn_times("db").len(), 2);
    sim.spawned("db");
    let seq = match sim.actions.last().unwrap().1 {
        Action::RunProbe { seq, .. } => seq,
        ref other => panic!("expected a probe, got {other:?}"),
    };
    let db = sim.id("db");
    for stale in [seq - 1, 0, seq + 5] {
        sim.event(Event::ProbeResult {
            unit: db,
            role: Readiness,
            seq: stale,
            ok: true,
            message: String::new(),
        });
    }
    assert_eq!(sim.state("db"), State::Starting);
    // Unknown units and spawned events for old generations are ignored too.
    sim.event(Event::Spawned {
        unit: UnitId(99),
        r#gen: 1,
        pid: 1,
    });
    sim.event(Event::Spawned {
        unit: db,
        r#gen: 1,
        pid: 1,
    });
    assert_ne!(sim.view("db").pid, Some(1));
    sim.probe("db", Readiness, true);
    assert_eq!(sim.state("db"), State::Ready);
}

// ----- Stopping ---------------------------------------------------------------

#[test]
fn shutdown_stops_in_reverse_order_and_escalates_to_kill() {
    let mut sim = Sim::new(vec![
        process("db").stop_timeout(3_000),
        process("api").after("db", Ready).stop_timeout(2_000),
        process("web").soft_after("api", Started),
        process("cache"),
    ]);
    sim.start();
    for name in ["db", "api", "web", "cache"] {
        sim.spawned(name);
    }
    sim.take();
    sim.shutdown();
    assert_eq!(
        sim.take_only(&["signal"]),
        ["0ms signal web#1 graceful", "0ms signal cache#1 graceful"]
    );
    sim.killed("cache", 15);
    sim.advance_ms(100);
    sim.killed("web", 15);
    assert_eq!(sim.take_only(&["signal"]), ["100ms signal api#1 graceful"]);
    // api ignores SIGTERM.
    sim.advance_ms(2_000);
    assert_eq!(sim.take_only(&["signal"]), ["2100ms signal api#1 kill"]);
    sim.killed("api", 9);
    assert_eq!(sim.take_only(&["signal"]), ["2100ms signal db#1 graceful"]);
    sim.exit("db", 0);
    assert_eq!(
        sim.take_only(&["finished", "db"]),
        [
            "2100ms db: stopping -> stopped (shutting down)",
            "2100ms finished 0"
        ]
    );
    for name in ["db", "api", "web", "cache"] {
        assert_eq!(sim.state(name), State::Stopped, "{name}");
    }
}

#[test]
fn cleanup_runs_after_exit_and_before_the_dependency_stops() {
    let mut sim = Sim::new(vec![
        process("db").cleanup(),
        process("api").after("db", Ready).cleanup(),
        task("migrate").cleanup(),
    ]);
    sim.start();
    sim.spawned("db");
    sim.spawned("api");
    sim.spawned("migrate");
    sim.exit("migrate", 0);
    sim.take();
    sim.shutdown();
    assert_eq!(
        sim.take_only(&["signal", "cleanup"]),
        ["0ms signal api#1 graceful", "0ms cleanup migrate"]
    );
    sim.killed("api", 15);
    assert_eq!(sim.take_only(&["signal", "cleanup"]), ["0ms cleanup api"]);
    assert_eq!(sim.state("api"), State::Stopping);
    sim.advance_ms(30);
    sim.cleanup_done("api", false);
    assert_eq!(sim.state("api"), State::Stopped);
    assert_eq!(
        sim.view("api").last_error,
        Some("cleanup failed: exit code 1")
    );
    assert_eq!(
        sim.take_only(&["signal", "cleanup"]),
        ["30ms signal db#1 graceful"]
    );
    sim.killed("db", 15);
    sim.cleanup_done("db", true);
    assert!(
        !sim.engine.is_finished(),
        "migrate's cleanup is still running"
    );
    sim.cleanup_done("migrate", true);
    assert_eq!(sim.grep("finished"), ["30ms finished 0"]);
}

#[test]
fn shutdown_during_boot_stops_what_started_and_skips_the_rest() {
    let mut sim = Sim::new(vec![
        process("db").ready(probe(1_000)),
        process("api").after("db", Ready),
        process("spawning"),
        task("seed"),
    ]);
    sim.start();
    sim.spawned("db");
    sim.spawned("seed");
    sim.take();
    sim.advance_ms(3);
    sim.shutdown();
    assert_eq!(
        sim.take_only(&["signal", "api", "spawning"]),
        [
            "3ms api: pending -> skipped (shutting down)",
            "3ms signal db#1 graceful",
            "3ms spawning: starting -> stopping (shutting down)",
            // A task that is still running is signalled like a process.
            "3ms signal seed#1 graceful",
        ]
    );
    // The unconfirmed spawn is signalled as soon as it is confirmed.
    sim.spawned("spawning");
    assert_eq!(
        sim.take_only(&["signal"]),
        ["3ms signal spawning#1 graceful"]
    );
    sim.killed("db", 15);
    sim.killed("spawning", 15);
    sim.exit("seed", 0);
    assert_eq!(sim.state("seed"), State::Stopped);
    assert_eq!(sim.take_only(&["finished"]), ["3ms finished 0"]);
    assert_eq!(sim.outcome(), None);
}

#[test]
fn kill_signals_every_live_unit_at_once_and_skips_cleanups() {
    let mut sim = Sim::new(vec![
        process("db").cleanup(),
        process("api").after("db", Ready).cleanup(),
        process("later").after("api", Ready).ready(probe(1_000)),
        process("pending").after("later", Ready),
    ]);
    sim.start();
    sim.spawned("db");
    sim.spawned("api");
    sim.take();
    sim.kill();
    assert_eq!(
        sim.take_only(&["signal", "pending"]),
        [
            "0ms signal db#1 kill",
            "0ms signal api#1 kill",
            "0ms pending: pending -> skipped (killed)",
        ]
    );
    sim.spawned("later");
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal later#1 kill"]);
    sim.killed("db", 9);
    sim.killed("api", 9);
    sim.killed("later", 9);
    assert!(sim.grep("cleanup").is_empty());
    assert_eq!(sim.grep("finished"), ["0ms finished 0"]);
}

#[test]
fn kill_during_shutdown_escalates_and_second_shutdown_is_ignored() {
    let mut sim = Sim::new(vec![
        process("db").cleanup(),
        process("api").after("db", Ready),
    ]);
    sim.start();
    sim.spawned("db");
    sim.spawned("api");
    sim.shutdown();
    sim.shutdown();
    assert_eq!(sim.grep("signal"), ["0ms signal api#1 graceful"]);
    sim.advance_ms(100);
    sim.kill();
    assert_eq!(
        sim.grep("signal"),
        [
            "0ms signal api#1 graceful",
            "100ms signal db#1 kill",
            "100ms signal api#1 kill"
        ]
    );
    sim.killed("db", 9);
    sim.killed("api", 9);
    assert!(sim.grep("cleanup").is_empty());
    assert_eq!(sim.grep("finished"), ["100ms finished 0"]);
}

#[test]
fn shutdown_before_start_finishes_at_once() {
    let mut sim = Sim::new(vec![process("db")]);
    sim.shutdown();
    assert_eq!(sim.state("db"), State::Skipped);
    assert!(sim.engine.is_finished());
    sim.start();
    assert!(sim.spawn_times("db").is_empty());
}

/// Issue 14, item 9: `gantry up` exited 0 after SIGTERM even when a critical service had
/// failed at runtime.
#[test]
fn a_stop_while_a_critical_unit_is_failed_exits_1() {
    for kill in [false, true] {
        let mut sim = Sim::new(vec![process("core").critical(), process("extra")]).cooperative();
        sim.start();
        assert_eq!(sim.outcome(), Some(Outcome::Go));
        sim.advance_ms(1_000);
        sim.exit("core", 2);
        assert_eq!(sim.state("core"), State::Failed);
        assert_eq!(
            sim.engine.critical_failed().collect::<Vec<_>>(),
            [sim.id("core")]
        );
        if kill {
            sim.kill();
        } else {
            sim.shutdown();
        }
        assert!(sim.engine.is_finished());
        assert_eq!(sim.grep("finished"), ["1000ms finished 1"], "kill: {kill}");
    }
}

#[test]
fn a_stop_exits_0_when_only_non_critical_units_failed_or_the_critical_one_is_back() {
    let mut sim = Sim::degraded(vec![process("core").critical(), process("extra")]).cooperative();
    sim.start();
    sim.exit("extra", 2);
    assert_eq!(sim.state("extra"), State::Failed);
    sim.exit("core", 2);
    sim.start_unit("core");
    assert_eq!(sim.state("core"), State::Running);
    sim.shutdown();
    assert_eq!(sim.grep("finished"), ["0ms finished 0"]);
}

// ----- Commands -----------------------------------------------------------------

#[test]
fn stop_command_stops_the_unit_and_its_hard_dependents_then_start_brings_them_back() {
    let mut sim = Sim::new(vec![
        process("db"),
        process("api").after("db", Ready),
        process("cron").soft_after("db", Ready),
    ]);
    sim.start();
    for name in ["db", "api", "cron"] {
        sim.spawned(name);
    }
    sim.take();
    sim.stop_unit("db");
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal api#1 graceful"]);
    sim.killed("api", 15);
    assert_eq!(sim.take_only(&["signal"]), ["0ms signal db#1 graceful"]);
    sim.killed("db", 15);
    assert_eq!(sim.state("db"), State::Stopped);
    assert_eq!(sim.state("api"), State::Stopped);
    assert_eq!(sim.state("cron"), State::Running);
    // Starting api pulls its required dependency up first.
    sim.advance_ms(10);
    sim.start_unit("api");
    assert_eq!(sim.take_only(&["spawn"]), ["10ms spawn db#2"]);
    sim.spawned("db");
    assert_eq!(sim.take_only(&["spawn"]), ["10ms spawn api#2"]);
}

#[test]
fn start_command_revives_a_failed_unit_and_its_skipped_dependents() {
    let mut sim = Sim::degraded(vec![process("cache"), process("api").after("cache", Ready)]);
    sim.start();
    sim.spawn_failed("cache", "boom");
    assert_eq!(sim.state("api"), State::Skipped);
    sim.advance_ms(1_000);
    sim.start_unit("cache");
    assert_eq!(sim.state("api"), State::Pending);
    sim.spawned("cache");
    assert_eq!(sim.spawn_times("api"), [1_000]);
}

#[test]
fn restart_command_reruns_a_completed_task() {
    let mut sim = Sim::new(vec![
        task("migrate"),
        process("api").after("migrate", Completed),
    ]);
    sim.start();
    sim.spawned("migrate");
    sim.exit("migrate", 0);
    sim.spawned("api");
    sim.take();
    sim.restart_unit("migrate");
    assert_eq!(
        sim.take_only(&["signal", "spawn"]),
        ["0ms signal api#1 graceful"]
    );
    sim.killed("api", 15);
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn migrate#2"]);
    sim.spawned("migrate");
    sim.exit("migrate", 0);
    assert_eq!(sim.take_only(&["spawn"]), ["0ms spawn api#2"]);
}

// ----- Construction and determinism -------------------------------------------

#[test]
fn invalid_graphs_are_errors_not_panics() {
    let cycle = resolve(vec![
        process("a").after("c", Ready),
        process("b").after("a", Ready),
        process("c").after("b", Ready),
    ]);
    let err = Engine::new(cycle, EngineOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "dependency cycle: [ a -> c -> b -> a ]");

    let mut bad = resolve(vec![process("a")]);
    bad[0].deps.push(gantry_engine::Dep::hard(UnitId(3), Ready));
    assert!(matches!(
        Engine::new(bad, EngineOptions::default()),
        Err(EngineError::UnknownDependency { index: 3, .. })
    ));

    let not_task = resolve(vec![process("a"), process("b").after("a", Completed)]);
    assert!(matches!(
        Engine::new(not_task, EngineOptions::default()),
        Err(EngineError::NotATask { .. })
    ));
}

#[test]
fn same_seed_same_run_with_jitter() {
    let run = |seed| {
        let mut sim = Sim::with(
            vec![process("a").retry(6, 100, 10_000).jitter()],
            false,
            seed,
        );
        sim.start();
        for _ in 0..5 {
            sim.spawn_failed("a", "boom");
            sim.advance_to_next();
        }
        sim.spawn_times("a")
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn empty_stack_boots_and_finishes() {
    let mut sim = Sim::new(vec![]);
    sim.start();
    assert_eq!(sim.outcome(), Some(Outcome::Go));
    sim.command(Command::Shutdown);
    assert_eq!(sim.log(), ["0ms boot go", "0ms finished 0"]);
}

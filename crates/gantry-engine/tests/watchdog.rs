//! The watchdog of a pushed liveness probe on virtual time: silence for `period` is a failure, `failure_threshold` of them restart the service, a self-reported hang restarts it at once.

mod support;

use gantry_engine::{Event, ProbeConfig, ProbeMode, ProbeRole, RestartPolicy, State};
use support::*;

use ProbeRole::Liveness;

/// A watchdog liveness probe: a keep-alive is due every `period_ms`.
fn watchdog(period_ms: u64, failure_threshold: u32) -> ProbeConfig {
    ProbeConfig {
        mode: ProbeMode::Watchdog,
        period: ms(period_ms),
        failure_threshold,
        ..pushed()
    }
}

/// `api`: ready when spawned (no readiness probe), watched by a 1 s watchdog.
fn sim(failure_threshold: u32) -> Sim {
    let mut sim = Sim::new(vec![
        process("api")
            .live(watchdog(1_000, failure_threshold))
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.spawned("api");
    assert_eq!(sim.state("api"), State::Running);
    sim.take();
    sim
}

#[test]
fn keep_alives_within_the_period_keep_the_service_running() {
    let mut sim = sim(1);
    // A ping every 900 ms for a minute: each one moves the deadline.
    for _ in 0..66 {
        sim.advance_ms(900);
        sim.push("api", Liveness, true);
    }
    assert_eq!(sim.state("api"), State::Running);
    assert_eq!(sim.spawn_times("api"), [0]);
    assert!(sim.grep("watchdog").is_empty(), "{:#?}", sim.log());
    // Never a probe run: the service pushes, the engine only keeps time.
    assert!(sim.grep("probe api").is_empty());
}

#[test]
fn silence_counts_once_per_period_against_failure_threshold_then_restarts() {
    let mut sim = sim(3);
    sim.advance_ms(999);
    assert_eq!(sim.state("api"), State::Running);
    sim.advance_ms(1);
    assert_eq!(sim.state("api"), State::Degraded);
    assert_eq!(
        sim.view("api").last_error,
        Some("liveness: watchdog: no keep-alive within 1s")
    );
    // A keep-alive clears the streak and restarts the clock from now.
    sim.advance_ms(500);
    sim.push("api", Liveness, true);
    assert_eq!(sim.state("api"), State::Running);
    sim.advance_ms(2_999);
    assert_eq!(sim.spawn_times("api"), [0], "two misses so far");
    sim.advance_ms(1);
    assert_eq!(
        sim.take_only(&["api: degraded -> stopping", "signal"]),
        [
            "4500ms api: degraded -> stopping (liveness failed 3 times: watchdog: no keep-alive within 1s; restarting)",
            "4500ms signal api#1 graceful",
        ]
    );
    sim.killed("api", 15);
    assert_eq!(sim.spawn_times("api"), [0, 4_500]);
    // The new incarnation is watched again once it runs, with a fresh streak.
    sim.spawned("api");
    assert_eq!(sim.state("api"), State::Running);
    sim.advance_ms(1_000);
    assert_eq!(sim.state("api"), State::Degraded);
    assert_eq!(sim.view("api").restarts, 1);
}

#[test]
fn initial_delay_gives_the_first_keep_alive_longer() {
    let mut sim = Sim::new(vec![
        process("api")
            .live(ProbeConfig {
                initial_delay: ms(5_000),
                ..watchdog(1_000, 1)
            })
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.spawned("api");
    sim.advance_ms(4_999);
    assert_eq!(sim.state("api"), State::Running);
    sim.advance_ms(1);
    assert_eq!(sim.grep("stopping").len(), 1, "{:#?}", sim.log());
}

#[test]
fn keep_alives_before_the_service_is_up_do_not_arm_anything() {
    let mut sim = Sim::new(vec![
        process("api")
            .ready(probe(1_000))
            .live(watchdog(1_000, 1))
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.spawned("api");
    // Still starting: the watchdog does not run yet, pings are ignored.
    sim.push("api", Liveness, true);
    sim.advance_ms(10_000);
    sim.probe("api", ProbeRole::Readiness, false);
    assert_eq!(sim.state("api"), State::Starting);
    assert!(sim.grep("watchdog").is_empty(), "{:#?}", sim.log());
    sim.advance_ms(1_000);
    sim.probe("api", ProbeRole::Readiness, true);
    assert_eq!(sim.state("api"), State::Ready);
    sim.advance_ms(1_000);
    assert_eq!(sim.grep("no keep-alive").len(), 2, "{:#?}", sim.log());
}

#[test]
fn a_reported_hang_restarts_at_once_whatever_the_threshold() {
    let mut sim = sim(3);
    sim.advance_ms(300);
    let unit = sim.id("api");
    let r#gen = sim.generation("api");
    sim.event(Event::LivenessFailed {
        unit,
        r#gen,
        message: "sd_notify WATCHDOG=trigger".into(),
    });
    assert_eq!(
        sim.take_only(&["api: running -> stopping", "signal"]),
        [
            "300ms api: running -> stopping (liveness failed: sd_notify WATCHDOG=trigger; restarting)",
            "300ms signal api#1 graceful",
        ]
    );
    sim.killed("api", 15);
    assert_eq!(sim.spawn_times("api"), [0, 300]);
    assert_eq!(
        sim.view("api").last_error,
        Some("liveness failed: sd_notify WATCHDOG=trigger")
    );
}

#[test]
fn a_reported_hang_of_an_older_incarnation_or_without_liveness_is_ignored() {
    let mut sim = sim(3);
    let unit = sim.id("api");
    let old = sim.generation("api");
    sim.event(Event::LivenessFailed {
        unit,
        r#gen: old + 1,
        message: "from the future".into(),
    });
    sim.event(Event::LivenessFailed {
        unit,
        r#gen: old - 1,
        message: "from the past".into(),
    });
    assert_eq!(sim.state("api"), State::Running);
    assert_eq!(sim.spawn_times("api"), [0]);

    // No liveness probe: nothing watches the service, nothing restarts it.
    let mut plain = Sim::new(vec![process("w").restart(RestartPolicy::Always)]);
    plain.start();
    plain.spawned("w");
    let (unit, r#gen) = (plain.id("w"), plain.generation("w"));
    plain.event(Event::LivenessFailed {
        unit,
        r#gen,
        message: "hung".into(),
    });
    assert_eq!(plain.state("w"), State::Running);
    assert_eq!(plain.spawn_times("w"), [0]);
}

#[test]
fn a_zero_period_watchdog_cannot_spin() {
    let mut sim = Sim::new(vec![
        process("api")
            .live(watchdog(0, 1000))
            .restart(RestartPolicy::Always),
    ]);
    sim.start();
    sim.spawned("api");
    // Each firing moves time forward by at least 1 ms.
    sim.advance_ms(10);
    assert_eq!(
        sim.grep("no keep-alive").len(),
        1,
        "degraded once, then silent"
    );
    assert_eq!(sim.view("api").restarts, 0);
}

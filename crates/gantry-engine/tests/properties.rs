//! Property tests: jitter bounds, ordering guarantees on random graphs, and random event sequences that must never panic.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use gantry_engine::{
    Action, Command, Condition, Event, ExitStatus, Priority, ProbeConfig, ProbeMode, ProbeRole,
    RestartPolicy, RetryPolicy, SplitMix64, State, StopSignal, UnitId, UnitKind,
};
use proptest::prelude::*;
use support::*;

/// `default` cases, or `PROPTEST_CASES` when set (for long local runs).
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

// ----- Jitter -------------------------------------------------------------------

proptest! {
    /// Full jitter: every delay lies in [0, min(max_backoff, backoff * 2^(n-1))].
    #[test]
    fn jittered_delay_is_within_the_cap(
        seed in any::<u64>(),
        backoff_ms in 0u64..60_000,
        max_ms in 0u64..600_000,
        failed in 1u32..64,
    ) {
        let policy = RetryPolicy {
            attempts: 100,
            backoff: ms(backoff_ms),
            max_backoff: ms(max_ms),
            jitter: true,
        };
        let exact = u128::from(backoff_ms)
            .saturating_mul(1u128 << (failed - 1).min(100))
            .min(u128::from(max_ms));
        let cap = policy.cap(failed);
        prop_assert_eq!(cap.as_millis(), exact);
        let mut rng = SplitMix64::new(seed);
        for _ in 0..20 {
            let d = policy.delay(failed, &mut rng);
            prop_assert!(d <= cap, "{:?} > {:?}", d, cap);
        }
    }

    /// The same bound, observed through the engine: the gap between a failed
    /// spawn and the next spawn is within the cap for that attempt.
    #[test]
    fn engine_retry_gaps_respect_the_jitter_cap(
        seed in any::<u64>(),
        backoff_ms in 1u64..2_000,
        max_ms in 1u64..10_000,
        attempts in 2u32..8,
    ) {
        let unit = process("db").retry(attempts, backoff_ms, max_ms).jitter();
        let policy = unit.config.retry;
        let mut sim = Sim::with(vec![unit], false, seed);
        sim.start();
        for _ in 1..attempts {
            sim.spawn_failed("db", "boom");
            sim.advance_to_next();
        }
        let times = sim.spawn_times("db");
        prop_assert_eq!(times.len(), attempts as usize);
        for (n, pair) in times.windows(2).enumerate() {
            let gap = ms(pair[1] - pair[0]);
            // Spawn times are recorded in whole milliseconds.
            let cap = policy.cap(n as u32 + 1);
            prop_assert!(gap <= cap, "gap {:?} after failure {} exceeds cap {:?}", gap, n + 1, cap);
        }
    }
}

// ----- Random graphs in a cooperative world --------------------------------------

#[derive(Clone, Debug)]
struct NodeSpec {
    kind: u8,
    layer_bump: bool,
    readiness: bool,
    success_threshold: u32,
    deps: Vec<(usize, u8, bool)>,
}

fn node() -> impl Strategy<Value = NodeSpec> {
    (
        0u8..6,
        prop::bool::weighted(0.2),
        any::<bool>(),
        1u32..4,
        prop::collection::vec((any::<usize>(), 0u8..3, prop::bool::weighted(0.8)), 0..3),
    )
        .prop_map(
            |(kind, layer_bump, readiness, success_threshold, deps)| NodeSpec {
                kind,
                layer_bump,
                readiness,
                success_threshold,
                deps,
            },
        )
}

/// Builds a valid graph: dependencies point to earlier units, `completed`
/// only on tasks, layers never decrease along the list.
fn build_graph(specs: &[NodeSpec]) -> Vec<U> {
    let mut kinds = Vec::new();
    let mut layers = Vec::new();
    let mut units = Vec::new();
    let mut layer = 0;
    for (i, spec) in specs.iter().enumerate() {
        if spec.layer_bump {
            layer += 1;
        }
        let kind = match spec.kind {
            0 => UnitKind::Task,
            1 => UnitKind::External,
            _ => UnitKind::Process,
        };
        let name = format!("u{i}");
        let mut u = match kind {
            UnitKind::Task => task(&name),
            UnitKind::External => external(&name),
            UnitKind::Process => process(&name),
        };
        if spec.readiness {
            let mut p = probe(500);
            p.success_threshold = spec.success_threshold;
            u = u.ready(p);
        }
        u = u.layer(layer).live(probe(1_000));
        if i > 0 {
            for &(target, cond, required) in &spec.deps {
                let target = target % i;
                let condition = match cond {
                    0 => Condition::Started,
                    1 if kinds[target] == UnitKind::Task => Condition::Completed,
                    _ => Condition::Ready,
                };
                let dep = format!("u{target}");
                u = if required {
                    u.after(&dep, condition)
                } else {
                    u.soft_after(&dep, condition)
                };
            }
        }
        kinds.push(kind);
        layers.push(layer);
        units.push(u);
    }
    units
}

fn satisfies(state: State, condition: Condition) -> bool {
    match condition {
        Condition::Started => matches!(
            state,
            State::Starting | State::Ready | State::Running | State::Degraded | State::Completed
        ),
        Condition::Ready => matches!(
            state,
            State::Ready | State::Running | State::Degraded | State::Completed
        ),
        Condition::Completed => state == State::Completed,
    }
}

fn is_down(state: State) -> bool {
    matches!(
        state,
        State::Stopped | State::Skipped | State::Failed | State::Completed | State::Pending
    )
}

proptest! {
    #![proptest_config(cases(128))]

    /// Every unit of a random DAG comes up (GO) when everything cooperates;
    /// no unit is spawned before its dependencies meet their condition or
    /// before earlier layers settled; the shutdown signals a unit only after
    /// all its dependents are down, and finishes with exit code 0.
    #[test]
    fn random_graphs_boot_in_order_and_stop_in_reverse(specs in prop::collection::vec(node(), 1..14)) {
        let units = build_graph(&specs);
        let configs = resolve(units.clone());
        let mut sim = Sim::new(units).cooperative();
        sim.start();
        sim.run_timers(2_000);
        prop_assert_eq!(sim.outcome(), Some(gantry_engine::Outcome::Go));
        sim.shutdown();
        sim.run_timers(100);
        prop_assert!(sim.engine.is_finished());
        prop_assert!(sim.grep("finished").iter().all(|l| l.ends_with("finished 0")));

        let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, c) in configs.iter().enumerate() {
            for d in &c.deps {
                dependents.entry(d.unit.0).or_default().push(i);
            }
        }
        let mut state = vec![State::Pending; configs.len()];
        let mut shutting_down = false;
        for (_, action) in &sim.actions {
            match action {
                Action::Transition(n) => {
                    prop_assert_eq!(n.from, state[n.unit.0]);
                    state[n.unit.0] = n.to;
                    if n.to == State::Stopping {
                        shutting_down = true;
                    }
                }
                Action::Spawn { unit, .. } => {
                    for dep in &configs[unit.0].deps {
                        prop_assert!(
                            satisfies(state[dep.unit.0], dep.condition),
                            "{} spawned while dependency {} is {}",
                            configs[unit.0].name, configs[dep.unit.0].name, state[dep.unit.0]
                        );
                    }
                    for (j, c) in configs.iter().enumerate() {
                        if c.layer < configs[unit.0].layer {
                            prop_assert!(state[j].is_settled(), "layer barrier broken by {}", configs[unit.0].name);
                        }
                    }
                }
                Action::Signal { unit, signal: StopSignal::Graceful, .. } => {
                    prop_assert!(shutting_down);
                    for &d in dependents.get(&unit.0).into_iter().flatten() {
                        prop_assert!(
                            is_down(state[d]),
                            "{} signalled while dependent {} is {}",
                            configs[unit.0].name, configs[d].name, state[d]
                        );
                    }
                }
                _ => {}
            }
        }
        for (i, s) in state.iter().enumerate() {
            prop_assert!(
                matches!(s, State::Stopped | State::Completed),
                "{} ended {}", configs[i].name, s
            );
        }
    }
}

// ----- Chaos: random configurations and random events ---------------------------

/// (pushed, min_interval, initial_delay, period, success, failure), in ms.
type ProbeSpec = Option<(bool, u64, u64, u64, u32, u32)>;

#[derive(Clone, Debug)]
struct ChaosUnit {
    kind: u8,
    priority: u8,
    layer: u8,
    deps: Vec<(usize, u8, bool)>,
    probes: [ProbeSpec; 3],
    restart: u8,
    retry: (u32, u64, u64, bool),
    start_timeout: Option<u64>,
    stop_timeout: u64,
    cleanup: bool,
    start_limit: (u32, u64),
    breaker: Option<(u32, u64)>,
    healthy_after: u64,
    start_grace: u64,
}

fn chaos_probe() -> impl Strategy<Value = ProbeSpec> {
    prop::option::of((
        prop::bool::weighted(0.2),
        0u64..5,
        0u64..50,
        0u64..2_000,
        0u32..4,
        0u32..4,
    ))
}

fn chaos_unit() -> impl Strategy<Value = ChaosUnit> {
    (
        (0u8..3, 0u8..4, 0u8..3),
        prop::collection::vec((0usize..12, 0u8..3, any::<bool>()), 0..3),
        [chaos_probe(), chaos_probe(), chaos_probe()],
        0u8..3,
        (0u32..4, 0u64..500, 0u64..2_000, any::<bool>()),
        prop::option::of(0u64..3_000),
        (0u64..2_000, any::<bool>()),
        (0u32..4, 0u64..5_000),
        prop::option::of((0u32..4, 0u64..3_000)),
        0u64..5_000,
        prop::sample::select(vec![0u64, 0, 5, 250]),
    )
        .prop_map(
            |(
                (kind, priority, layer),
                deps,
                probes,
                restart,
                retry,
                start_timeout,
                (stop_timeout, cleanup),
                start_limit,
                breaker,
                healthy_after,
                start_grace,
            )| ChaosUnit {
                kind,
                priority,
                layer,
                deps,
                probes,
                restart,
                retry,
                start_timeout,
                stop_timeout,
                cleanup,
                start_limit,
                breaker,
                healthy_after,
                start_grace,
            },
        )
}

fn chaos_config(i: usize, c: &ChaosUnit) -> U {
    let name = format!("u{i}");
    let mut u = match c.kind {
        0 => task(&name),
        1 => external(&name),
        _ => process(&name),
    };
    u.config.priority = [
        Priority::Critical,
        Priority::High,
        Priority::Medium,
        Priority::Low,
    ][usize::from(c.priority)];
    u.config.layer = usize::from(c.layer);
    let probe = |p: &ProbeSpec| {
        p.map(
            |(pushed, min, initial, period, success, failure)| ProbeConfig {
                mode: if pushed && min % 2 == 1 {
                    ProbeMode::Watchdog
                } else if pushed {
                    ProbeMode::Pushed
                } else {
                    ProbeMode::Polled {
                        min_interval: ms(min),
                    }
                },
                initial_delay: ms(initial),
                period: ms(period),
                timeout: ms(100),
                success_threshold: success,
                failure_threshold: failure,
            },
        )
    };
    u.config.startup = probe(&c.probes[0]);
    u.config.readiness = probe(&c.probes[1]);
    u.config.liveness = probe(&c.probes[2]);
    u.config.restart = [
        RestartPolicy::Never,
        RestartPolicy::OnFailure,
        RestartPolicy::Always,
    ][usize::from(c.restart)];
    u.config.retry = RetryPolicy {
        attempts: c.retry.0,
        backoff: ms(c.retry.1),
        max_backoff: ms(c.retry.2),
        jitter: c.retry.3,
    };
    u.config.start_timeout = c.start_timeout.map(ms);
    u.config.stop_timeout = ms(c.stop_timeout);
    u.config.has_cleanup = c.cleanup;
    u.config.start_limit.burst = c.start_limit.0;
    u.config.start_limit.interval = ms(c.start_limit.1);
    u.config.breaker = c
        .breaker
        .map(|(failures, cooldown)| gantry_engine::BreakerConfig {
            failures,
            cooldown: ms(cooldown),
        });
    u.config.healthy_after = ms(c.healthy_after);
    u.config.start_grace = ms(c.start_grace);
    u
}

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Spawned(usize, u8),
    SpawnFailed(usize, u8),
    Exited(usize, u8, i32, bool),
    Probe(usize, u8, u8, bool),
    Cleanup(usize, bool),
    Command(u8, usize),
    /// `ExtendStartTimeout` for a unit, a generation choice and milliseconds.
    Extend(usize, u8, u64),
    /// `LivenessFailed` (sd_notify `WATCHDOG=trigger`) for a unit and a generation choice.
    Hung(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..3_000).prop_map(Op::Advance),
        3 => (0usize..13, 0u8..4).prop_map(|(u, g)| Op::Spawned(u, g)),
        1 => (0usize..13, 0u8..4).prop_map(|(u, g)| Op::SpawnFailed(u, g)),
        2 => (0usize..13, 0u8..4, -1i32..3, any::<bool>()).prop_map(|(u, g, c, s)| Op::Exited(u, g, c, s)),
        4 => (0usize..13, 0u8..3, 0u8..4, any::<bool>()).prop_map(|(u, r, s, ok)| Op::Probe(u, r, s, ok)),
        1 => (0usize..13, any::<bool>()).prop_map(|(u, ok)| Op::Cleanup(u, ok)),
        1 => (0u8..6, 0usize..13).prop_map(|(c, u)| Op::Command(c, u)),
        1 => (0usize..13, 0u8..4, 0u64..5_000).prop_map(|(u, g, by)| Op::Extend(u, g, by)),
        1 => (0usize..13, 0u8..4).prop_map(|(u, g)| Op::Hung(u, g)),
    ]
}

/// Checks the actions recorded since `from` against the running model.
struct Checker {
    state: Vec<State>,
    gens: Vec<u64>,
    decided: usize,
    finished: usize,
    seen: usize,
}

impl Checker {
    fn check(&mut self, sim: &Sim) -> Result<(), TestCaseError> {
        for (_, action) in &sim.actions[self.seen..] {
            prop_assert_eq!(self.finished, 0, "action after Finished: {:?}", action);
            match action {
                Action::Transition(n) => {
                    prop_assert_eq!(n.from, self.state[n.unit.0], "notice chain broken: {:?}", n);
                    prop_assert!(
                        n.from != n.to || n.reason.is_some(),
                        "silent self-notice {:?}",
                        n
                    );
                    self.state[n.unit.0] = n.to;
                }
                Action::Spawn { unit, r#gen, .. } => {
                    prop_assert!(*r#gen > self.gens[unit.0], "generation did not grow");
                    self.gens[unit.0] = *r#gen;
                }
                Action::Signal { unit, r#gen, .. } => {
                    prop_assert!(*r#gen >= 1 && *r#gen <= self.gens[unit.0]);
                }
                Action::BootDecided(_) => self.decided += 1,
                Action::Finished { .. } => self.finished += 1,
                Action::RunProbe { .. } | Action::RunCleanup { .. } => {}
            }
        }
        self.seen = sim.actions.len();
        prop_assert!(self.decided <= 1);
        if let Err(e) = sim.engine.check_invariants() {
            prop_assert!(false, "invariant broken: {}\n{:#?}", e, sim.log());
        }
        for (i, s) in self.state.iter().enumerate() {
            prop_assert_eq!(*s, sim.engine.unit(UnitId(i)).state);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// Random configurations (some invalid) fed random, partly nonsensical
    /// events never panic; notices form a consistent chain; deadlines are
    /// never left in the past; and Kill always finishes once every process
    /// is reported dead.
    #[test]
    fn random_event_sequences_never_panic(
        units in prop::collection::vec(chaos_unit(), 0..12),
        ops in prop::collection::vec(op(), 0..150),
        allow_degraded in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let built: Vec<U> = units.iter().enumerate().map(|(i, c)| chaos_config(i, c)).collect();
        let mut configs = resolve(built);
        for (i, c) in units.iter().enumerate() {
            for &(target, cond, required) in &c.deps {
                configs[i].deps.push(gantry_engine::Dep {
                    unit: UnitId(target),
                    condition: [Condition::Started, Condition::Ready, Condition::Completed][usize::from(cond)],
                    required,
                });
            }
        }
        let options = gantry_engine::EngineOptions { allow_degraded, seed };
        if let Err(e) = gantry_engine::Engine::new(configs.clone(), options) {
            // Invalid graphs are refused with a message, never a panic.
            prop_assert!(!e.to_string().is_empty());
            return Ok(());
        }
        let mut sim = Sim::from_configs(configs, options);
        let n = units.len();
        let mut checker = Checker {
            state: vec![State::Pending; n],
            gens: vec![0; n],
            decided: 0,
            finished: 0,
            seen: 0,
        };
        sim.start();
        checker.check(&sim)?;
        let pick_gen = |sim: &Sim, u: usize, g: u8| {
            let latest = sim.latest_gen(UnitId(u));
            match g {
                0 | 1 => latest,
                2 => latest.saturating_sub(1),
                _ => latest + 1,
            }
        };
        for op in ops {
            match op {
                Op::Advance(d) => {
                    sim.advance(ms(d));
                    if let Some(t) = sim.engine.poll_timeout() {
                        prop_assert!(t > sim.now, "deadline {} left in the past at {}", t, sim.now);
                    }
                }
                Op::Spawned(u, g) => {
                    let r#gen = pick_gen(&sim, u, g);
                    sim.event(Event::Spawned { unit: UnitId(u), r#gen, pid: 7 });
                }
                Op::SpawnFailed(u, g) => {
                    let r#gen = pick_gen(&sim, u, g);
                    sim.event(Event::SpawnFailed { unit: UnitId(u), r#gen, error: "boom".into() });
                }
                Op::Exited(u, g, code, signal) => {
                    let r#gen = pick_gen(&sim, u, g);
                    let status = if signal { ExitStatus::signal(9) } else { ExitStatus::code(code) };
                    sim.event(Event::Exited { unit: UnitId(u), r#gen, status });
                }
                Op::Probe(u, r, s, ok) => {
                    let role = ProbeRole::ALL[usize::from(r)];
                    let seq = match (s, sim.outstanding(UnitId(u), role)) {
                        (0 | 1, Some(seq)) => seq,
                        (2, _) => 0,
                        (_, _) => u64::from(s) * 1_000,
                    };
                    sim.feed_probe(UnitId(u), role, seq, ok);
                }
                Op::Cleanup(u, ok) => {
                    sim.event(Event::CleanupDone { unit: UnitId(u), ok, message: "x".into() });
                }
                Op::Command(c, u) => {
                    let command = match c {
                        0 => Command::Shutdown,
                        1 => Command::Kill,
                        2 => Command::Start(UnitId(u)),
                        3 => Command::Stop(UnitId(u)),
                        _ => Command::Restart(UnitId(u)),
                    };
                    sim.command(command);
                }
                Op::Extend(u, g, by) => {
                    let r#gen = pick_gen(&sim, u, g);
                    let before = sim.engine.get(UnitId(u)).and_then(|v| v.start_deadline);
                    sim.event(Event::ExtendStartTimeout { unit: UnitId(u), r#gen, by: ms(by) });
                    let after = sim.engine.get(UnitId(u)).and_then(|v| v.start_deadline);
                    // An extension only ever moves an armed deadline later.
                    prop_assert!(before.is_some() == after.is_some() && after >= before,
                        "extension moved u{}'s deadline from {:?} to {:?}", u, before, after);
                }
                Op::Hung(u, g) => {
                    let r#gen = pick_gen(&sim, u, g);
                    sim.event(Event::LivenessFailed { unit: UnitId(u), r#gen, message: "hung".into() });
                }
            }
            checker.check(&sim)?;
        }

        // A stack that booted while a critical unit is failed ends with exit code 1 too, as a
        // NO-GO does (the engine notes it when the shutdown begins).
        let booted = sim.outcome().is_some_and(|o| o.is_up());
        let critical_failed = (0..n).any(|u| {
            let v = sim.engine.unit(UnitId(u));
            v.priority == gantry_engine::Priority::Critical && v.state == State::Failed
        });
        let shutting_before = sim.engine.is_shutting_down();
        // Kill, then report every process dead: the engine must finish.
        sim.kill();
        for u in 0..n {
            let r#gen = sim.latest_gen(UnitId(u));
            sim.event(Event::SpawnFailed { unit: UnitId(u), r#gen, error: "gone".into() });
            sim.event(Event::Exited { unit: UnitId(u), r#gen, status: ExitStatus::signal(9) });
        }
        checker.check(&sim)?;
        prop_assert!(sim.engine.is_finished(), "not finished after kill: {:?}", sim.log());
        prop_assert_eq!(checker.finished, 1);
        for u in 0..n {
            let s = sim.engine.unit(UnitId(u)).state;
            prop_assert!(
                matches!(s, State::Stopped | State::Skipped | State::Failed | State::Completed),
                "u{} ended {}", u, s
            );
        }
        let no_go = matches!(sim.outcome(), Some(gantry_engine::Outcome::NoGo { .. }));
        if !shutting_before {
            let expected = if no_go || (booted && critical_failed) { 1 } else { 0 };
            prop_assert_eq!(sim.engine.exit_code(), expected);
        } else if no_go {
            // A shutdown already under way noted its failures when it began.
            prop_assert_eq!(sim.engine.exit_code(), 1);
        }
    }
}

#[test]
fn zero_durations_do_not_loop_forever() {
    // Zero backoff, zero timeouts and zero periods everywhere: every call
    // must still return, and Kill must still finish.
    let mut p = probe(0);
    p.mode = ProbeMode::Polled {
        min_interval: Duration::ZERO,
    };
    let mut sim = Sim::new(vec![
        external("ext").ready(p).start_timeout(0).retry(50, 0, 0),
        process("proc")
            .ready(p)
            .live(p)
            .start_timeout(0)
            .retry(50, 0, 0)
            .stop_timeout(0),
    ]);
    sim.start();
    sim.spawned("proc");
    sim.advance_ms(10);
    sim.kill();
    let r#gen = sim.latest_gen(sim.id("proc"));
    let proc_id = sim.id("proc");
    sim.event(Event::SpawnFailed {
        unit: proc_id,
        r#gen,
        error: "x".into(),
    });
    sim.event(Event::Exited {
        unit: proc_id,
        r#gen,
        status: ExitStatus::signal(9),
    });
    assert!(sim.engine.is_finished());
}

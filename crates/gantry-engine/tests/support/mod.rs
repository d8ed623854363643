//! Test harness: drives an `Engine` with a virtual clock and scripted events, and records every action as a readable trace.
//!
//! Tests build units by name with `process("db").ready(probe(..))`, run them in
//! a `Sim`, feed events by unit name and assert on trace lines such as
//! `"12ms spawn api#1"` or `"0ms db: pending -> starting"`.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use gantry_engine::{
    Action, BreakerConfig, Command, Condition, Dep, Engine, EngineOptions, Event, ExitStatus, Gen,
    Outcome, Priority, ProbeConfig, ProbeMode, ProbeRole, RestartPolicy, RetryPolicy, StartLimit,
    State, StopSignal, Time, UnitConfig, UnitId, UnitKind, UnitView,
};

pub const MS: Duration = Duration::from_millis(1);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A unit under construction; dependencies are named and resolved by `Sim`.
#[derive(Clone, Debug)]
pub struct U {
    pub config: UnitConfig,
    deps: Vec<(String, Condition, bool)>,
}

fn base(name: &str, kind: UnitKind) -> U {
    let mut config = UnitConfig::new(name, kind);
    // Deterministic, quiet defaults: each test turns on what it checks.
    config.restart = RestartPolicy::Never;
    config.retry = RetryPolicy {
        attempts: 1,
        backoff: ms(100),
        max_backoff: ms(10_000),
        jitter: false,
    };
    config.start_timeout = None;
    config.stop_timeout = ms(5_000);
    config.start_limit = StartLimit {
        burst: 5,
        interval: ms(10_000),
    };
    config.healthy_after = ms(60_000);
    U {
        config,
        deps: Vec::new(),
    }
}

pub fn process(name: &str) -> U {
    base(name, UnitKind::Process)
}

pub fn task(name: &str) -> U {
    base(name, UnitKind::Task)
}

pub fn external(name: &str) -> U {
    base(name, UnitKind::External)
}

/// A polled probe: `min_interval` 1ms, the given period, thresholds 1/3.
pub fn probe(period_ms: u64) -> ProbeConfig {
    ProbeConfig {
        mode: ProbeMode::Polled { min_interval: MS },
        initial_delay: Duration::ZERO,
        period: ms(period_ms),
        timeout: ms(1_000),
        success_threshold: 1,
        failure_threshold: 3,
    }
}

pub fn pushed() -> ProbeConfig {
    ProbeConfig {
        mode: ProbeMode::Pushed,
        ..probe(1_000)
    }
}

impl U {
    pub fn after(mut self, dep: &str, condition: Condition) -> U {
        self.deps.push((dep.to_string(), condition, true));
        self
    }
    pub fn soft_after(mut self, dep: &str, condition: Condition) -> U {
        self.deps.push((dep.to_string(), condition, false));
        self
    }
    pub fn critical(mut self) -> U {
        self.config.priority = Priority::Critical;
        self
    }
    pub fn layer(mut self, layer: usize) -> U {
        self.config.layer = layer;
        self
    }
    pub fn startup(mut self, p: ProbeConfig) -> U {
        self.config.startup = Some(p);
        self
    }
    pub fn ready(mut self, p: ProbeConfig) -> U {
        self.config.readiness = Some(p);
        self
    }
    pub fn live(mut self, p: ProbeConfig) -> U {
        self.config.liveness = Some(p);
        self
    }
    pub fn restart(mut self, policy: RestartPolicy) -> U {
        self.config.restart = policy;
        self
    }
    pub fn retry(mut self, attempts: u32, backoff_ms: u64, max_ms: u64) -> U {
        self.config.retry = RetryPolicy {
            attempts,
            backoff: ms(backoff_ms),
            max_backoff: ms(max_ms),
            jitter: false,
        };
        self
    }
    pub fn jitter(mut self) -> U {
        self.config.retry.jitter = true;
        self
    }
    pub fn start_timeout(mut self, t: u64) -> U {
        self.config.start_timeout = Some(ms(t));
        self
    }
    pub fn stop_timeout(mut self, t: u64) -> U {
        self.config.stop_timeout = ms(t);
        self
    }
    pub fn cleanup(mut self) -> U {
        self.config.has_cleanup = true;
        self
    }
    pub fn start_limit(mut self, burst: u32, interval_ms: u64) -> U {
        self.config.start_limit = StartLimit {
            burst,
            interval: ms(interval_ms),
        };
        self
    }
    pub fn breaker(mut self, failures: u32, cooldown_ms: u64) -> U {
        self.config.breaker = Some(BreakerConfig {
            failures,
            cooldown: ms(cooldown_ms),
        });
        self
    }
    pub fn grace(mut self, t: u64) -> U {
        self.config.start_grace = ms(t);
        self
    }
    pub fn healthy_after(mut self, t: u64) -> U {
        self.config.healthy_after = ms(t);
        self
    }
}

/// Resolves named dependencies into `UnitConfig`s.
pub fn resolve(units: Vec<U>) -> Vec<UnitConfig> {
    let index: HashMap<String, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.config.name.clone(), i))
        .collect();
    units
        .into_iter()
        .map(|u| {
            let mut config = u.config;
            config.deps = u
                .deps
                .iter()
                .map(|(name, condition, required)| Dep {
                    unit: UnitId(index[name]),
                    condition: *condition,
                    required: *required,
                })
                .collect();
            config
        })
        .collect()
}

/// A virtual world around one engine.
pub struct Sim {
    pub engine: Engine,
    pub now: Time,
    names: Vec<String>,
    kinds: Vec<UnitKind>,
    index: HashMap<String, UnitId>,
    trace: Vec<(Time, String)>,
    seen: usize,
    /// Every action, with the time it was drained.
    pub actions: Vec<(Time, Action)>,
    gens: Vec<Gen>,
    outstanding: HashMap<(UnitId, ProbeRole), u64>,
    next_pid: u32,
    inbox: VecDeque<Event>,
    /// Answer `Spawn` with `Spawned` at once.
    pub auto_spawn: bool,
    /// Answer `Signal` with `Exited` at once (signal 15 or 9).
    pub auto_exit: bool,
    /// Answer `RunCleanup` with a successful `CleanupDone` at once.
    pub auto_cleanup: bool,
    /// Answer probes of these units/roles at once with the given result.
    pub auto_probe: HashMap<(UnitId, ProbeRole), bool>,
    /// With `auto_spawn`, tasks also exit 0 right after they are spawned.
    pub auto_complete: bool,
    /// Verify the engine's cached counters after every call (O(units), so
    /// only for small worlds).
    pub check: bool,
}

impl Sim {
    pub fn new(units: Vec<U>) -> Sim {
        Sim::with(units, false, 1)
    }

    pub fn degraded(units: Vec<U>) -> Sim {
        Sim::with(units, true, 1)
    }

    pub fn with(units: Vec<U>, allow_degraded: bool, seed: u64) -> Sim {
        Sim::from_configs(
            resolve(units),
            EngineOptions {
                allow_degraded,
                seed,
            },
        )
    }

    /// A world around already-resolved configurations.
    pub fn from_configs(configs: Vec<UnitConfig>, options: EngineOptions) -> Sim {
        let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
        let kinds: Vec<UnitKind> = configs.iter().map(|c| c.kind).collect();
        let engine = Engine::new(configs, options).expect("valid units");
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), UnitId(i)))
            .collect();
        let n = names.len();
        Sim {
            engine,
            now: Time::ZERO,
            names,
            kinds,
            index,
            trace: Vec::new(),
            seen: 0,
            actions: Vec::new(),
            gens: vec![0; n],
            outstanding: HashMap::new(),
            next_pid: 1000,
            inbox: VecDeque::new(),
            auto_spawn: false,
            auto_exit: false,
            auto_cleanup: false,
            auto_probe: HashMap::new(),
            auto_complete: false,
            check: n <= 200,
        }
    }

    /// Adds `units` to the running engine (`Engine::add_units`); their dependencies may name
    /// existing units and each other.
    #[allow(dead_code)]
    pub fn add(&mut self, units: Vec<U>, why: &str) -> Result<Vec<UnitId>, String> {
        let n = self.names.len();
        let mut index = self.index.clone();
        for (k, u) in units.iter().enumerate() {
            index.insert(u.config.name.clone(), UnitId(n + k));
        }
        let configs: Vec<UnitConfig> = units
            .into_iter()
            .map(|u| {
                let mut config = u.config;
                config.deps = u
                    .deps
                    .iter()
                    .map(|(name, condition, required)| Dep {
                        unit: index[name],
                        condition: *condition,
                        required: *required,
                    })
                    .collect();
                config
            })
            .collect();
        let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
        let kinds: Vec<UnitKind> = configs.iter().map(|c| c.kind).collect();
        let ids = self
            .engine
            .add_units(configs, why)
            .map_err(|e| e.to_string())?;
        self.index = index;
        self.names.extend(names);
        self.kinds.extend(kinds);
        self.gens.resize(self.names.len(), 0);
        self.drain();
        Ok(ids)
    }

    /// Everything answers at once and every probe passes.
    pub fn cooperative(mut self) -> Sim {
        self.auto_spawn = true;
        self.auto_exit = true;
        self.auto_cleanup = true;
        self.auto_complete = true;
        for i in 0..self.names.len() {
            for role in ProbeRole::ALL {
                self.auto_probe.insert((UnitId(i), role), true);
            }
        }
        self
    }

    pub fn id(&self, name: &str) -> UnitId {
        *self
            .index
            .get(name)
            .unwrap_or_else(|| panic!("no unit {name}"))
    }

    pub fn name(&self, id: UnitId) -> &str {
        &self.names[id.0]
    }

    pub fn view(&self, name: &str) -> UnitView<'_> {
        self.engine.unit(self.id(name))
    }

    pub fn state(&self, name: &str) -> State {
        self.view(name).state
    }

    pub fn generation(&self, name: &str) -> Gen {
        self.gens[self.id(name).0]
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.engine.boot_outcome()
    }

    // ----- Driving --------------------------------------------------------

    pub fn start(&mut self) {
        self.engine.start(self.now);
        self.drain();
    }

    pub fn event(&mut self, event: Event) {
        self.engine.handle(self.now, event);
        self.drain();
    }

    /// Moves the clock forward by `d`, firing every deadline on the way at
    /// its exact time.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.engine.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    pub fn advance_ms(&mut self, n: u64) {
        self.advance(ms(n));
    }

    /// Jumps to the next deadline and fires it; false if there is none.
    pub fn advance_to_next(&mut self) -> bool {
        match self.engine.poll_timeout() {
            Some(t) => {
                self.now = self.now.max(t);
                self.engine.handle_timeout(self.now);
                self.drain();
                true
            }
            None => false,
        }
    }

    /// Fires deadlines until none is left, at most `limit` times.
    pub fn run_timers(&mut self, limit: usize) {
        for _ in 0..limit {
            if !self.advance_to_next() {
                return;
            }
        }
    }

    pub fn spawned(&mut self, name: &str) {
        let unit = self.id(name);
        let r#gen = self.gens[unit.0];
        self.next_pid += 1;
        let pid = self.next_pid;
        self.event(Event::Spawned { unit, r#gen, pid });
    }

    pub fn spawn_failed(&mut self, name: &str, error: &str) {
        let unit = self.id(name);
        let r#gen = self.gens[unit.0];
        self.event(Event::SpawnFailed {
            unit,
            r#gen,
            error: error.to_string(),
        });
    }

    pub fn exit(&mut self, name: &str, code: i32) {
        let r#gen = self.generation(name);
        self.exit_gen(name, r#gen, ExitStatus::code(code));
    }

    pub fn killed(&mut self, name: &str, signal: i32) {
        let r#gen = self.generation(name);
        self.exit_gen(name, r#gen, ExitStatus::signal(signal));
    }

    pub fn exit_gen(&mut self, name: &str, r#gen: Gen, status: ExitStatus) {
        let unit = self.id(name);
        self.event(Event::Exited {
            unit,
            r#gen,
            status,
        });
    }

    pub fn has_probe(&self, name: &str, role: ProbeRole) -> bool {
        self.outstanding.contains_key(&(self.id(name), role))
    }

    /// Answers the outstanding run of a polled probe.
    pub fn probe(&mut self, name: &str, role: ProbeRole, ok: bool) {
        let unit = self.id(name);
        let seq = self
            .outstanding
            .remove(&(unit, role))
            .unwrap_or_else(|| panic!("no {role} probe of {name} is running at {}", self.now));
        let message = if ok { "ok" } else { "connection refused" };
        self.event(Event::ProbeResult {
            unit,
            role,
            seq,
            ok,
            message: message.to_string(),
        });
    }

    /// Reports a pushed probe result (seq 0).
    pub fn push(&mut self, name: &str, role: ProbeRole, ok: bool) {
        let unit = self.id(name);
        self.event(Event::ProbeResult {
            unit,
            role,
            seq: 0,
            ok,
            message: if ok { "matched" } else { "no match" }.to_string(),
        });
    }

    /// The seq of the outstanding run of a probe, if any.
    pub fn outstanding(&self, unit: UnitId, role: ProbeRole) -> Option<u64> {
        self.outstanding.get(&(unit, role)).copied()
    }

    /// The latest spawned generation of a unit, by id.
    pub fn latest_gen(&self, unit: UnitId) -> Gen {
        self.gens.get(unit.0).copied().unwrap_or(0)
    }

    /// Feeds a probe result with an arbitrary seq (stale ones included).
    pub fn feed_probe(&mut self, unit: UnitId, role: ProbeRole, seq: u64, ok: bool) {
        if self.outstanding.get(&(unit, role)) == Some(&seq) {
            self.outstanding.remove(&(unit, role));
        }
        self.event(Event::ProbeResult {
            unit,
            role,
            seq,
            ok,
            message: if ok { "ok" } else { "refused" }.to_string(),
        });
    }

    /// The latest incarnation asks for `by_ms` more start time (sd_notify
    /// `EXTEND_TIMEOUT_USEC`).
    pub fn extend(&mut self, name: &str, by_ms: u64) {
        let r#gen = self.generation(name);
        self.extend_gen(name, r#gen, by_ms);
    }

    pub fn extend_gen(&mut self, name: &str, r#gen: Gen, by_ms: u64) {
        let unit = self.id(name);
        self.event(Event::ExtendStartTimeout {
            unit,
            r#gen,
            by: ms(by_ms),
        });
    }

    pub fn cleanup_done(&mut self, name: &str, ok: bool) {
        let unit = self.id(name);
        self.event(Event::CleanupDone {
            unit,
            ok,
            message: if ok { "done" } else { "exit code 1" }.to_string(),
        });
    }

    pub fn command(&mut self, command: Command) {
        self.event(Event::Command(command));
    }

    pub fn shutdown(&mut self) {
        self.command(Command::Shutdown);
    }

    pub fn kill(&mut self) {
        self.command(Command::Kill);
    }

    pub fn restart_unit(&mut self, name: &str) {
        let id = self.id(name);
        self.command(Command::Restart(id));
    }

    pub fn stop_unit(&mut self, name: &str) {
        let id = self.id(name);
        self.command(Command::Stop(id));
    }

    pub fn start_unit(&mut self, name: &str) {
        let id = self.id(name);
        self.command(Command::Start(id));
    }

    /// Brings a unit with a polled readiness probe to ready: spawned, then
    /// passes until the gate holds.
    pub fn make_ready(&mut self, name: &str) {
        self.spawned(name);
        for _ in 0..100 {
            if matches!(self.state(name), State::Ready) {
                return;
            }
            if self.has_probe(name, ProbeRole::Readiness) {
                self.probe(name, ProbeRole::Readiness, true);
            } else if self.has_probe(name, ProbeRole::Startup) {
                self.probe(name, ProbeRole::Startup, true);
            } else {
                self.advance_to_next();
            }
        }
        panic!("{name} did not become ready: {}", self.state(name));
    }

    // ----- Recording ------------------------------------------------------

    fn drain(&mut self) {
        loop {
            let verdict = if self.check {
                self.engine.check_invariants()
            } else {
                Ok(())
            };
            if let Err(e) = verdict {
                panic!(
                    "engine invariant broken at {}: {e}\n{:#?}",
                    self.now,
                    self.log()
                );
            }
            while let Some(action) = self.engine.poll_action() {
                self.record(action);
            }
            let Some(event) = self.inbox.pop_front() else {
                break;
            };
            self.engine.handle(self.now, event);
        }
    }

    fn record(&mut self, action: Action) {
        let line = self.describe(&action);
        self.trace.push((self.now, line));
        match &action {
            Action::Spawn { unit, r#gen, .. } => {
                self.gens[unit.0] = *r#gen;
                // A new incarnation voids the runs of the old one.
                self.outstanding.retain(|(u, _), _| u != unit);
                if self.auto_spawn {
                    self.next_pid += 1;
                    self.inbox.push_back(Event::Spawned {
                        unit: *unit,
                        r#gen: *r#gen,
                        pid: self.next_pid,
                    });
                    if self.auto_complete && self.kinds[unit.0] == UnitKind::Task {
                        self.inbox.push_back(Event::Exited {
                            unit: *unit,
                            r#gen: *r#gen,
                            status: ExitStatus::code(0),
                        });
                    }
                }
            }
            Action::RunProbe {
                unit, role, seq, ..
            } => {
                let previous = self.outstanding.insert((*unit, *role), *seq);
                assert!(
                    previous.is_none(),
                    "{} {role} probe overlaps itself at {}",
                    self.names[unit.0],
                    self.now
                );
                if let Some(&ok) = self.auto_probe.get(&(*unit, *role)) {
                    self.outstanding.remove(&(*unit, *role));
                    self.inbox.push_back(Event::ProbeResult {
                        unit: *unit,
                        role: *role,
                        seq: *seq,
                        ok,
                        message: "auto".to_string(),
                    });
                }
            }
            Action::Signal {
                unit,
                r#gen,
                signal,
            } => {
                if self.auto_exit {
                    let number = match signal {
                        StopSignal::Graceful => 15,
                        StopSignal::Kill => 9,
                    };
                    self.inbox.push_back(Event::Exited {
                        unit: *unit,
                        r#gen: *r#gen,
                        status: ExitStatus::signal(number),
                    });
                }
            }
            Action::RunCleanup { unit } => {
                if self.auto_cleanup {
                    self.inbox.push_back(Event::CleanupDone {
                        unit: *unit,
                        ok: true,
                        message: "done".to_string(),
                    });
                }
            }
            Action::Transition(notice) => {
                // A state change may abandon the unit's runs (a new attempt,
                // a stop); the ones the engine still waits for stay (liveness
                // and readiness both run while a unit is up).
                let engine = &self.engine;
                self.outstanding.retain(|&(u, role), seq| {
                    u != notice.unit || engine.probe_in_flight(u, role) == Some(*seq)
                });
            }
            Action::BootDecided(_) | Action::Finished { .. } => {}
        }
        self.actions.push((self.now, action));
    }

    fn describe(&self, action: &Action) -> String {
        let name = |u: &UnitId| self.names[u.0].as_str();
        match action {
            Action::Spawn {
                unit,
                r#gen,
                attempt,
            } => {
                if *attempt > 1 {
                    format!("spawn {}#{} attempt {attempt}", name(unit), r#gen)
                } else {
                    format!("spawn {}#{}", name(unit), r#gen)
                }
            }
            Action::RunProbe { unit, role, .. } => format!("probe {} {role}", name(unit)),
            Action::Signal {
                unit,
                r#gen,
                signal,
            } => format!("signal {}#{} {signal}", name(unit), r#gen),
            Action::RunCleanup { unit } => format!("cleanup {}", name(unit)),
            Action::Transition(n) => match &n.reason {
                Some(r) => format!("{}: {} -> {} ({r})", name(&n.unit), n.from, n.to),
                None => format!("{}: {} -> {}", name(&n.unit), n.from, n.to),
            },
            Action::BootDecided(Outcome::Go) => "boot go".to_string(),
            Action::BootDecided(Outcome::Degraded { failed }) => {
                let names: Vec<&str> = failed.iter().map(name).collect();
                format!("boot degraded [{}]", names.join(", "))
            }
            Action::BootDecided(Outcome::NoGo { unit, reason }) => {
                format!("boot no-go {}: {reason}", name(unit))
            }
            Action::Finished { exit_code } => format!("finished {exit_code}"),
        }
    }

    /// All trace lines so far, as `"<ms>ms <line>"`.
    pub fn log(&self) -> Vec<String> {
        self.trace
            .iter()
            .map(|(t, l)| format!("{}ms {l}", t.as_millis()))
            .collect()
    }

    /// Trace lines recorded since the last `take`.
    pub fn take(&mut self) -> Vec<String> {
        let lines = self.trace[self.seen..]
            .iter()
            .map(|(t, l)| format!("{}ms {l}", t.as_millis()))
            .collect();
        self.seen = self.trace.len();
        lines
    }

    /// Lines since the last `take` whose text (after the time) starts with
    /// one of `prefixes`.
    pub fn take_only(&mut self, prefixes: &[&str]) -> Vec<String> {
        self.take()
            .into_iter()
            .filter(|line| {
                let body = line.split_once(' ').map_or("", |(_, b)| b);
                prefixes.iter().any(|p| body.starts_with(p))
            })
            .collect()
    }

    /// Every line of the whole trace containing `needle`.
    pub fn grep(&self, needle: &str) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }

    /// Times (ms) of every `Spawn` of `name`.
    pub fn spawn_times(&self, name: &str) -> Vec<u64> {
        let id = self.id(name);
        self.actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::Spawn { unit, .. } if *unit == id))
            .map(|(t, _)| t.as_millis())
            .collect()
    }

    /// Times (ms) of every `RunProbe` of `name` for `role`.
    pub fn probe_times(&self, name: &str, role: ProbeRole) -> Vec<u64> {
        let id = self.id(name);
        self.actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::RunProbe { unit, role: r, .. } if *unit == id && *r == role))
            .map(|(t, _)| t.as_millis())
            .collect()
    }
}

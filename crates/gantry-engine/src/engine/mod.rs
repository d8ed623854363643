//! The lifecycle engine: a deterministic state machine that turns `(now, Event)` inputs into `Action`s and deadlines.
//!
//! How it is organised:
//!
//! * Inputs (`start`, `handle`, `handle_timeout`) change one or a few units
//!   and mark them, and their neighbours, *dirty*.
//! * `flush` then runs `step` on every dirty unit until nothing changes.
//!   `step` is the reconciler: a waiting unit starts when its gates hold, a
//!   unit asked to stop is signalled when its stopping dependents are gone.
//!   Because every change marks only the neighbours, an event costs O(degree),
//!   not O(units).
//! * Every private state change goes through `set_life`, which keeps the
//!   counters (settled, busy, layers) right, cancels the timers that belonged
//!   to the old state, and emits a `Notice` when the public state changes.
//!
//! Where things are: this file holds the struct and the public API; `books`
//! the bookkeeping above (`sync`, `flush`, `set_life`); `start` the
//! reconciler's step, gates, attempts and retries; `probes` the three probe
//! roles; `failure` the boot verdict, runtime failures and automatic restarts;
//! `stop` stopping, shutdown and kill; `events` what the shell reports and the
//! deadlines; `commands` what people ask for; `switches` an operator's disable (kept down,
//! dependents skipped, the verdict degraded) and quarantine (probe results ignored);
//! `invariants` the test oracle.

mod books;
mod commands;
mod events;
mod failure;
mod grow;
mod invariants;
mod probes;
mod start;
mod stop;
mod switches;

use std::collections::VecDeque;

use crate::config::{EngineOptions, Priority, ProbeRole, UnitConfig, UnitId};
use crate::error::EngineError;
use crate::graph;
use crate::io::{Action, Event, Outcome};
use crate::rng::SplitMix64;
use crate::time::Time;
use crate::timers::{TimerKind, Timers};
use crate::unit::{Life, Unit};
use crate::view::UnitView;

/// The sans-IO lifecycle engine for a whole stack.
///
/// Contract with the shell: call `start` once, then feed every observation
/// with `handle` and call `handle_timeout` whenever `now >= poll_timeout()`;
/// after each of these calls drain `poll_action` and carry the actions out.
/// The engine never reads a clock, never sleeps and never does I/O, so the
/// same inputs always produce the same outputs.
#[derive(Debug)]
pub struct Engine {
    units: Vec<Unit>,
    dependents: Vec<Vec<(UnitId, usize, bool)>>,
    rank: Vec<usize>,
    layers: Vec<Vec<UnitId>>,
    layer_unsettled: Vec<usize>,
    /// Units of each dense layer that are still going down (`is_blocking`): a shutdown
    /// signals a unit only once every higher layer has none left.
    layer_blocking: Vec<usize>,
    /// Units of dense layers `0..=open_layer` may start.
    open_layer: usize,
    options: EngineOptions,
    rng: SplitMix64,
    timers: Timers,
    actions: VecDeque<Action>,
    dirty: VecDeque<UnitId>,
    queued: Vec<bool>,
    now: Time,
    started: bool,
    /// Units whose private state is not settled right now.
    unsettled: usize,
    /// Units that still have something to do before a shutdown can finish.
    busy: usize,
    outcome: Option<Outcome>,
    /// A NO-GO noticed inside a transition, acted upon by `flush` so that the
    /// abort never runs in the middle of another unit's transition.
    pending_nogo: Option<(UnitId, String)>,
    shutting_down: bool,
    kill_mode: bool,
    finished: bool,
    exit_code: i32,
    next_seq: u64,
    /// Epoch-stamped visit marks for graph walks, so a walk never has to
    /// clear an O(n) array.
    visit: Vec<u64>,
    visit_epoch: u64,
    /// A gradual enable (`Command::Enable`): the units still to start, dependencies first,
    /// one at a time, each once the one before passed its gate; and the enabled unit.
    enabling: VecDeque<UnitId>,
    enabling_root: Option<UnitId>,
    /// The unit in front of `enabling` was started and its gate is awaited.
    enabling_front_started: bool,
}

impl Engine {
    /// Builds an engine for `units` (indices are `UnitId`s).
    ///
    /// Fails, without panicking, on a dependency index out of range, a
    /// dependency cycle, a dependency on a later layer, or a `completed`
    /// condition on something that is not a task.
    pub fn new(units: Vec<UnitConfig>, options: EngineOptions) -> Result<Engine, EngineError> {
        let graph = graph::build(&units)?;
        let n = units.len();
        let layer_unsettled = graph.layers.iter().map(Vec::len).collect();
        let layer_count = graph.layers.len();
        Ok(Engine {
            units: units.into_iter().map(Unit::new).collect(),
            dependents: graph.dependents,
            rank: graph.rank,
            layers: graph.layers,
            layer_blocking: vec![0; layer_count],
            layer_unsettled,
            open_layer: 0,
            options,
            rng: SplitMix64::new(options.seed),
            timers: Timers::new(n),
            actions: VecDeque::new(),
            dirty: VecDeque::new(),
            queued: vec![false; n],
            now: Time::ZERO,
            started: false,
            unsettled: n,
            busy: n,
            outcome: None,
            pending_nogo: None,
            shutting_down: false,
            kill_mode: false,
            finished: false,
            exit_code: 0,
            next_seq: 1,
            visit: vec![0; n],
            visit_epoch: 0,
            enabling: VecDeque::new(),
            enabling_root: None,
            enabling_front_started: false,
        })
    }

    /// Begins the boot. Every unit whose gates already hold starts at `now`.
    pub fn start(&mut self, now: Time) {
        self.tick(now);
        if self.started || self.shutting_down {
            return;
        }
        self.started = true;
        self.stop_disabled_at_boot();
        for i in 0..self.units.len() {
            self.mark(UnitId(i));
        }
        self.flush();
    }

    /// Feeds one event observed at `now`.
    pub fn handle(&mut self, now: Time, event: Event) {
        self.tick(now);
        if self.finished {
            return;
        }
        match event {
            Event::Spawned { unit, r#gen, pid } => self.on_spawned(unit, r#gen, pid),
            Event::SpawnFailed { unit, r#gen, error } => self.on_spawn_failed(unit, r#gen, error),
            Event::Exited {
                unit,
                r#gen,
                status,
            } => self.on_exited(unit, r#gen, status),
            Event::ProbeResult {
                unit,
                role,
                seq,
                ok,
                message,
            } => self.on_probe_result(unit, role, seq, ok, message),
            Event::CleanupDone { unit, ok, message } => self.on_cleanup_done(unit, ok, message),
            Event::ExtendStartTimeout { unit, r#gen, by } => {
                self.on_extend_start_timeout(unit, r#gen, by);
            }
            Event::LivenessFailed {
                unit,
                r#gen,
                message,
            } => self.on_liveness_failed(unit, r#gen, message),
            Event::Command(command) => self.on_command(command),
        }
        self.flush();
    }

    /// Fires every deadline due at `now`; call when `now >= poll_timeout()`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.tick(now);
        while let Some((unit, kind)) = self.timers.pop_due(self.now) {
            self.on_timer(unit, kind);
            self.flush();
        }
    }

    /// The next action for the shell, in the order they were decided.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next deadline, `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.next()
    }

    /// A view of unit `id`.
    ///
    /// # Panics
    ///
    /// When `id` is not a unit of this engine; use `get` for untrusted ids.
    pub fn unit(&self, id: UnitId) -> UnitView<'_> {
        match self.get(id) {
            Some(view) => view,
            None => panic!("no unit {id}: the engine has {} units", self.units.len()),
        }
    }

    /// A view of unit `id`, or `None` when out of range.
    pub fn get(&self, id: UnitId) -> Option<UnitView<'_>> {
        let u = self.units.get(id.0)?;
        Some(UnitView {
            id,
            name: &u.config.name,
            kind: u.config.kind,
            priority: u.config.priority,
            layer: u.config.layer,
            state: u.state,
            r#gen: u.r#gen,
            attempt: u.attempt,
            restarts: u.restarts,
            commanded_restarts: u.commanded_restarts,
            pid: u.pid(),
            started_at: u.started_at,
            ready_at: u.ready_at,
            last_error: u.last_error.as_deref(),
            reason: u.reason.as_deref(),
            retry_at: self.timers.get(id, TimerKind::Backoff),
            start_deadline: self.timers.get(id, TimerKind::Start),
            breaker: u.breaker.as_ref().map(|b| b.state()),
            liveness_failures: u.liveness_failures(),
            readiness_losses: u.readiness_losses,
            config: &u.config,
        })
    }

    /// The state of unit `id` alone (no view built: no timer lookups), or `None` when out
    /// of range. For the per-probe paths that ask only this.
    pub fn state_of(&self, id: UnitId) -> Option<crate::State> {
        self.units.get(id.0).map(|u| u.state)
    }

    /// Views of all units, in id order.
    pub fn units(&self) -> impl Iterator<Item = UnitView<'_>> + '_ {
        (0..self.units.len()).filter_map(|i| self.get(UnitId(i)))
    }

    /// Looks a unit up by name (O(n); meant for commands typed by people).
    pub fn find(&self, name: &str) -> Option<UnitId> {
        self.units
            .iter()
            .position(|u| u.config.name == name)
            .map(UnitId)
    }

    /// The boot verdict, once decided.
    pub fn boot_outcome(&self) -> Option<Outcome> {
        self.outcome.clone()
    }

    /// Shutdown completed: everything stopped and cleanups done.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// A shutdown (or kill) is in progress or done.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Critical units that are failed now (after the boot: a runtime failure,
    /// which makes the exit code of the stop 1).
    pub fn critical_failed(&self) -> impl Iterator<Item = UnitId> + '_ {
        self.units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.config.priority == Priority::Critical && u.life == Life::Failed)
            .map(|(i, _)| UnitId(i))
    }

    /// The exit code `Finished` carries (or will carry): 1 after a NO-GO, and
    /// after a stop while a critical unit was failed; 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }

    /// The `seq` of the run of `role` the engine waits for, if that probe is
    /// active; for test harnesses that answer probes.
    #[doc(hidden)]
    pub fn probe_in_flight(&self, id: UnitId, role: ProbeRole) -> Option<u64> {
        let p = self.units.get(id.0)?.probe(role)?;
        p.in_flight.filter(|_| p.active)
    }

    /// The latest `now` seen; inputs never move the clock backwards.
    pub fn now(&self) -> Time {
        self.now
    }
}

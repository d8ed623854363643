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

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::{
    EngineOptions, Priority, ProbeRole, RestartPolicy, UnitConfig, UnitId, UnitKind,
};
use crate::error::EngineError;
use crate::graph;
use crate::io::{Action, Command, Event, ExitStatus, Gen, Notice, Outcome, StopSignal};
use crate::rng::SplitMix64;
use crate::time::{HumanDuration, Time};
use crate::timers::{TimerKind, Timers};
use crate::unit::{Edge, Goal, Life, Proc, Unit};
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
        })
    }

    /// Begins the boot. Every unit whose gates already hold starts at `now`.
    pub fn start(&mut self, now: Time) {
        self.tick(now);
        if self.started || self.shutting_down {
            return;
        }
        self.started = true;
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
            pid: u.pid(),
            started_at: u.started_at,
            ready_at: u.ready_at,
            last_error: u.last_error.as_deref(),
            reason: u.reason.as_deref(),
            retry_at: self.timers.get(id, TimerKind::Backoff),
            start_deadline: self.timers.get(id, TimerKind::Start),
            breaker: u.breaker.as_ref().map(|b| b.state()),
            liveness_failures: u.liveness_failures(),
            config: &u.config,
        })
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

    /// The exit code `Finished` carries (or will carry).
    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }

    /// The latest `now` seen; inputs never move the clock backwards.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Recomputes every cached count from scratch and compares; for tests.
    ///
    /// The engine keeps counters instead of scanning (so an event costs
    /// O(degree)); this is the oracle that proves the counters right.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        if !self.dirty.is_empty() {
            return Err("dirty units left after a call".into());
        }
        let mut busy = 0;
        let mut unsettled = 0;
        let mut blocked_by = vec![0usize; self.units.len()];
        let mut layer_blocking = vec![0usize; self.layers.len()];
        for (i, u) in self.units.iter().enumerate() {
            if u.blocking {
                layer_blocking[self.rank[i]] += 1;
                for dep in &u.config.deps {
                    blocked_by[dep.unit.0] += 1;
                }
            }
        }
        if layer_blocking != self.layer_blocking {
            return Err(format!(
                "layer_blocking {:?} != {layer_blocking:?}",
                self.layer_blocking
            ));
        }
        for (i, u) in self.units.iter().enumerate() {
            let name = &u.config.name;
            let id = UnitId(i);
            if u.busy != u.is_busy() || u.blocking != u.is_blocking() || u.facing != u.facing() {
                return Err(format!("{name}: stale busy/blocking/facing cache"));
            }
            busy += usize::from(u.busy);
            unsettled += usize::from(!u.life.is_settled());
            if u.blocked_by != blocked_by[i] {
                return Err(format!(
                    "{name}: blocked_by {} != {}",
                    u.blocked_by, blocked_by[i]
                ));
            }
            let edges: Vec<Edge> = u
                .config
                .deps
                .iter()
                .map(|&dep| Edge::of(self.units[dep.unit.0].facing(), dep))
                .collect();
            if edges != u.edges {
                return Err(format!("{name}: stale edges"));
            }
            let unsatisfied = edges.iter().filter(|e| !e.satisfied).count();
            let dead = edges.iter().filter(|e| e.dead_required).count();
            if (unsatisfied, dead) != (u.unsatisfied, u.dead_required) {
                return Err(format!("{name}: edge counters off"));
            }
            if u.state != u.public_state() {
                return Err(format!(
                    "{name}: announced {} but is {}",
                    u.state,
                    u.public_state()
                ));
            }
            // Each deadline belongs to one life.
            let owned = [
                (
                    TimerKind::Start,
                    matches!(u.life, Life::Spawning | Life::Probing),
                ),
                (
                    TimerKind::Backoff,
                    matches!(u.life, Life::BackingOff { .. }),
                ),
                (TimerKind::Stop, matches!(u.life, Life::Stopping { .. })),
            ];
            for (kind, allowed) in owned {
                if self.timers.get(id, kind).is_some() && !allowed {
                    return Err(format!("{name}: {kind:?} timer armed in {:?}", u.life));
                }
            }
            for role in ProbeRole::ALL {
                let active = u.probe(role).is_some_and(|p| p.active);
                let allowed = match role {
                    ProbeRole::Liveness => matches!(u.life, Life::Up { .. }),
                    ProbeRole::Startup | ProbeRole::Readiness => u.life == Life::Probing,
                };
                if active && (!allowed || u.stop_requested) {
                    return Err(format!("{name}: {role} probe active in {:?}", u.life));
                }
            }
        }
        if busy != self.busy || unsettled != self.unsettled {
            return Err(format!(
                "busy {busy} (cached {}), unsettled {unsettled} (cached {})",
                self.busy, self.unsettled
            ));
        }
        Ok(())
    }

    // ----- Plumbing -------------------------------------------------------

    /// Time never goes backwards inside the engine, even if a caller's
    /// clock does; deadlines computed earlier stay meaningful.
    fn tick(&mut self, now: Time) {
        self.now = self.now.max(now);
    }

    fn valid(&self, id: UnitId) -> bool {
        id.0 < self.units.len()
    }

    fn emit(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn mark(&mut self, id: UnitId) {
        if !self.queued[id.0] {
            self.queued[id.0] = true;
            self.dirty.push_back(id);
        }
    }

    /// Dependents may start (or be skipped) and dependencies may be
    /// signalled when a unit changes, so both sides are re-examined.
    fn mark_neighbours(&mut self, id: UnitId) {
        for k in 0..self.units[id.0].config.deps.len() {
            let dep = self.units[id.0].config.deps[k].unit;
            self.mark(dep);
        }
        for k in 0..self.dependents[id.0].len() {
            let (dependent, _, _) = self.dependents[id.0][k];
            self.mark(dependent);
        }
    }

    fn hard_dependents(&self, id: UnitId) -> impl Iterator<Item = UnitId> + '_ {
        self.dependents[id.0]
            .iter()
            .filter(|&&(_, _, required)| required)
            .map(|&(d, _, _)| d)
    }

    fn next_epoch(&mut self) -> u64 {
        self.visit_epoch += 1;
        self.visit_epoch
    }

    /// Marks `id` visited in walk `epoch`; false if it already was.
    fn visit(&mut self, id: UnitId, epoch: u64) -> bool {
        if self.visit[id.0] == epoch {
            return false;
        }
        self.visit[id.0] = epoch;
        true
    }

    /// Brings every cached count that depends on unit `id` up to date:
    /// the busy count, its dependencies' `blocked_by`, and its dependents'
    /// edge statuses. Must run after any change to a unit's life, process,
    /// goal or stop request; it costs O(1) unless something it caches
    /// actually changed, so gates never rescan a 10,000-edge list.
    fn sync(&mut self, id: UnitId) {
        let u = &mut self.units[id.0];
        let busy = u.is_busy();
        if busy != u.busy {
            u.busy = busy;
            if busy {
                self.busy += 1;
            } else {
                self.busy = self.busy.saturating_sub(1);
            }
        }

        let blocking = u.is_blocking();
        if blocking != u.blocking {
            u.blocking = blocking;
            let layer = self.rank[id.0];
            if blocking {
                self.layer_blocking[layer] += 1;
            } else {
                self.layer_blocking[layer] = self.layer_blocking[layer].saturating_sub(1);
                if self.layer_blocking[layer] == 0 {
                    self.wake_lower_layers(layer);
                }
            }
            for k in 0..self.units[id.0].config.deps.len() {
                let dep = self.units[id.0].config.deps[k].unit;
                let d = &mut self.units[dep.0];
                if blocking {
                    d.blocked_by += 1;
                } else {
                    d.blocked_by = d.blocked_by.saturating_sub(1);
                }
                self.mark(dep);
            }
        }

        let facing = self.units[id.0].facing();
        if facing != self.units[id.0].facing {
            self.units[id.0].facing = facing;
            for j in 0..self.dependents[id.0].len() {
                let (d, k, _) = self.dependents[id.0][j];
                let dependent = &mut self.units[d.0];
                let new = Edge::of(facing, dependent.config.deps[k]);
                let old = std::mem::replace(&mut dependent.edges[k], new);
                if new == old {
                    continue;
                }
                match (old.satisfied, new.satisfied) {
                    (true, false) => dependent.unsatisfied += 1,
                    (false, true) => {
                        dependent.unsatisfied = dependent.unsatisfied.saturating_sub(1);
                    }
                    _ => {}
                }
                match (old.dead_required, new.dead_required) {
                    (false, true) => dependent.dead_required += 1,
                    (true, false) => {
                        dependent.dead_required = dependent.dead_required.saturating_sub(1);
                    }
                    _ => {}
                }
                self.mark(d);
            }
        }
    }

    /// Runs the reconciler until nothing is dirty, then decides the boot and
    /// the end of the shutdown.
    fn flush(&mut self) {
        loop {
            if let Some((unit, reason)) = self.pending_nogo.take() {
                self.abort_boot(unit, reason);
                continue;
            }
            let Some(id) = self.dirty.pop_front() else {
                break;
            };
            self.queued[id.0] = false;
            self.sync(id);
            self.step(id);
            self.sync(id);
        }
        if self.started && self.outcome.is_none() && !self.shutting_down && self.unsettled == 0 {
            let failed: Vec<UnitId> = (0..self.units.len())
                .filter(|&i| self.units[i].life == Life::Failed)
                .map(UnitId)
                .collect();
            let outcome = if failed.is_empty() {
                Outcome::Go
            } else {
                Outcome::Degraded { failed }
            };
            self.decide(outcome);
        }
        if self.shutting_down && !self.finished && self.busy == 0 {
            self.finished = true;
            self.emit(Action::Finished {
                exit_code: self.exit_code,
            });
        }
    }

    fn decide(&mut self, outcome: Outcome) {
        if matches!(outcome, Outcome::NoGo { .. }) {
            self.exit_code = 1;
        }
        self.outcome = Some(outcome.clone());
        self.emit(Action::BootDecided(outcome));
    }

    /// The single place where a unit's private state changes. Returns
    /// whether a `Notice` was emitted (the public state changed).
    fn set_life(&mut self, id: UnitId, life: Life, reason: Option<String>) -> bool {
        let i = id.0;
        let was_settled = self.units[i].life.is_settled();
        self.units[i].life = life;
        match (was_settled, life.is_settled()) {
            (false, true) => self.unsettled = self.unsettled.saturating_sub(1),
            (true, false) => self.unsettled += 1,
            _ => {}
        }
        if life.is_settled() && !self.units[i].settled_once {
            self.units[i].settled_once = true;
            let layer = self.rank[i];
            self.layer_unsettled[layer] = self.layer_unsettled[layer].saturating_sub(1);
            self.advance_layers();
        }
        self.prune_timers(id);
        if reason.is_some() {
            self.units[i].reason.clone_from(&reason);
        }
        let changed = self.refresh(id, reason.clone());
        self.sync(id);
        self.mark(id);
        self.mark_neighbours(id);
        match life {
            Life::Failed => {
                let why = reason.unwrap_or_else(|| "failed".to_string());
                self.on_failed(id, why);
            }
            Life::Skipped => {
                let why = reason.unwrap_or_else(|| "skipped".to_string());
                self.on_skipped(id, why);
            }
            _ => {}
        }
        changed
    }

    /// Like `set_life`, but a change that keeps the public state (a failed
    /// attempt stays `starting`) is still announced, so the timeline shows it.
    fn set_life_noted(&mut self, id: UnitId, life: Life, reason: String) {
        if !self.set_life(id, life, Some(reason.clone())) {
            self.note(id, reason);
        }
    }

    fn note(&mut self, id: UnitId, reason: String) {
        let state = self.units[id.0].state;
        self.units[id.0].reason = Some(reason.clone());
        self.emit(Action::Transition(Notice {
            unit: id,
            at: self.now,
            from: state,
            to: state,
            reason: Some(reason),
        }));
    }

    /// Re-derives the public state and announces it if it changed.
    fn refresh(&mut self, id: UnitId, reason: Option<String>) -> bool {
        let u = &mut self.units[id.0];
        let to = u.public_state();
        let from = u.state;
        if to == from {
            return false;
        }
        u.state = to;
        self.emit(Action::Transition(Notice {
            unit: id,
            at: self.now,
            from,
            to,
            reason,
        }));
        true
    }

    /// Cancels the timers and probes that do not belong to the current life.
    fn prune_timers(&mut self, id: UnitId) {
        let life = self.units[id.0].life;
        if !matches!(life, Life::Spawning | Life::Probing) {
            self.timers.cancel(id, TimerKind::Start);
        }
        if !matches!(life, Life::BackingOff { .. }) {
            self.timers.cancel(id, TimerKind::Backoff);
        }
        if !matches!(life, Life::Stopping { .. }) {
            self.timers.cancel(id, TimerKind::Stop);
        }
        if life != Life::Probing {
            self.deactivate_probe(id, ProbeRole::Startup);
            self.deactivate_probe(id, ProbeRole::Readiness);
        }
        if !matches!(life, Life::Up { .. }) {
            self.deactivate_probe(id, ProbeRole::Liveness);
        }
    }

    fn advance_layers(&mut self) {
        while self.open_layer + 1 < self.layers.len() && self.layer_unsettled[self.open_layer] == 0
        {
            self.open_layer += 1;
            for k in 0..self.layers[self.open_layer].len() {
                let id = self.layers[self.open_layer][k];
                self.mark(id);
            }
        }
    }

    // ----- The reconciler -------------------------------------------------

    fn step(&mut self, id: UnitId) {
        let u = &self.units[id.0];
        if u.stop_requested {
            let stopping = matches!(u.life, Life::Stopping { .. } | Life::CleaningUp);
            if !stopping && self.dependents_clear(id) && self.higher_layers_clear(id) {
                self.begin_stop(id);
            }
            return;
        }
        match u.life {
            Life::Waiting => self.try_begin(id, None),
            // The backoff is over but a gate did not hold yet (the old
            // process still exiting, dependents still stopping).
            Life::BackingOff { until, .. } if until <= self.now => self.try_begin(id, None),
            _ => {}
        }
    }

    /// No dependent that is going down is still up. A unit is signalled, and
    /// a restarting unit respawned, only then: this is what gives the reverse
    /// dependency order.
    fn dependents_clear(&self, id: UnitId) -> bool {
        self.units[id.0].blocked_by == 0
    }

    /// During a shutdown, nothing of a higher layer is still going down: layers are
    /// barriers at stop as at start, in reverse (the stores of layer 0 stop last).
    /// A kill, a restart or a stop command is not held by layers.
    fn higher_layers_clear(&self, id: UnitId) -> bool {
        if !self.shutting_down || self.kill_mode {
            return true;
        }
        self.layer_blocking[self.rank[id.0] + 1..]
            .iter()
            .all(|&n| n == 0)
    }

    /// Layer `layer` has nothing left going down: the units below it that were held
    /// by it are looked at again, down to the first layer that is itself still busy.
    fn wake_lower_layers(&mut self, layer: usize) {
        if !self.shutting_down {
            return;
        }
        for l in (0..layer).rev() {
            for k in 0..self.layers[l].len() {
                let id = self.layers[l][k];
                if self.units[id.0].stop_requested {
                    self.mark(id);
                }
            }
            if self.layer_blocking[l] > 0 {
                break;
            }
        }
    }

    /// Starts an attempt if every gate holds; otherwise parks the unit in
    /// `Waiting` (or skips it when a required dependency is dead).
    fn try_begin(&mut self, id: UnitId, reason: Option<String>) {
        if !self.started || self.shutting_down || self.units[id.0].goal != Goal::Up {
            return;
        }
        let u = &self.units[id.0];
        if u.dead_required > 0 {
            // Rare and final, so finding the culprit may scan the edges.
            let why = u
                .edges
                .iter()
                .position(|e| e.dead_required)
                .map(|k| {
                    let d = &self.units[u.config.deps[k].unit.0];
                    format!("dependency {} {}", d.config.name, d.state)
                })
                .unwrap_or_else(|| "a required dependency is gone".to_string());
            self.set_life(id, Life::Skipped, Some(why));
            return;
        }
        // The previous incarnation must be gone before a new one starts, so
        // that two copies never fight over a port or a data directory.
        let blocked = self.rank[id.0] > self.open_layer
            || u.unsatisfied > 0
            || u.proc != Proc::Down
            || !self.dependents_clear(id);
        if blocked {
            // A unit between attempts keeps showing as starting (or degraded)
            // rather than flashing back to pending; `step` retries it.
            if !matches!(
                self.units[id.0].life,
                Life::Waiting | Life::BackingOff { .. }
            ) {
                self.set_life(id, Life::Waiting, reason);
            }
            return;
        }
        let now = self.now;
        let admitted = match self.units[id.0].breaker.as_mut() {
            Some(breaker) => breaker.admit(now),
            None => Ok(()),
        };
        if let Err(until) = admitted {
            let why = reason.unwrap_or_else(|| format!("start breaker open until {until}"));
            self.set_life(
                id,
                Life::BackingOff {
                    until,
                    after_up: false,
                },
                Some(why),
            );
            self.timers.set(id, TimerKind::Backoff, until);
            return;
        }
        self.begin_attempt(id, reason);
    }

    fn begin_attempt(&mut self, id: UnitId, reason: Option<String>) {
        let now = self.now;
        let u = &mut self.units[id.0];
        u.attempt = u.attempt.saturating_add(1);
        u.r#gen += 1;
        u.doomed = None;
        u.attempt_began = now;
        u.start_extended = None;
        let (kind, r#gen, attempt, start_timeout) =
            (u.config.kind, u.r#gen, u.attempt, u.config.start_timeout);
        match kind {
            UnitKind::Process | UnitKind::Task => {
                self.units[id.0].proc = Proc::Spawning;
                self.set_life(id, Life::Spawning, reason);
                self.emit(Action::Spawn {
                    unit: id,
                    r#gen,
                    attempt,
                });
            }
            UnitKind::External => {
                self.units[id.0].started_at = Some(now);
                self.set_life(id, Life::Probing, reason);
            }
        }
        if let Some(timeout) = start_timeout {
            self.timers.set(id, TimerKind::Start, now + timeout);
        }
        if kind == UnitKind::External {
            self.begin_start_probes(id);
        }
    }

    /// Startup probe first (readiness waits for it), then readiness, or up
    /// at once when there is nothing to prove.
    fn begin_start_probes(&mut self, id: UnitId) {
        let u = &self.units[id.0];
        if u.probe(ProbeRole::Startup).is_some() {
            self.activate_probe(id, ProbeRole::Startup);
        } else if u.probe(ProbeRole::Readiness).is_some() {
            self.activate_probe(id, ProbeRole::Readiness);
        } else {
            self.on_up(id);
        }
    }

    fn on_up(&mut self, id: UnitId) {
        let now = self.now;
        let u = &mut self.units[id.0];
        // An external unit has no process to be "running": once its probes
        // pass (or if it has none) it is ready.
        let ready = u.config.kind == UnitKind::External || u.probe(ProbeRole::Readiness).is_some();
        u.up_since = Some(now);
        u.ready_at = Some(now);
        if let Some(b) = u.breaker.as_mut() {
            b.on_success();
        }
        // Failures of the previous incarnation's liveness must not show the
        // fresh one as degraded.
        if let Some(p) = u.probe_mut(ProbeRole::Liveness) {
            p.activate();
            p.deactivate();
        }
        self.set_life(id, Life::Up { ready }, None);
        if self.units[id.0].config.kind != UnitKind::Task {
            self.activate_probe(id, ProbeRole::Liveness);
        }
    }

    fn on_completed(&mut self, id: UnitId, status: ExitStatus) {
        let now = self.now;
        let u = &mut self.units[id.0];
        u.ready_at = Some(now);
        u.crash_streak = 0;
        if let Some(b) = u.breaker.as_mut() {
            b.on_success();
        }
        self.set_life(id, Life::Completed, Some(format!("exited with {status}")));
    }

    /// A start attempt failed: retry after the backoff (or the breaker's
    /// cooldown), or give up when no attempts remain.
    fn attempt_failed(&mut self, id: UnitId, message: String) {
        let now = self.now;
        self.kill_current(id);
        let u = &mut self.units[id.0];
        u.last_error = Some(message.clone());
        let opened = u.breaker.as_mut().and_then(|b| b.on_failure(now));
        let attempts = u.config.retry.attempts.max(1);
        let attempt = u.attempt;
        if attempt >= attempts {
            let why = if attempts > 1 {
                format!("{message} (gave up after {attempt} attempts)")
            } else {
                message
            };
            self.set_life(id, Life::Failed, Some(why));
            return;
        }
        let (delay, why) = match opened {
            Some(until) => {
                let cooldown = until - now;
                (
                    cooldown,
                    format!(
                        "attempt {attempt} failed: {message}; start breaker open for {}",
                        HumanDuration(cooldown)
                    ),
                )
            }
            None => {
                let delay = u.config.retry.delay(attempt, &mut self.rng);
                (
                    delay,
                    format!(
                        "attempt {attempt} failed: {message}; retrying in {}",
                        HumanDuration(delay)
                    ),
                )
            }
        };
        self.enter_backoff(id, delay, false, why);
    }

    /// Waits `delay` before the next attempt; a zero delay tries at once.
    fn enter_backoff(&mut self, id: UnitId, delay: Duration, after_up: bool, reason: String) {
        let until = self.now + delay;
        self.set_life_noted(id, Life::BackingOff { until, after_up }, reason);
        if delay.is_zero() {
            self.try_begin(id, None);
        } else {
            self.timers.set(id, TimerKind::Backoff, until);
        }
    }

    /// Sends Kill to the current incarnation (deferred until `Spawned` when
    /// the spawn is still unconfirmed).
    fn kill_current(&mut self, id: UnitId) {
        let u = &mut self.units[id.0];
        match u.proc {
            Proc::Alive { .. } => {
                let r#gen = u.r#gen;
                u.doomed = None;
                self.emit(Action::Signal {
                    unit: id,
                    r#gen,
                    signal: StopSignal::Kill,
                });
            }
            Proc::Spawning => u.doomed = Some(StopSignal::Kill),
            Proc::Down => {}
        }
    }

    // ----- Failure propagation and the boot verdict ----------------------

    fn on_failed(&mut self, id: UnitId, reason: String) {
        if self.shutting_down {
            return;
        }
        if self.boot_open()
            && (self.units[id.0].config.priority == Priority::Critical
                || !self.options.allow_degraded)
        {
            self.pending_nogo = Some((id, reason));
            return;
        }
        self.bounce_dependents(id);
    }

    /// A critical unit that cannot start (its required dependency failed)
    /// is as fatal for the boot as one that failed itself.
    fn on_skipped(&mut self, id: UnitId, reason: String) {
        if !self.shutting_down
            && self.boot_open()
            && self.units[id.0].config.priority == Priority::Critical
        {
            self.pending_nogo = Some((id, format!("skipped: {reason}")));
        }
    }

    fn boot_open(&self) -> bool {
        self.started && self.outcome.is_none() && self.pending_nogo.is_none()
    }

    fn abort_boot(&mut self, unit: UnitId, reason: String) {
        if self.outcome.is_some() {
            return;
        }
        let name = self.units[unit.0].config.name.clone();
        self.decide(Outcome::NoGo { unit, reason });
        self.begin_shutdown(format!("boot aborted: {name} failed"));
    }

    /// Stops everything that hard-depends on `root`, transitively, keeping
    /// their goal: they come back once `root` is up again, or are skipped if
    /// it never is.
    fn bounce_dependents(&mut self, root: UnitId) {
        let epoch = self.next_epoch();
        let mut stack: Vec<UnitId> = self.hard_dependents(root).collect();
        let reason = format!(
            "dependency {} is restarting",
            self.units[root.0].config.name
        );
        while let Some(d) = stack.pop() {
            if !self.visit(d, epoch) {
                continue;
            }
            self.mark(d);
            let u = &self.units[d.0];
            match u.life {
                Life::Spawning | Life::Probing | Life::Up { .. }
                    if u.goal == Goal::Up && !u.stop_requested =>
                {
                    self.request_stop(d, reason.clone());
                }
                Life::BackingOff { .. } => {
                    self.set_life(d, Life::Waiting, Some(reason.clone()));
                }
                _ => {}
            }
            stack.extend(self.hard_dependents(d));
        }
    }

    // ----- Stopping -------------------------------------------------------

    /// Asks the current incarnation to go down; `step` signals it once its
    /// stopping dependents are gone.
    fn request_stop(&mut self, id: UnitId, reason: String) {
        let u = &mut self.units[id.0];
        // A later, stronger request (a shutdown overtaking a restart) names
        // the final state, so its reason wins.
        u.stop_reason = Some(reason);
        if u.stop_requested {
            return;
        }
        u.stop_requested = true;
        for role in ProbeRole::ALL {
            self.deactivate_probe(id, role);
        }
        self.timers.cancel(id, TimerKind::Start);
        self.sync(id);
        self.mark(id);
        self.mark_neighbours(id);
    }

    /// Sets the goal to down and stops what runs; a unit that never started
    /// ends as `pending` (Skipped during shutdown, Stopped on a command).
    fn request_down(&mut self, id: UnitId, pending: Life, reason: &str) {
        let u = &mut self.units[id.0];
        u.goal = Goal::Down;
        u.restart_delay = None;
        match u.life {
            Life::Waiting => {
                self.set_life(id, pending, Some(reason.to_string()));
            }
            Life::BackingOff { .. } => {
                if u.proc == Proc::Down {
                    self.set_life(id, Life::Stopped, Some(reason.to_string()));
                } else {
                    // The failed attempt's process was already sent Kill; only
                    // its exit is awaited.
                    u.stop_requested = true;
                    u.stop_reason = Some(reason.to_string());
                    self.set_life(
                        id,
                        Life::Stopping { killed: true },
                        Some(reason.to_string()),
                    );
                }
            }
            Life::Spawning | Life::Probing | Life::Up { .. } => {
                self.request_stop(id, reason.to_string());
            }
            Life::Completed if u.config.has_cleanup => {
                self.request_stop(id, reason.to_string());
            }
            Life::Completed
            | Life::Failed
            | Life::Skipped
            | Life::Stopped
            | Life::Stopping { .. }
            | Life::CleaningUp => {}
        }
        // The goal alone can make a unit blocking (a failed unit whose
        // killed process has not exited yet).
        self.sync(id);
        self.mark(id);
    }

    fn begin_stop(&mut self, id: UnitId) {
        let reason = self.units[id.0].stop_reason.clone();
        let u = &mut self.units[id.0];
        match u.proc {
            Proc::Spawning => {
                u.doomed = Some(StopSignal::Graceful);
                self.set_life(id, Life::Stopping { killed: false }, reason);
            }
            Proc::Alive { .. } => {
                let r#gen = u.r#gen;
                self.set_life(id, Life::Stopping { killed: false }, reason);
                self.emit(Action::Signal {
                    unit: id,
                    r#gen,
                    signal: StopSignal::Graceful,
                });
                self.arm_stop_deadline(id);
            }
            // External units and completed tasks have nothing to signal;
            // they still pass through stopping so the timeline shows the stop.
            Proc::Down => {
                self.set_life(id, Life::Stopping { killed: false }, reason);
                self.after_down(id, true);
            }
        }
    }

    fn arm_stop_deadline(&mut self, id: UnitId) {
        let at = self.now + self.units[id.0].config.stop_timeout;
        self.timers.set(id, TimerKind::Stop, at);
    }

    /// The process is gone (or there was none): run the cleanup if the unit
    /// has one and actually ran, then finish the stop.
    fn after_down(&mut self, id: UnitId, ran: bool) {
        if !self.kill_mode && ran && self.units[id.0].config.has_cleanup {
            let reason = self.units[id.0].stop_reason.clone();
            self.set_life(id, Life::CleaningUp, reason);
            self.emit(Action::RunCleanup { unit: id });
        } else {
            self.finish_stop(id);
        }
    }

    fn finish_stop(&mut self, id: UnitId) {
        let u = &mut self.units[id.0];
        u.stop_requested = false;
        let reason = u.stop_reason.take();
        self.sync(id);
        let u = &mut self.units[id.0];
        if let Some(message) = u.pending_failure.take() {
            self.set_life(id, Life::Failed, Some(message));
        } else if u.goal == Goal::Down {
            self.set_life(id, Life::Stopped, reason);
        } else {
            // Goal up: this was a restart (of the unit or of a dependency).
            let after_up = u.up_since.is_some() && u.restart_delay.is_some();
            let delay = u.restart_delay.take().unwrap_or(Duration::ZERO);
            u.attempt = 0;
            if delay.is_zero() {
                self.try_begin(id, reason);
            } else {
                let why = format!("restarting in {}", HumanDuration(delay));
                self.enter_backoff(id, delay, after_up, why);
            }
        }
    }

    fn begin_shutdown(&mut self, pending_reason: String) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        for i in 0..self.units.len() {
            self.request_down(UnitId(i), Life::Skipped, &pending_reason);
        }
    }

    fn kill_all(&mut self) {
        if self.finished {
            return;
        }
        self.kill_mode = true;
        self.shutting_down = true;
        for i in 0..self.units.len() {
            let id = UnitId(i);
            self.units[i].goal = Goal::Down;
            self.units[i].pending_failure = None;
            self.kill_current(id);
            let u = &mut self.units[i];
            match u.life {
                Life::Waiting => {
                    self.set_life(id, Life::Skipped, Some("killed".to_string()));
                }
                Life::Completed | Life::Failed | Life::Skipped | Life::Stopped => {
                    // A completed task waiting for its cleanup: cleanups are
                    // skipped on kill.
                    u.stop_requested = false;
                }
                Life::Spawning
                | Life::Probing
                | Life::Up { .. }
                | Life::BackingOff { .. }
                | Life::Stopping { .. }
                | Life::CleaningUp => {
                    if u.proc == Proc::Down {
                        u.stop_requested = false;
                        self.set_life(id, Life::Stopped, Some("killed".to_string()));
                    } else {
                        u.stop_requested = true;
                        u.stop_reason = Some("killed".to_string());
                        self.set_life(id, Life::Stopping { killed: true }, Some("killed".into()));
                    }
                }
            }
            self.sync(id);
            self.mark(id);
        }
    }

    // ----- Restarts -------------------------------------------------------

    /// An automatic restart (crash or liveness): start limit, backoff that
    /// grows only with quick consecutive restarts, dependents bounced.
    fn auto_restart(&mut self, id: UnitId, cause: String) {
        let now = self.now;
        let u = &mut self.units[id.0];
        let limit = u.config.start_limit;
        if !limit.interval.is_zero() {
            while u
                .restart_times
                .front()
                .is_some_and(|&t| now - t >= limit.interval)
            {
                u.restart_times.pop_front();
            }
            if u.restart_times.len() >= limit.burst as usize {
                let message = format!(
                    "restarted {} times in {}; giving up ({cause})",
                    limit.burst,
                    HumanDuration(limit.interval)
                );
                u.last_error = Some(message.clone());
                if u.proc == Proc::Down {
                    self.set_life(id, Life::Failed, Some(message));
                } else {
                    // Still alive (liveness): stop it properly, dependents
                    // first, and only then report the failure.
                    u.pending_failure = Some(message.clone());
                    self.bounce_dependents(id);
                    self.request_stop(id, message.clone());
                    self.note(id, message);
                }
                return;
            }
            u.restart_times.push_back(now);
        }
        u.restarts = u.restarts.saturating_add(1);
        u.last_error = Some(cause.clone());
        if u.up_since.is_some_and(|s| now - s >= u.config.reset_after) {
            u.crash_streak = 0;
        }
        // The first restart after a healthy run is immediate; only quick
        // consecutive restarts back off.
        let delay = if u.crash_streak == 0 {
            Duration::ZERO
        } else {
            u.config.retry.delay(u.crash_streak, &mut self.rng)
        };
        u.crash_streak = u.crash_streak.saturating_add(1);
        self.bounce_dependents(id);
        let u = &mut self.units[id.0];
        if u.proc == Proc::Down {
            u.attempt = 0;
            let why = format!("{cause}; restarting in {}", HumanDuration(delay));
            self.enter_backoff(id, delay, true, why);
        } else {
            u.restart_delay = Some(delay);
            let why = format!("{cause}; restarting");
            self.request_stop(id, why.clone());
            self.note(id, why);
        }
    }

    fn unexpected_exit(&mut self, id: UnitId, status: ExitStatus) {
        let policy = self.units[id.0].config.restart;
        let restart = match policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !status.success(),
            RestartPolicy::Never => false,
        };
        if restart {
            self.auto_restart(id, format!("exited unexpectedly ({status})"));
        } else if status.success() {
            self.set_life(id, Life::Stopped, Some(format!("exited ({status})")));
            // A required dependency that is gone for good takes its
            // dependents down with it; they end up skipped.
            self.bounce_dependents(id);
        } else {
            let message = format!("exited unexpectedly ({status})");
            self.units[id.0].last_error = Some(message.clone());
            self.set_life(id, Life::Failed, Some(message));
        }
    }

    // ----- Probes ---------------------------------------------------------

    fn activate_probe(&mut self, id: UnitId, role: ProbeRole) {
        let now = self.now;
        let Some(p) = self.units[id.0].probe_mut(role) else {
            return;
        };
        p.activate();
        if !p.is_timed() {
            return;
        }
        let delay = p.first_delay();
        if delay.is_zero() {
            self.run_probe(id, role);
        } else {
            self.timers.set(id, TimerKind::Probe(role), now + delay);
        }
    }

    fn deactivate_probe(&mut self, id: UnitId, role: ProbeRole) {
        if let Some(p) = self.units[id.0].probe_mut(role) {
            p.deactivate();
        }
        self.timers.cancel(id, TimerKind::Probe(role));
    }

    fn run_probe(&mut self, id: UnitId, role: ProbeRole) {
        let now = self.now;
        let seq = self.next_seq;
        let Some(p) = self.units[id.0].probe_mut(role) else {
            return;
        };
        if !p.active || p.in_flight.is_some() {
            return;
        }
        if p.is_watchdog() {
            // Nothing to run: the deadline passed without a keep-alive.
            let message = format!(
                "watchdog: no keep-alive within {}",
                HumanDuration(p.watchdog_period())
            );
            self.on_probe_result(id, role, 0, false, message);
            return;
        }
        self.next_seq += 1;
        p.in_flight = Some(seq);
        p.began.get_or_insert(now);
        let timeout = p.config.timeout;
        self.emit(Action::RunProbe {
            unit: id,
            role,
            seq,
            timeout,
        });
    }

    /// Schedules the next run, measured from the result just received, so
    /// that a probe never overlaps itself.
    fn schedule_probe(&mut self, id: UnitId, role: ProbeRole) {
        let now = self.now;
        let Some(p) = self.units[id.0].probe(role) else {
            return;
        };
        if !p.active || !p.is_timed() || p.in_flight.is_some() {
            return;
        }
        let at = now + p.next_delay(now);
        self.timers.set(id, TimerKind::Probe(role), at);
    }

    fn on_probe_result(
        &mut self,
        id: UnitId,
        role: ProbeRole,
        seq: u64,
        ok: bool,
        message: String,
    ) {
        if !self.valid(id) {
            return;
        }
        let kind = self.units[id.0].config.kind;
        let Some(p) = self.units[id.0].probe_mut(role) else {
            return;
        };
        if !p.active {
            return;
        }
        if p.is_polled() {
            if seq == 0 || p.in_flight != Some(seq) {
                return;
            }
            p.in_flight = None;
        }
        p.record(ok, message.clone());
        let (passes, failures) = (p.passes, p.failures);
        let (success_threshold, failure_threshold) = (p.success_threshold(), p.failure_threshold());
        match role {
            ProbeRole::Startup if ok && passes >= success_threshold => {
                self.deactivate_probe(id, ProbeRole::Startup);
                let has_readiness = self.units[id.0].probe(ProbeRole::Readiness).is_some();
                if has_readiness && kind != UnitKind::Task {
                    self.activate_probe(id, ProbeRole::Readiness);
                } else {
                    self.on_up(id);
                }
                return;
            }
            ProbeRole::Readiness if ok && passes >= success_threshold => {
                self.on_up(id);
                return;
            }
            ProbeRole::Liveness => {
                if !ok {
                    self.units[id.0].last_error = Some(format!("liveness: {message}"));
                }
                if !ok && failures >= failure_threshold {
                    self.auto_restart(id, format!("liveness failed {failures} times: {message}"));
                    return;
                }
                let why = if ok {
                    "liveness passed".to_string()
                } else {
                    format!("liveness failed {failures} of {failure_threshold}: {message}")
                };
                self.refresh(id, Some(why));
            }
            ProbeRole::Startup | ProbeRole::Readiness => {}
        }
        self.schedule_probe(id, role);
    }

    // ----- Process events -------------------------------------------------

    fn on_spawned(&mut self, id: UnitId, r#gen: Gen, pid: u32) {
        if !self.valid(id) {
            return;
        }
        let now = self.now;
        let u = &mut self.units[id.0];
        if u.r#gen != r#gen || u.proc != Proc::Spawning {
            return;
        }
        u.proc = Proc::Alive { pid };
        u.started_at = Some(now);
        self.sync(id);
        let u = &mut self.units[id.0];
        if let Some(signal) = u.doomed.take() {
            self.emit(Action::Signal {
                unit: id,
                r#gen,
                signal,
            });
            if signal == StopSignal::Graceful {
                self.arm_stop_deadline(id);
            } else if let Life::Stopping { killed: false } = self.units[id.0].life {
                self.units[id.0].life = Life::Stopping { killed: true };
            }
        }
        self.mark(id);
        self.mark_neighbours(id);
        if self.units[id.0].life == Life::Spawning {
            self.set_life(id, Life::Probing, None);
            let u = &self.units[id.0];
            if !u.stop_requested && u.config.kind == UnitKind::Process {
                self.begin_start_probes(id);
            }
        }
    }

    fn on_spawn_failed(&mut self, id: UnitId, r#gen: Gen, error: String) {
        if !self.valid(id) {
            return;
        }
        let u = &mut self.units[id.0];
        if u.r#gen != r#gen || u.proc != Proc::Spawning {
            return;
        }
        u.proc = Proc::Down;
        u.doomed = None;
        self.sync(id);
        self.mark(id);
        self.mark_neighbours(id);
        let u = &self.units[id.0];
        match u.life {
            Life::Spawning if u.stop_requested => self.finish_stop(id),
            Life::Spawning => self.attempt_failed(id, format!("failed to spawn: {error}")),
            Life::Stopping { .. } => self.after_down(id, false),
            _ => {}
        }
    }

    fn on_exited(&mut self, id: UnitId, r#gen: Gen, status: ExitStatus) {
        if !self.valid(id) {
            return;
        }
        let u = &mut self.units[id.0];
        if u.r#gen != r#gen || u.proc == Proc::Down {
            return;
        }
        u.proc = Proc::Down;
        u.doomed = None;
        self.sync(id);
        self.mark(id);
        self.mark_neighbours(id);
        let u = &self.units[id.0];
        match u.life {
            Life::Stopping { .. } => self.after_down(id, true),
            Life::Spawning | Life::Probing | Life::Up { .. } if u.stop_requested => {
                self.after_down(id, true);
            }
            Life::Spawning | Life::Probing => {
                if u.config.kind == UnitKind::Task {
                    if status.success() {
                        self.on_completed(id, status);
                    } else {
                        self.attempt_failed(id, format!("exited with {status}"));
                    }
                } else {
                    self.attempt_failed(id, format!("exited before becoming ready ({status})"));
                }
            }
            Life::Up { .. } => self.unexpected_exit(id, status),
            // A killed attempt or failed unit is finally gone; `step` may now
            // let a new incarnation start.
            Life::Waiting
            | Life::BackingOff { .. }
            | Life::Completed
            | Life::Failed
            | Life::Skipped
            | Life::CleaningUp
            | Life::Stopped => {}
        }
    }

    fn on_cleanup_done(&mut self, id: UnitId, ok: bool, message: String) {
        if !self.valid(id) || self.units[id.0].life != Life::CleaningUp {
            return;
        }
        if !ok {
            self.units[id.0].last_error = Some(format!("cleanup failed: {message}"));
        }
        self.finish_stop(id);
    }

    /// sd_notify `EXTEND_TIMEOUT_USEC` semantics: "the start may take `by`
    /// more from now". Only the live, starting incarnation can move its own
    /// deadline, and only later, never earlier.
    fn on_extend_start_timeout(&mut self, id: UnitId, r#gen: Gen, by: Duration) {
        if !self.valid(id) {
            return;
        }
        let u = &self.units[id.0];
        let starting = matches!(u.life, Life::Spawning | Life::Probing) && !u.stop_requested;
        if u.r#gen != r#gen || !starting {
            return;
        }
        // No deadline (no start_timeout): nothing to extend.
        let Some(deadline) = self.timers.get(id, TimerKind::Start) else {
            return;
        };
        let at = self.now + by;
        if at > deadline {
            self.timers.set(id, TimerKind::Start, at);
            self.units[id.0].start_extended = Some(at);
        }
    }

    /// The live incarnation says it is hung (sd_notify `WATCHDOG=trigger`):
    /// a liveness failure that restarts it at once, whatever
    /// `failure_threshold` says. Only while its liveness probe watches it.
    fn on_liveness_failed(&mut self, id: UnitId, r#gen: Gen, message: String) {
        if !self.valid(id) || self.units[id.0].r#gen != r#gen {
            return;
        }
        let Some(p) = self.units[id.0].probe_mut(ProbeRole::Liveness) else {
            return;
        };
        if !p.active {
            return;
        }
        p.record(false, message.clone());
        self.auto_restart(id, format!("liveness failed: {message}"));
    }

    fn on_timer(&mut self, id: UnitId, kind: TimerKind) {
        let u = &self.units[id.0];
        match kind {
            TimerKind::Start => {
                if matches!(u.life, Life::Spawning | Life::Probing) && !u.stop_requested {
                    let message = self.start_timeout_message(id);
                    self.attempt_failed(id, message);
                }
            }
            TimerKind::Stop => {
                if u.life == (Life::Stopping { killed: false }) {
                    self.kill_current(id);
                    self.units[id.0].life = Life::Stopping { killed: true };
                }
            }
            TimerKind::Backoff => {
                if matches!(u.life, Life::BackingOff { .. }) {
                    self.try_begin(id, None);
                }
            }
            TimerKind::Probe(role) => self.run_probe(id, role),
        }
    }

    fn start_timeout_message(&self, id: UnitId) -> String {
        let u = &self.units[id.0];
        let configured = u.config.start_timeout.unwrap_or_default();
        // Extended: the time actually allowed, and where it came from.
        let (timeout, extended) = if let Some(deadline) = u.start_extended {
            (
                HumanDuration(deadline - u.attempt_began),
                format!(
                    " (start_timeout {} extended by the service)",
                    HumanDuration(configured)
                ),
            )
        } else {
            (HumanDuration(configured), String::new())
        };
        if u.config.kind == UnitKind::Task {
            return format!("did not complete within {timeout}{extended}");
        }
        let last = [ProbeRole::Readiness, ProbeRole::Startup]
            .into_iter()
            .find_map(|role| {
                let p = u.probe(role)?;
                let m = p
                    .last_message
                    .as_ref()
                    .filter(|_| p.active && p.failures > 0)?;
                Some(format!(" (last {role} probe: {m})"))
            })
            .unwrap_or_default();
        format!("did not become ready within {timeout}{extended}{last}")
    }

    // ----- Commands -------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Shutdown => self.begin_shutdown("shutting down".to_string()),
            Command::Kill => self.kill_all(),
            Command::Start(id) => self.command_start(id),
            Command::Stop(id) => self.command_stop(id),
            Command::Restart(id) => self.command_restart(id),
        }
    }

    fn accepts_commands(&self, id: UnitId) -> bool {
        self.valid(id) && self.started && !self.shutting_down
    }

    /// Stops `id` and, transitively, what hard-depends on it.
    fn command_stop(&mut self, id: UnitId) {
        if !self.accepts_commands(id) {
            return;
        }
        let epoch = self.next_epoch();
        let mut stack = vec![id];
        while let Some(d) = stack.pop() {
            if !self.visit(d, epoch) {
                continue;
            }
            self.request_down(d, Life::Stopped, "stopped by command");
            stack.extend(self.hard_dependents(d));
        }
    }

    /// Brings `id` up together with the required dependencies it needs
    /// (like systemd's `Requires=`), and lets dependents that were skipped
    /// because of them try again.
    fn command_start(&mut self, id: UnitId) {
        if !self.accepts_commands(id) {
            return;
        }
        let epoch = self.next_epoch();
        let mut stack = vec![id];
        let mut revived = Vec::new();
        while let Some(d) = stack.pop() {
            if !self.visit(d, epoch) {
                continue;
            }
            self.units[d.0].goal = Goal::Up;
            self.sync(d);
            if self.units[d.0].life.is_dead() {
                self.revive(d, "started by command".to_string());
                revived.push(d);
            }
            let deps = &self.units[d.0].config.deps;
            stack.extend(deps.iter().filter(|dep| dep.required).map(|dep| dep.unit));
        }
        for d in revived {
            self.revive_skipped_dependents(d);
        }
    }

    /// A dead unit gets a fresh start: attempts, restart history and breaker
    /// are reset because a person asked for it.
    fn revive(&mut self, id: UnitId, reason: String) {
        let u = &mut self.units[id.0];
        u.goal = Goal::Up;
        u.attempt = 0;
        u.crash_streak = 0;
        u.restart_times.clear();
        u.pending_failure = None;
        if let Some(b) = u.breaker.as_mut() {
            b.reset();
        }
        self.set_life(id, Life::Waiting, Some(reason));
    }

    fn revive_skipped_dependents(&mut self, root: UnitId) {
        let mut stack: Vec<UnitId> = self.hard_dependents(root).collect();
        while let Some(d) = stack.pop() {
            let u = &self.units[d.0];
            // Only units skipped because of a dependency keep goal Up;
            // those skipped by a shutdown or a stop command stay down.
            if u.life == Life::Skipped && u.goal == Goal::Up {
                let why = format!(
                    "dependency {} started again",
                    self.units[root.0].config.name
                );
                self.revive(d, why);
                stack.extend(self.hard_dependents(d));
            }
        }
    }

    fn command_restart(&mut self, id: UnitId) {
        if !self.accepts_commands(id) {
            return;
        }
        self.units[id.0].goal = Goal::Up;
        self.sync(id);
        let u = &mut self.units[id.0];
        match u.life {
            Life::Spawning | Life::Probing | Life::Up { .. } => {
                if u.stop_requested {
                    return;
                }
                u.restarts = u.restarts.saturating_add(1);
                u.restart_delay = Some(Duration::ZERO);
                if let Some(b) = u.breaker.as_mut() {
                    b.reset();
                }
                self.bounce_dependents(id);
                self.request_stop(id, "restart requested".to_string());
            }
            Life::Completed => {
                // Re-running a task (a migration, a seed) is what a restart
                // of a completed task means.
                u.restarts = u.restarts.saturating_add(1);
                u.attempt = 0;
                self.bounce_dependents(id);
                self.try_begin(id, Some("restart requested".to_string()));
            }
            Life::BackingOff { after_up, .. } => {
                u.attempt = 0;
                if let Some(b) = u.breaker.as_mut() {
                    b.reset();
                }
                // Cut the backoff short: the person asked for it now.
                let now = self.now;
                self.set_life(
                    id,
                    Life::BackingOff {
                        until: now,
                        after_up,
                    },
                    None,
                );
                self.try_begin(id, Some("restart requested".to_string()));
            }
            Life::Failed | Life::Stopped | Life::Skipped => self.command_start(id),
            // Waiting starts as soon as it can; a unit that is stopping comes
            // back because its goal is up again.
            Life::Waiting | Life::Stopping { .. } | Life::CleaningUp => {}
        }
    }
}

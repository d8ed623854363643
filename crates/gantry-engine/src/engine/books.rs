//! The engine's bookkeeping: dirty marks, cached counters and edges (`sync`), the flush loop, and `set_life`, the one place a unit's private state changes.

use super::Engine;
use crate::config::{ProbeRole, UnitId};
use crate::io::{Action, Notice, Outcome};
use crate::time::Time;
use crate::timers::TimerKind;
use crate::unit::{Edge, Life};

impl Engine {
    /// Time never goes backwards inside the engine, even if a caller's
    /// clock does; deadlines computed earlier stay meaningful.
    pub(super) fn tick(&mut self, now: Time) {
        self.now = self.now.max(now);
    }

    pub(super) fn valid(&self, id: UnitId) -> bool {
        id.0 < self.units.len()
    }

    pub(super) fn emit(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    pub(super) fn mark(&mut self, id: UnitId) {
        if !self.queued[id.0] {
            self.queued[id.0] = true;
            self.dirty.push_back(id);
        }
    }

    /// Dependents may start (or be skipped) and dependencies may be
    /// signalled when a unit changes, so both sides are re-examined.
    pub(super) fn mark_neighbours(&mut self, id: UnitId) {
        for k in 0..self.units[id.0].config.deps.len() {
            let dep = self.units[id.0].config.deps[k].unit;
            self.mark(dep);
        }
        for k in 0..self.dependents[id.0].len() {
            let (dependent, _, _) = self.dependents[id.0][k];
            self.mark(dependent);
        }
    }

    pub(super) fn hard_dependents(&self, id: UnitId) -> impl Iterator<Item = UnitId> + '_ {
        self.dependents[id.0]
            .iter()
            .filter(|&&(_, _, required)| required)
            .map(|&(d, _, _)| d)
    }

    pub(super) fn next_epoch(&mut self) -> u64 {
        self.visit_epoch += 1;
        self.visit_epoch
    }

    /// Marks `id` visited in walk `epoch`; false if it already was.
    pub(super) fn visit(&mut self, id: UnitId, epoch: u64) -> bool {
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
    pub(super) fn sync(&mut self, id: UnitId) {
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
    pub(super) fn flush(&mut self) {
        loop {
            if let Some((unit, reason)) = self.pending_nogo.take() {
                self.abort_boot(unit, reason);
                continue;
            }
            let Some(id) = self.dirty.pop_front() else {
                // A gradual enable starts its next unit once the previous one passed its gate.
                if self.advance_enable() {
                    continue;
                }
                break;
            };
            self.queued[id.0] = false;
            self.sync(id);
            self.step(id);
            self.sync(id);
        }
        if self.started && self.outcome.is_none() && !self.shutting_down && self.unsettled == 0 {
            let failed: Vec<UnitId> = (0..self.units.len())
                // A disabled unit is not up: the boot is degraded, never a GO that hides it.
                .filter(|&i| self.units[i].life == Life::Failed || self.units[i].disabled.is_some())
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

    pub(super) fn decide(&mut self, outcome: Outcome) {
        if matches!(outcome, Outcome::NoGo { .. }) {
            self.exit_code = 1;
        }
        self.outcome = Some(outcome.clone());
        self.emit(Action::BootDecided(outcome));
    }

    /// The single place where a unit's private state changes. Returns
    /// whether a `Notice` was emitted (the public state changed).
    pub(super) fn set_life(&mut self, id: UnitId, life: Life, reason: Option<String>) -> bool {
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
    pub(super) fn set_life_noted(&mut self, id: UnitId, life: Life, reason: String) {
        if !self.set_life(id, life, Some(reason.clone())) {
            self.note(id, reason);
        }
    }

    pub(super) fn note(&mut self, id: UnitId, reason: String) {
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
    pub(super) fn refresh(&mut self, id: UnitId, reason: Option<String>) -> bool {
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
    pub(super) fn prune_timers(&mut self, id: UnitId) {
        let life = self.units[id.0].life;
        if !matches!(life, Life::Spawning | Life::Probing) {
            self.timers.cancel(id, TimerKind::Start);
        }
        if life != Life::Probing {
            self.timers.cancel(id, TimerKind::Grace);
            self.units[id.0].in_grace = false;
        }
        if !matches!(life, Life::BackingOff { .. }) {
            self.timers.cancel(id, TimerKind::Backoff);
        }
        if !matches!(life, Life::Stopping { .. }) {
            self.timers.cancel(id, TimerKind::Stop);
        }
        if life != Life::Probing {
            self.deactivate_probe(id, ProbeRole::Startup);
        }
        // Readiness keeps running while the unit is up (`keep_readiness`).
        if !matches!(life, Life::Probing | Life::Up { .. }) {
            self.deactivate_probe(id, ProbeRole::Readiness);
        }
        if !matches!(life, Life::Up { .. }) {
            self.deactivate_probe(id, ProbeRole::Liveness);
        }
    }

    pub(super) fn advance_layers(&mut self) {
        while self.open_layer + 1 < self.layers.len() && self.layer_unsettled[self.open_layer] == 0
        {
            self.open_layer += 1;
            for k in 0..self.layers[self.open_layer].len() {
                let id = self.layers[self.open_layer][k];
                self.mark(id);
            }
        }
    }
}

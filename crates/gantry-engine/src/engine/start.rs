//! Starting: the reconciler's step, the gates an attempt waits for, attempts, start probes, up, retries and their backoff.

use std::time::Duration;

use super::Engine;
use crate::config::{ProbeRole, UnitId, UnitKind};
use crate::io::{Action, ExitStatus, StopSignal};
use crate::time::HumanDuration;
use crate::timers::TimerKind;
use crate::unit::{Goal, Life, Proc};

impl Engine {
    pub(super) fn step(&mut self, id: UnitId) {
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
    pub(super) fn dependents_clear(&self, id: UnitId) -> bool {
        self.units[id.0].blocked_by == 0
    }

    /// Starts an attempt if every gate holds; otherwise parks the unit in
    /// `Waiting` (or skips it when a required dependency is dead).
    pub(super) fn try_begin(&mut self, id: UnitId, reason: Option<String>) {
        if !self.started || self.shutting_down || self.units[id.0].goal != Goal::Up {
            return;
        }
        let u = &self.units[id.0];
        if u.dead_required > 0 {
            // Rare and final, so finding the culprit may scan the edges.
            let culprit = u
                .edges
                .iter()
                .position(|e| e.dead_required)
                .map(|k| u.config.deps[k].unit);
            let why = culprit
                .map(|dep| {
                    let d = &self.units[dep.0];
                    match &d.disabled {
                        Some(text) => format!("dependency {} {text}", d.config.name),
                        None => format!("dependency {} {}", d.config.name, d.state),
                    }
                })
                .unwrap_or_else(|| "a required dependency is gone".to_string());
            let by_switch = culprit.is_some_and(|dep| self.dead_by_switch(dep));
            self.units[id.0].skipped_by_switch = by_switch;
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
        self.take_pending_config(id);
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

    pub(super) fn begin_attempt(&mut self, id: UnitId, reason: Option<String>) {
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
    pub(super) fn begin_start_probes(&mut self, id: UnitId) {
        let u = &self.units[id.0];
        if u.probe(ProbeRole::Startup).is_some() {
            self.activate_probe(id, ProbeRole::Startup);
        } else if u.probe(ProbeRole::Readiness).is_some() {
            self.activate_probe(id, ProbeRole::Readiness);
        } else if u.config.kind == UnitKind::Process && !u.config.start_grace.is_zero() {
            // Nothing proves the start: it counts once the process outlived its grace.
            let at = self.now + u.config.start_grace;
            self.units[id.0].in_grace = true;
            self.timers.set(id, TimerKind::Grace, at);
            self.sync(id);
        } else {
            self.on_up(id);
        }
    }

    pub(super) fn on_up(&mut self, id: UnitId) {
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
        self.set_life(id, Life::Up { ready, lost: false }, None);
        if self.units[id.0].config.kind != UnitKind::Task {
            self.keep_readiness(id);
            self.activate_probe(id, ProbeRole::Liveness);
        }
    }

    pub(super) fn on_completed(&mut self, id: UnitId, status: ExitStatus) {
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
    pub(super) fn attempt_failed(&mut self, id: UnitId, message: String) {
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
    pub(super) fn enter_backoff(
        &mut self,
        id: UnitId,
        delay: Duration,
        after_up: bool,
        reason: String,
    ) {
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
    pub(super) fn kill_current(&mut self, id: UnitId) {
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
}

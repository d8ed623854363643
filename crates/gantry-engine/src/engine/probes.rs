//! Probes: activation, scheduling, runs and results of the startup, readiness and liveness gates.

use super::Engine;
use crate::config::{Condition, ProbeRole, UnitId, UnitKind};
use crate::io::Action;
use crate::time::HumanDuration;
use crate::timers::TimerKind;
use crate::unit::Life;

impl Engine {
    pub(super) fn activate_probe(&mut self, id: UnitId, role: ProbeRole) {
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
            let at = p.due(now, delay);
            self.timers.set(id, TimerKind::Probe(role), at);
        }
    }

    /// Keeps a polled readiness probe running while the unit is up, at its
    /// `period`; a pushed one (a log line, READY=1) can never report a failure,
    /// so it ends with the boot.
    pub(super) fn keep_readiness(&mut self, id: UnitId) {
        let now = self.now;
        let Some(p) = self.units[id.0].probe_mut(ProbeRole::Readiness) else {
            return;
        };
        if !p.is_polled() {
            self.deactivate_probe(id, ProbeRole::Readiness);
            return;
        }
        p.activate_steady();
        let at = p.due(now, p.first_delay());
        self.timers
            .set(id, TimerKind::Probe(ProbeRole::Readiness), at);
    }

    /// A readiness result while the unit is up: `failure_threshold` failures in
    /// a row make it unready (never a restart: that is liveness' job), and
    /// `success_threshold` passes make it ready again. Either way its dependents
    /// keep running and are only told.
    fn readiness_for_life(
        &mut self,
        id: UnitId,
        ok: bool,
        message: &str,
        passes: u32,
        failures: u32,
    ) {
        let Life::Up { ready, lost } = self.units[id.0].life else {
            return;
        };
        let Some(p) = self.units[id.0].probe(ProbeRole::Readiness) else {
            return;
        };
        let (success_threshold, failure_threshold) = (p.success_threshold(), p.failure_threshold());
        if !ok {
            self.units[id.0].last_error = Some(format!("readiness: {message}"));
        }
        if !lost && !ok && failures >= failure_threshold {
            let why = format!("readiness failed {failures} times: {message}");
            let u = &mut self.units[id.0];
            u.readiness_losses = u.readiness_losses.saturating_add(1);
            u.last_error = Some(why.clone());
            self.set_life(
                id,
                Life::Up { ready, lost: true },
                Some(format!("{why}; not restarted, dependents keep running")),
            );
            let name = &self.units[id.0].config.name;
            self.tell_dependents(id, format!("dependency {name} is unready ({why})"));
        } else if lost && ok && passes >= success_threshold {
            let why = if passes == 1 {
                "readiness passed again".to_string()
            } else {
                format!("readiness passed {passes} times in a row again")
            };
            self.set_life(id, Life::Up { ready, lost: false }, Some(why));
            let name = &self.units[id.0].config.name;
            self.tell_dependents(id, format!("dependency {name} is ready again"));
        }
    }

    /// A note on each running dependent that waited for `id` to be ready: the
    /// timeline and the event stream show what changed under it.
    fn tell_dependents(&mut self, id: UnitId, reason: String) {
        for k in 0..self.dependents[id.0].len() {
            let (d, edge, _) = self.dependents[id.0][k];
            let u = &self.units[d.0];
            if u.config.deps[edge].condition == Condition::Ready
                && matches!(u.life, Life::Up { .. })
                && !u.stop_requested
            {
                self.note(d, reason.clone());
            }
        }
    }

    pub(super) fn deactivate_probe(&mut self, id: UnitId, role: ProbeRole) {
        if let Some(p) = self.units[id.0].probe_mut(role) {
            p.deactivate();
        }
        self.timers.cancel(id, TimerKind::Probe(role));
    }

    pub(super) fn run_probe(&mut self, id: UnitId, role: ProbeRole) {
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
    pub(super) fn schedule_probe(&mut self, id: UnitId, role: ProbeRole) {
        let now = self.now;
        let Some(p) = self.units[id.0].probe(role) else {
            return;
        };
        if !p.active || !p.is_timed() || p.in_flight.is_some() {
            return;
        }
        let at = p.due(now, p.next_delay(now));
        self.timers.set(id, TimerKind::Probe(role), at);
    }

    pub(super) fn on_probe_result(
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
        let life = self.units[id.0].life;
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
        if self.units[id.0].quarantined {
            // Frozen for inspection: a result says nothing about the service; probing
            // goes on so that it counts again as soon as the unit is released.
            self.schedule_probe(id, role);
            return;
        }
        let Some(p) = self.units[id.0].probe_mut(role) else {
            return;
        };
        // Only a failure's message is read again below; a pass (nearly every result of a
        // running stack) is stored without a copy.
        let failed = if ok { None } else { Some(message.clone()) };
        p.record(ok, message);
        let message = failed.unwrap_or_default();
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
            ProbeRole::Readiness if matches!(life, Life::Up { .. }) => {
                self.readiness_for_life(id, ok, &message, passes, failures);
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
                // The reason is only written when the state changes: not for the pass
                // that every running service's liveness reports each period.
                if self.units[id.0].public_state() != self.units[id.0].state {
                    let why = if ok {
                        "liveness passed".to_string()
                    } else {
                        format!("liveness failed {failures} of {failure_threshold}: {message}")
                    };
                    self.refresh(id, Some(why));
                }
            }
            ProbeRole::Startup | ProbeRole::Readiness => {}
        }
        self.schedule_probe(id, role);
    }
}

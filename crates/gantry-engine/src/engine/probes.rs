//! Probes: activation, scheduling, runs and results of the startup, readiness and liveness gates.

use super::Engine;
use crate::config::{ProbeRole, UnitId, UnitKind};
use crate::io::Action;
use crate::timers::TimerKind;

impl Engine {
    pub(super) fn activate_probe(&mut self, id: UnitId, role: ProbeRole) {
        let now = self.now;
        let Some(p) = self.units[id.0].probe_mut(role) else {
            return;
        };
        p.activate();
        if !p.is_polled() {
            return;
        }
        let delay = p.first_delay();
        if delay.is_zero() {
            self.run_probe(id, role);
        } else {
            self.timers.set(id, TimerKind::Probe(role), now + delay);
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
        if !p.active || !p.is_polled() || p.in_flight.is_some() {
            return;
        }
        let at = now + p.next_delay(now);
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
}

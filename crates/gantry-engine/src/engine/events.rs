//! What the shell reports: spawns, exits, cleanups, start-timeout extensions, and the deadlines that fire.

use std::time::Duration;

use super::Engine;
use crate::config::{ProbeRole, UnitId, UnitKind};
use crate::io::{Action, ExitStatus, Gen, StopSignal};
use crate::time::HumanDuration;
use crate::timers::TimerKind;
use crate::unit::{Life, Proc};

impl Engine {
    pub(super) fn on_spawned(&mut self, id: UnitId, r#gen: Gen, pid: u32) {
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

    pub(super) fn on_spawn_failed(&mut self, id: UnitId, r#gen: Gen, error: String) {
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

    pub(super) fn on_exited(&mut self, id: UnitId, r#gen: Gen, status: ExitStatus) {
        if !self.valid(id) {
            return;
        }
        let u = &mut self.units[id.0];
        if u.r#gen != r#gen || u.proc == Proc::Down {
            return;
        }
        u.proc = Proc::Down;
        u.doomed = None;
        // A quarantine lasts as long as the process it froze.
        u.quarantined = false;
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
                } else if u.in_grace {
                    let grace = HumanDuration(u.config.start_grace);
                    let message = format!("exited within its start_grace of {grace} ({status})");
                    self.attempt_failed(id, message);
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

    pub(super) fn on_cleanup_done(&mut self, id: UnitId, ok: bool, message: String) {
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
    pub(super) fn on_extend_start_timeout(&mut self, id: UnitId, r#gen: Gen, by: Duration) {
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
    pub(super) fn on_liveness_failed(&mut self, id: UnitId, r#gen: Gen, message: String) {
        if !self.valid(id) || self.units[id.0].r#gen != r#gen || self.units[id.0].quarantined {
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

    pub(super) fn on_timer(&mut self, id: UnitId, kind: TimerKind) {
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
            TimerKind::Grace => {
                if u.life == Life::Probing && u.in_grace && !u.stop_requested {
                    self.units[id.0].in_grace = false;
                    self.sync(id);
                    self.on_up(id);
                }
            }
        }
    }

    pub(super) fn start_timeout_message(&self, id: UnitId) -> String {
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
}

//! Stopping: stop requests in reverse dependency and layer order, escalation to kill, cleanups, shutdown and kill of the whole stack.

use std::time::Duration;

use super::Engine;
use crate::config::{ProbeRole, UnitId};
use crate::io::{Action, Outcome, StopSignal};
use crate::time::HumanDuration;
use crate::timers::TimerKind;
use crate::unit::{Goal, Life, Proc};

impl Engine {
    /// During a shutdown, nothing of a higher layer is still going down: layers are
    /// barriers at stop as at start, in reverse (the stores of layer 0 stop last).
    /// A kill, a restart or a stop command is not held by layers.
    pub(super) fn higher_layers_clear(&self, id: UnitId) -> bool {
        if !self.shutting_down || self.kill_mode {
            return true;
        }
        self.layer_blocking[self.rank[id.0] + 1..]
            .iter()
            .all(|&n| n == 0)
    }

    /// Layer `layer` has nothing left going down: the units below it that were held
    /// by it are looked at again, down to the first layer that is itself still busy.
    pub(super) fn wake_lower_layers(&mut self, layer: usize) {
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

    /// Asks the current incarnation to go down; `step` signals it once its
    /// stopping dependents are gone.
    pub(super) fn request_stop(&mut self, id: UnitId, reason: String) {
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
        self.timers.cancel(id, TimerKind::Grace);
        self.sync(id);
        self.mark(id);
        self.mark_neighbours(id);
    }

    /// Sets the goal to down and stops what runs; a unit that never started
    /// ends as `pending` (Skipped during shutdown, Stopped on a command).
    pub(super) fn request_down(&mut self, id: UnitId, pending: Life, reason: &str) {
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

    pub(super) fn begin_stop(&mut self, id: UnitId) {
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

    pub(super) fn arm_stop_deadline(&mut self, id: UnitId) {
        let at = self.now + self.units[id.0].config.stop_timeout;
        self.timers.set(id, TimerKind::Stop, at);
    }

    /// The process is gone (or there was none): run the cleanup if the unit
    /// has one and actually ran, then finish the stop.
    pub(super) fn after_down(&mut self, id: UnitId, ran: bool) {
        if !self.kill_mode && ran && self.units[id.0].config.has_cleanup {
            let reason = self.units[id.0].stop_reason.clone();
            self.set_life(id, Life::CleaningUp, reason);
            self.emit(Action::RunCleanup { unit: id });
        } else {
            self.finish_stop(id);
        }
    }

    pub(super) fn finish_stop(&mut self, id: UnitId) {
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

    /// A stop of a stack that booted (GO or degraded) while a critical unit is
    /// failed ends with exit code 1, as a NO-GO does: the stack did not keep
    /// what it promised. A unit brought back since (restarted, started by hand)
    /// no longer counts.
    fn note_runtime_failures(&mut self) {
        let booted = self.outcome.as_ref().is_some_and(Outcome::is_up);
        if booted && self.critical_failed().next().is_some() {
            self.exit_code = 1;
        }
    }

    pub(super) fn begin_shutdown(&mut self, pending_reason: String) {
        if self.shutting_down {
            return;
        }
        self.note_runtime_failures();
        self.shutting_down = true;
        for i in 0..self.units.len() {
            self.request_down(UnitId(i), Life::Skipped, &pending_reason);
        }
    }

    pub(super) fn kill_all(&mut self) {
        if self.finished {
            return;
        }
        if !self.shutting_down {
            self.note_runtime_failures();
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
}

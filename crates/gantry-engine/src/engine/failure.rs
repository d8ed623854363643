//! Failures at runtime: the boot verdict, dependents bounced, automatic restarts with their backoff and the start limit.

use std::time::Duration;

use super::Engine;
use crate::config::{Priority, RestartPolicy, UnitId};
use crate::io::{ExitStatus, Outcome};
use crate::time::HumanDuration;
use crate::unit::{Goal, Life, Proc};

impl Engine {
    pub(super) fn on_failed(&mut self, id: UnitId, reason: String) {
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
    pub(super) fn on_skipped(&mut self, id: UnitId, reason: String) {
        if !self.shutting_down
            && self.boot_open()
            && self.units[id.0].config.priority == Priority::Critical
            && !self.units[id.0].skipped_by_switch
        {
            self.pending_nogo = Some((id, format!("skipped: {reason}")));
        }
    }

    pub(super) fn boot_open(&self) -> bool {
        self.started && self.outcome.is_none() && self.pending_nogo.is_none()
    }

    pub(super) fn abort_boot(&mut self, unit: UnitId, reason: String) {
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
    pub(super) fn bounce_dependents(&mut self, root: UnitId) {
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

    /// An automatic restart (crash or liveness): start limit, backoff that
    /// grows only with quick consecutive restarts, dependents bounced.
    pub(super) fn auto_restart(&mut self, id: UnitId, cause: String) {
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
        // A crash after a healthy run (up for `healthy_after`) restarts at once,
        // every time; only quick consecutive crashes (a crash loop) back off.
        if u.up_since
            .is_some_and(|s| now - s >= u.config.healthy_after)
        {
            u.crash_streak = 0;
        }
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

    pub(super) fn unexpected_exit(&mut self, id: UnitId, status: ExitStatus) {
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
}

//! Commands from people: start, stop and restart of a unit (with what depends on it), shutdown, kill, and a unit's definition replaced by a reload.

use std::time::Duration;

use super::Engine;
use crate::config::{UnitConfig, UnitId};
use crate::io::Command;
use crate::unit::{Goal, Life, Proc};

impl Engine {
    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Shutdown => self.begin_shutdown("shutting down".to_string()),
            Command::Kill => self.kill_all(),
            Command::Start(id) => self.command_start(id),
            Command::Stop(id) => self.command_stop(id),
            Command::Restart(id) => self.command_restart(id),
            Command::Disable { unit, why } => self.command_disable(unit, why),
            Command::Enable(id) => self.command_enable(id),
            Command::Quarantine(id) => self.command_quarantine(id, true),
            Command::Release(id) => self.command_quarantine(id, false),
        }
    }

    pub(super) fn accepts_commands(&self, id: UnitId) -> bool {
        self.valid(id) && self.started && !self.shutting_down
    }

    /// Stops `id` and, transitively, what hard-depends on it.
    pub(super) fn command_stop(&mut self, id: UnitId) {
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
    pub(super) fn command_start(&mut self, id: UnitId) {
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
            // A disabled unit stays down; what needs it is skipped by the gates.
            if self.units[d.0].disabled.is_some() {
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
    pub(super) fn revive(&mut self, id: UnitId, reason: String) {
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

    pub(super) fn revive_skipped_dependents(&mut self, root: UnitId) {
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

    pub(super) fn command_restart(&mut self, id: UnitId) {
        if !self.accepts_commands(id) || self.units[id.0].disabled.is_some() {
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
                u.commanded_restarts = u.commanded_restarts.saturating_add(1);
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
                u.commanded_restarts = u.commanded_restarts.saturating_add(1);
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

impl Engine {
    /// Replaces the definition of unit `id` (a reload of the stack file). The graph
    /// cannot change this way: name, kind, layer and dependencies must be the same.
    /// The new definition is taken on at once when the unit has no process, otherwise
    /// at its next start: the caller restarts it (`Command::Restart`) to apply it now.
    /// Returns whether it was taken on at once.
    pub fn replace_config(&mut self, id: UnitId, config: UnitConfig) -> Result<bool, String> {
        let Some(u) = self.units.get_mut(id.0) else {
            return Err(format!(
                "no unit {id}: the engine has {} units",
                self.units.len()
            ));
        };
        let old = &u.config;
        let what = if old.name != config.name {
            Some("name")
        } else if old.kind != config.kind {
            Some("kind")
        } else if old.layer != config.layer {
            Some("layer")
        } else if old.deps != config.deps {
            Some("dependencies")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(format!(
                "the {what} of {} cannot change while the stack runs",
                old.name
            ));
        }
        u.pending_config = Some(Box::new(config));
        if u.proc == Proc::Down {
            self.take_pending_config(id);
            return Ok(true);
        }
        Ok(false)
    }

    /// A unit whose process is down takes on a definition a reload handed in: its probes
    /// and start breaker are built anew from it (their counts start over).
    pub(super) fn take_pending_config(&mut self, id: UnitId) {
        let u = &mut self.units[id.0];
        if u.proc != Proc::Down {
            return;
        }
        let Some(config) = u.pending_config.take() else {
            return;
        };
        let config = *config;
        u.probes = crate::unit::probes_of(&config);
        if u.config.breaker != config.breaker {
            u.breaker = config.breaker.map(crate::breaker::Breaker::new);
        }
        u.config = config;
    }
}

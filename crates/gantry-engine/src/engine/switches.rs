//! Operator switches on a unit: disabled (kept down across commands, recoveries and boots) and quarantined (frozen: probes ignored, never restarted).

use super::Engine;
use crate::config::UnitId;
use crate::unit::{Goal, Life};

impl Engine {
    /// Marks unit `id` disabled before the boot (a switch kept in the state store from an
    /// earlier run): at `start` it is stopped with `why` as its reason instead of started,
    /// and what hard-depends on it is skipped with that reason. Ignored once started (use
    /// `Command::Disable`). Returns false for an unknown id.
    pub fn preset_disabled(&mut self, id: UnitId, why: String) -> bool {
        if self.started {
            return false;
        }
        match self.units.get_mut(id.0) {
            Some(u) => {
                u.disabled = Some(why);
                u.goal = Goal::Down;
                true
            }
            None => false,
        }
    }

    /// Why unit `id` is disabled, if it is.
    pub fn disabled(&self, id: UnitId) -> Option<&str> {
        self.units.get(id.0)?.disabled.as_deref()
    }

    /// Whether unit `id` is quarantined.
    pub fn quarantined(&self, id: UnitId) -> bool {
        self.units.get(id.0).is_some_and(|u| u.quarantined)
    }

    /// The units preset disabled are stopped with their reason when the boot begins.
    pub(super) fn stop_disabled_at_boot(&mut self) {
        for i in 0..self.units.len() {
            if let Some(why) = self.units[i].disabled.clone() {
                self.units[i].goal = Goal::Down;
                self.set_life(UnitId(i), Life::Stopped, Some(why));
            }
        }
    }

    /// Stops `id` and what hard-depends on it, and keeps `id` down until enabled.
    pub(super) fn command_disable(&mut self, id: UnitId, why: String) {
        if !self.accepts_commands(id) {
            return;
        }
        self.units[id.0].quarantined = false;
        self.units[id.0].disabled = Some(why.clone());
        self.command_stop(id);
        // The unit itself shows who disabled it and why rather than "stopped by command".
        if self.units[id.0].life == Life::Stopped {
            self.units[id.0].reason = Some(why);
        } else {
            self.units[id.0].stop_reason = Some(why);
        }
    }

    /// Clears the disable and starts the unit with its required dependencies (each waits
    /// for its own dependencies' gates, so they come up in dependency order); dependents
    /// skipped because of it try again.
    pub(super) fn command_enable(&mut self, id: UnitId) {
        if !self.accepts_commands(id) {
            return;
        }
        if self.units[id.0].disabled.take().is_none() {
            return;
        }
        self.command_start(id);
    }

    /// Quarantine (`on`) or release a unit: while quarantined its probe results are ignored.
    pub(super) fn command_quarantine(&mut self, id: UnitId, on: bool) {
        if !self.accepts_commands(id) {
            return;
        }
        self.units[id.0].quarantined = on;
        self.mark(id);
    }

    /// Whether a skip of `id` because of its dead dependency `dep` is an operator's choice.
    pub(super) fn dead_by_switch(&self, dep: UnitId) -> bool {
        let d = &self.units[dep.0];
        d.disabled.is_some() || (d.life == Life::Skipped && d.skipped_by_switch)
    }
}

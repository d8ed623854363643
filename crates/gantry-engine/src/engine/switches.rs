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

    /// Whether unit `id` was added to the running engine and not started since
    /// (`Engine::add_units`): an enable starts it.
    pub fn held(&self, id: UnitId) -> bool {
        self.units.get(id.0).is_some_and(|u| u.held)
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

    /// Clears the disable and starts the unit with its required dependencies one at a time,
    /// dependencies first, each once the one before passed its gate (the "gradual enable");
    /// then dependents skipped because of it try again. With a required dependency still
    /// disabled nothing starts: the unit is skipped for it, never started against it.
    pub(super) fn command_enable(&mut self, id: UnitId) {
        if !self.accepts_commands(id) {
            return;
        }
        let held = std::mem::take(&mut self.units[id.0].held);
        if self.units[id.0].disabled.take().is_none() && !held {
            return;
        }
        // Dependencies first: a post-order walk of the required edges.
        let epoch = self.next_epoch();
        let mut order = Vec::new();
        let mut stack = vec![(id, false)];
        while let Some((d, expanded)) = stack.pop() {
            if expanded {
                order.push(d);
                continue;
            }
            if !self.visit(d, epoch) {
                continue;
            }
            stack.push((d, true));
            for dep in self.units[d.0]
                .config
                .deps
                .iter()
                .filter(|dep| dep.required)
            {
                stack.push((dep.unit, false));
            }
        }
        if order.iter().any(|d| self.units[d.0].disabled.is_some()) {
            // Its gates skip it, naming the disabled dependency.
            self.command_start(id);
            return;
        }
        self.enabling = order
            .into_iter()
            .filter(|&d| {
                let u = &self.units[d.0];
                u.goal != Goal::Up || u.life.is_dead()
            })
            .collect();
        self.enabling_root = Some(id);
        self.enabling_front_started = false;
        self.advance_enable();
    }

    /// Moves a gradual enable on: the unit in front is started if it is not yet, dropped once
    /// up (or completed); a front that failed, was skipped or stopped ends the enable. Returns
    /// whether something changed.
    pub(super) fn advance_enable(&mut self) -> bool {
        let Some(root) = self.enabling_root else {
            return false;
        };
        if self.shutting_down {
            self.enabling.clear();
            self.enabling_root = None;
            return false;
        }
        while let Some(&d) = self.enabling.front() {
            if !self.enabling_front_started {
                // Not started yet: start it now, and wait for its gate.
                self.enabling_front_started = true;
                self.units[d.0].goal = Goal::Up;
                self.sync(d);
                if self.units[d.0].life.is_dead() {
                    self.revive(d, "enabled: started after its dependencies".to_string());
                }
                self.mark(d);
                return true;
            }
            match self.units[d.0].life {
                Life::Up { .. } | Life::Completed => {
                    self.enabling.pop_front();
                    self.enabling_front_started = false;
                }
                Life::Failed | Life::Skipped | Life::Stopped => {
                    // It did not come up: the rest would start against a missing dependency.
                    self.enabling.clear();
                    self.enabling_root = None;
                    self.enabling_front_started = false;
                    return false;
                }
                _ => return false,
            }
        }
        self.enabling_root = None;
        self.revive_skipped_dependents(root);
        true
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

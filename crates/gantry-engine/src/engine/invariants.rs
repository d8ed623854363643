//! The oracle of the engine's caches: every counter recomputed from scratch and compared, for tests.

use super::Engine;
use crate::config::{ProbeRole, UnitId};
use crate::timers::TimerKind;
use crate::unit::{Edge, Life};

impl Engine {
    /// Recomputes every cached count from scratch and compares; for tests.
    ///
    /// The engine keeps counters instead of scanning (so an event costs
    /// O(degree)); this is the oracle that proves the counters right.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        if !self.dirty.is_empty() {
            return Err("dirty units left after a call".into());
        }
        let mut busy = 0;
        let mut unsettled = 0;
        let mut blocked_by = vec![0usize; self.units.len()];
        let mut layer_blocking = vec![0usize; self.layers.len()];
        for (i, u) in self.units.iter().enumerate() {
            if u.blocking {
                layer_blocking[self.rank[i]] += 1;
                for dep in &u.config.deps {
                    blocked_by[dep.unit.0] += 1;
                }
            }
        }
        if layer_blocking != self.layer_blocking {
            return Err(format!(
                "layer_blocking {:?} != {layer_blocking:?}",
                self.layer_blocking
            ));
        }
        for (i, u) in self.units.iter().enumerate() {
            let name = &u.config.name;
            let id = UnitId(i);
            if u.busy != u.is_busy() || u.blocking != u.is_blocking() || u.facing != u.facing() {
                return Err(format!("{name}: stale busy/blocking/facing cache"));
            }
            busy += usize::from(u.busy);
            unsettled += usize::from(!u.life.is_settled());
            if u.blocked_by != blocked_by[i] {
                return Err(format!(
                    "{name}: blocked_by {} != {}",
                    u.blocked_by, blocked_by[i]
                ));
            }
            let edges: Vec<Edge> = u
                .config
                .deps
                .iter()
                .map(|&dep| Edge::of(self.units[dep.unit.0].facing(), dep))
                .collect();
            if edges != u.edges {
                return Err(format!("{name}: stale edges"));
            }
            let unsatisfied = edges.iter().filter(|e| !e.satisfied).count();
            let dead = edges.iter().filter(|e| e.dead_required).count();
            if (unsatisfied, dead) != (u.unsatisfied, u.dead_required) {
                return Err(format!("{name}: edge counters off"));
            }
            if u.state != u.public_state() {
                return Err(format!(
                    "{name}: announced {} but is {}",
                    u.state,
                    u.public_state()
                ));
            }
            // Each deadline belongs to one life.
            let owned = [
                (
                    TimerKind::Start,
                    matches!(u.life, Life::Spawning | Life::Probing),
                ),
                (
                    TimerKind::Backoff,
                    matches!(u.life, Life::BackingOff { .. }),
                ),
                (TimerKind::Stop, matches!(u.life, Life::Stopping { .. })),
                (TimerKind::Grace, u.life == Life::Probing && u.in_grace),
            ];
            for (kind, allowed) in owned {
                if self.timers.get(id, kind).is_some() && !allowed {
                    return Err(format!("{name}: {kind:?} timer armed in {:?}", u.life));
                }
            }
            for role in ProbeRole::ALL {
                let active = u.probe(role).is_some_and(|p| p.active);
                let allowed = match role {
                    ProbeRole::Liveness => matches!(u.life, Life::Up { .. }),
                    ProbeRole::Readiness => {
                        u.life == Life::Probing
                            || matches!(u.life, Life::Up { .. })
                                && u.probe(role).is_some_and(|p| p.steady && p.is_polled())
                    }
                    ProbeRole::Startup => u.life == Life::Probing,
                };
                if active && (!allowed || u.stop_requested) {
                    return Err(format!("{name}: {role} probe active in {:?}", u.life));
                }
            }
        }
        if busy != self.busy || unsettled != self.unsettled {
            return Err(format!(
                "busy {busy} (cached {}), unsettled {unsettled} (cached {})",
                self.busy, self.unsettled
            ));
        }
        Ok(())
    }
}

//! Units added to a running engine (a service the selection left out, enabled later): appended
//! after the existing ones, stopped, the graph and every cached count rebuilt around them.

use super::Engine;
use crate::config::{UnitConfig, UnitId};
use crate::error::EngineError;
use crate::graph;
use crate::unit::{Edge, Goal, Life, Unit};

impl Engine {
    /// Appends `configs` as units `n..n+k` (their dependencies may name existing units and
    /// each other; nothing existing may depend on them). They start stopped with `why` as
    /// their reason; `Command::Start` / `Command::Enable` starts them like any stopped unit.
    /// Only once the boot is decided and while no shutdown is under way. Returns the new ids.
    pub fn add_units(
        &mut self,
        configs: Vec<UnitConfig>,
        why: &str,
    ) -> Result<Vec<UnitId>, EngineError> {
        if !self.started || self.outcome.is_none() || self.shutting_down {
            return Err(EngineError::NotNow(
                "units can be added once the boot is decided and until the shutdown".into(),
            ));
        }
        let n = self.units.len();
        let mut all: Vec<UnitConfig> = self.units.iter().map(|u| u.config.clone()).collect();
        for (k, c) in configs.iter().enumerate() {
            if self.units.iter().any(|u| u.config.name == c.name)
                || configs[..k].iter().any(|o| o.name == c.name)
            {
                return Err(EngineError::NotNow(format!(
                    "`{}` is already a unit",
                    c.name
                )));
            }
        }
        all.extend(configs.iter().cloned());
        let graph = graph::build(&all)?;
        let k = configs.len();
        self.dependents = graph.dependents;
        self.rank = graph.rank;
        self.layers = graph.layers;
        self.timers.grow(n + k);
        self.queued.resize(n + k, false);
        self.visit.resize(n + k, 0);
        for config in configs {
            self.units.push(Unit::new(config));
        }
        // A new unit is busy and unsettled until it is stopped below.
        self.busy += k;
        self.unsettled += k;
        let ids: Vec<UnitId> = (n..n + k).map(UnitId).collect();
        // Per layer: units that never settled; and units holding a layer's shutdown.
        let mut layer_unsettled = vec![0usize; self.layers.len()];
        for (i, u) in self.units.iter().enumerate() {
            if !u.settled_once {
                layer_unsettled[self.rank[i]] += 1;
            }
        }
        self.layer_unsettled = layer_unsettled;
        let mut layer_blocking = vec![0usize; self.layers.len()];
        for (i, u) in self.units.iter().enumerate() {
            if u.blocking {
                layer_blocking[self.rank[i]] += 1;
            }
        }
        self.layer_blocking = layer_blocking;
        for &id in &ids {
            self.refresh_edges(id);
            self.units[id.0].goal = Goal::Down;
            self.units[id.0].held = true;
            self.set_life(id, Life::Stopped, Some(why.to_string()));
            self.sync(id);
        }
        // The new units' edges follow their (new) dependencies, now stopped.
        for &id in &ids {
            self.refresh_edges(id);
        }
        self.open_layer = 0;
        self.advance_layers();
        self.flush();
        Ok(ids)
    }

    /// Recomputes unit `id`'s edge statuses from its dependencies as they face now.
    fn refresh_edges(&mut self, id: UnitId) {
        let edges: Vec<Edge> = self.units[id.0]
            .config
            .deps
            .iter()
            .map(|&dep| Edge::of(self.units[dep.unit.0].facing(), dep))
            .collect();
        let u = &mut self.units[id.0];
        u.unsatisfied = edges.iter().filter(|e| !e.satisfied).count();
        u.dead_required = edges.iter().filter(|e| e.dead_required).count();
        u.edges = edges;
    }
}

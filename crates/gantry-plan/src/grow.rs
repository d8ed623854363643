//! A running plan taking on services it left out (a service enabled that the selection did not
//! choose): their units and the hard dependencies missing, appended from the whole file's plan.

use crate::{Plan, PlanDep, ReplicaGroup};

impl Plan {
    /// Appends from `full` (the plan of the whole file, or of a wider selection) the units
    /// of the services `names` and their hard dependencies, transitively, that `self` does not
    /// have yet. Their dependencies are renumbered to `self`; a soft dependency on a unit
    /// `self` does not have is dropped (it only orders a start). Nothing already in `self`
    /// gains a dependency. Returns the new units' indices, dependencies first.
    pub fn take_on(&mut self, full: &Plan, names: &[String]) -> Result<Vec<usize>, String> {
        if self.layers != full.layers {
            return Err(
                "the file's [layers] changed since this stack started; run `gantry down` and `gantry up`"
                    .into(),
            );
        }
        let mut wanted = vec![false; full.units.len()];
        let mut stack = Vec::new();
        for name in names {
            let units = full
                .units_of(name)
                .ok_or_else(|| format!("unknown service `{name}`"))?;
            stack.extend(units);
        }
        while let Some(u) = stack.pop() {
            if wanted[u] || self.index(full.units[u].name()).is_some() {
                continue;
            }
            wanted[u] = true;
            stack.extend(
                full.units[u]
                    .deps
                    .iter()
                    .filter(|d| d.required)
                    .map(|d| d.unit),
            );
        }
        // Dependencies first: `full`'s waves are in start order.
        let order: Vec<usize> = full
            .waves
            .iter()
            .flatten()
            .copied()
            .filter(|&u| wanted[u])
            .collect();
        let first = self.units.len();
        let index =
            |name: &str, units: &[crate::PlanUnit]| units.iter().position(|u| u.name() == name);
        let mut added = Vec::with_capacity(order.len());
        for &u in &order {
            let mut unit = full.units[u].clone();
            let mut deps = Vec::with_capacity(unit.deps.len());
            for d in &unit.deps {
                match index(full.units[d.unit].name(), &self.units) {
                    Some(i) => deps.push(PlanDep { unit: i, ..*d }),
                    None if d.required => {
                        return Err(format!(
                            "{} needs {}, which could not be added",
                            unit.name(),
                            full.units[d.unit].name()
                        ));
                    }
                    None => {}
                }
            }
            let at = self.units.len();
            for d in &deps {
                self.units[d.unit].dependents.push(at);
            }
            // One wave after its latest dependency's.
            unit.wave = deps
                .iter()
                .map(|d| self.units[d.unit].wave + 1)
                .max()
                .unwrap_or(0);
            unit.deps = deps;
            unit.dependents = Vec::new();
            while self.waves.len() <= unit.wave {
                self.waves.push(Vec::new());
            }
            self.waves[unit.wave].push(at);
            self.units.push(unit);
            added.push(at);
        }
        for g in &full.replica_groups {
            let units: Vec<usize> = g
                .units
                .iter()
                .filter(|&&u| wanted[u])
                .filter_map(|&u| index(full.units[u].name(), &self.units[first..]))
                .map(|i| first + i)
                .collect();
            if !units.is_empty() && self.replica_group(&g.service).is_none() {
                self.replica_groups.push(ReplicaGroup {
                    service: g.service.clone(),
                    units,
                });
            }
        }
        Ok(added)
    }
}

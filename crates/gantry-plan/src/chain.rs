//! The critical chain of a boot that happened: from the unit that became ready last, back through whichever gate released each unit last (a dependency or the layer barrier).
//!
//! Like `systemd-analyze critical-chain`. The walk starts at the unit that became ready
//! last and steps back, each time to the unit that held the current one back: among the
//! units that were ready by the time the current one was spawned, the one that became
//! ready last, taken from
//!
//! - its dependencies, and
//! - with layers, every unit of the earlier layers: a unit of layer k > 0 could not start
//!   before every unit of layers 0..k had settled, so the last of them released it even
//!   without a dependency edge.
//!
//! A dependency that became ready only after the unit was spawned (a `started` condition,
//! or a soft dependency) did not hold it back and is not followed. The same function
//! serves the runtime (plan units and the engine's ready times, by index, see
//! [`critical_chain`]) and `gantry analyze` (records by name and the plan of the file as it
//! is now, see [`critical_chain_by_name`]). Both are adapters: the walk itself is
//! `gantry_engine::chain`, the one implementation the GO line uses too.

use crate::build::Plan;
use gantry_engine::chain::ChainNode;
use std::collections::HashMap;

/// When a unit was first spawned and when it became ready (or completed), in one unit of
/// time counted from the boot's start (the runtime and the state store use milliseconds).
/// None: it never got there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitTimes {
    pub started: Option<u64>,
    pub ready: Option<u64>,
}

impl UnitTimes {
    pub fn new(started: Option<u64>, ready: Option<u64>) -> Self {
        UnitTimes { started, ready }
    }
}

/// The dependency structure by service name, for data that is keyed by name (boot records
/// in the state store): each service's dependencies and its layer (an index into the
/// ordered layers). Services without a layer entry take part in no barrier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedGraph {
    pub deps: HashMap<String, Vec<String>>,
    pub layers: HashMap<String, usize>,
}

impl NamedGraph {
    pub fn new() -> Self {
        NamedGraph::default()
    }

    /// Dependencies and layers of `plan`'s units. Without declared layers no unit gets a
    /// layer entry (every unit is in layer 0, so there is no barrier anyway).
    pub fn from_plan(plan: &Plan) -> Self {
        let deps = plan
            .units
            .iter()
            .map(|u| {
                let names = u
                    .deps
                    .iter()
                    .filter_map(|d| plan.units.get(d.unit))
                    .map(|d| d.name().to_string());
                (u.name().to_string(), names.collect())
            })
            .collect();
        let layers = if plan.layers.is_empty() {
            HashMap::new()
        } else {
            plan.units
                .iter()
                .map(|u| (u.name().to_string(), u.layer))
                .collect()
        };
        NamedGraph { deps, layers }
    }
}

/// Dependencies only, no layers (`[("web", vec!["api"])]`).
impl FromIterator<(String, Vec<String>)> for NamedGraph {
    fn from_iter<I: IntoIterator<Item = (String, Vec<String>)>>(iter: I) -> Self {
        NamedGraph {
            deps: iter.into_iter().collect(),
            layers: HashMap::new(),
        }
    }
}

/// The critical chain of a run of `plan`, `times[i]` being unit `i`'s times: unit indices,
/// the last to become ready first. Times beyond the plan's units are ignored, missing ones
/// count as never ready. Ties go to the lower index.
///
/// For the GO line, print it reversed (first-ready first): `pg-init → pg → … → web`.
pub fn critical_chain(plan: &Plan, times: &[UnitTimes]) -> Vec<usize> {
    let layered = !plan.layers.is_empty();
    let nodes: Vec<ChainNode> = plan
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let times = times.get(i).copied().unwrap_or_default();
            ChainNode {
                deps: u
                    .deps
                    .iter()
                    .map(|d| d.unit)
                    .filter(|&d| d < plan.units.len())
                    .collect(),
                layer: layered.then_some(u.layer),
                started: times.started,
                ready: times.ready,
            }
        })
        .collect();
    gantry_engine::chain::critical_chain(&nodes)
}

/// The critical chain of records keyed by name (`units[i]` = (name, times)): indices into
/// `units`, the last to become ready first. Dependencies and layers come from `graph`
/// (usually [`NamedGraph::from_plan`] of the file as it is now); a dependency on a name
/// with no record is skipped, a record the graph does not know has no dependencies and no
/// layer. Ties go to the alphabetically first name.
pub fn critical_chain_by_name(graph: &NamedGraph, units: &[(&str, UnitTimes)]) -> Vec<usize> {
    // Walk in name order so that ties go to the first name, then map back.
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| units[a].0.cmp(units[b].0).then(a.cmp(&b)));
    let mut pos: HashMap<&str, usize> = HashMap::with_capacity(units.len());
    for (p, &i) in order.iter().enumerate() {
        // A repeated name keeps its first record.
        pos.entry(units[i].0).or_insert(p);
    }
    let nodes: Vec<ChainNode> = order
        .iter()
        .map(|&i| {
            let (name, times) = units[i];
            ChainNode {
                deps: graph
                    .deps
                    .get(name)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| pos.get(d.as_str()).copied())
                    .collect(),
                layer: graph.layers.get(name).copied(),
                started: times.started,
                ready: times.ready,
            }
        })
        .collect();
    gantry_engine::chain::critical_chain(&nodes)
        .into_iter()
        .map(|p| order[p])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(started: u64, ready: u64) -> UnitTimes {
        UnitTimes::new(Some(started), Some(ready))
    }

    fn graph(pairs: &[(&str, &[&str])], layers: &[(&str, usize)]) -> NamedGraph {
        NamedGraph {
            deps: pairs
                .iter()
                .map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect()))
                .collect(),
            layers: layers.iter().map(|(n, l)| (n.to_string(), *l)).collect(),
        }
    }

    fn names<'a>(units: &[(&'a str, UnitTimes)], chain: &[usize]) -> Vec<&'a str> {
        chain.iter().map(|&i| units[i].0).collect()
    }

    #[test]
    fn follows_the_latest_dependency_ready_before_the_spawn() {
        let units = [
            ("api", t(330, 930)),
            ("cache", t(0, 50)),
            ("db", t(0, 330)),
            ("migrate", t(330, 400)),
            ("web", t(930, 1240)),
        ];
        let g = graph(
            &[
                ("api", &["db", "cache"]),
                ("web", &["api", "cache"]),
                ("migrate", &["db"]),
            ],
            &[],
        );
        assert_eq!(
            names(&units, &critical_chain_by_name(&g, &units)),
            ["web", "api", "db"]
        );
        // `worker` only waited for `queue` to start: queue got ready after worker spawned.
        let units = [
            ("queue", t(0, 700)),
            ("db", t(0, 100)),
            ("worker", t(120, 900)),
        ];
        let g = graph(&[("worker", &["queue", "db"])], &[]);
        assert_eq!(
            names(&units, &critical_chain_by_name(&g, &units)),
            ["worker", "db"]
        );
    }

    /// Issue 12, bug 3: `web` has no dependency, yet it waited for the whole `app` layer,
    /// whose last unit (`worker`) is where the chain continues.
    #[test]
    fn crosses_a_layer_barrier_without_a_dependency_edge() {
        let units = [
            ("pg-init", t(0, 40)),
            ("pg", t(40, 300)),
            ("redis", t(0, 30)),
            ("migrate", t(300, 520)),
            ("api", t(520, 800)),
            ("worker", t(800, 950)),
            ("metrics", t(300, 320)),
            ("web", t(950, 1100)),
        ];
        let g = graph(
            &[
                ("pg", &["pg-init"]),
                ("migrate", &["pg"]),
                ("api", &["migrate", "redis"]),
                ("worker", &["api"]),
            ],
            &[
                ("pg-init", 0),
                ("pg", 0),
                ("redis", 0),
                ("migrate", 1),
                ("api", 1),
                ("worker", 1),
                ("metrics", 1),
                ("web", 2),
            ],
        );
        let chain = names(&units, &critical_chain_by_name(&g, &units));
        assert_eq!(chain, ["web", "worker", "api", "migrate", "pg", "pg-init"]);
        // Without the layers the same records stop at `web`: the old, wrong answer.
        let flat = NamedGraph {
            layers: HashMap::new(),
            ..g.clone()
        };
        assert_eq!(
            names(&units, &critical_chain_by_name(&flat, &units)),
            ["web"]
        );
        // `metrics` (layer 1, no dependencies) is released by the barrier of layer 0: the
        // last of pg-init, pg and redis.
        let mut early = units;
        early.iter_mut().for_each(|u| {
            if u.0 == "metrics" {
                u.1 = t(300, 2000);
            }
        });
        assert_eq!(
            names(&early, &critical_chain_by_name(&g, &early)),
            ["metrics", "pg", "pg-init"]
        );
    }

    #[test]
    fn a_dependency_wins_a_tie_with_the_barrier_and_names_break_other_ties() {
        // b (layer 1) depends on y; x and y (layer 0) got ready at the same time.
        let units = [("x", t(0, 100)), ("y", t(0, 100)), ("b", t(100, 200))];
        let g = graph(&[("b", &["y"])], &[("x", 0), ("y", 0), ("b", 1)]);
        assert_eq!(
            names(&units, &critical_chain_by_name(&g, &units)),
            ["b", "y"]
        );
        // Two units ready last at the same time: the first name starts the chain.
        let units = [("zeta", t(0, 100)), ("alpha", t(0, 100))];
        assert_eq!(
            names(&units, &critical_chain_by_name(&NamedGraph::new(), &units)),
            ["alpha"]
        );
    }

    #[test]
    fn edge_cases() {
        assert!(critical_chain_by_name(&NamedGraph::new(), &[]).is_empty());
        let never = [("a", UnitTimes::new(Some(0), None))];
        assert!(critical_chain_by_name(&NamedGraph::new(), &never).is_empty());
        // A dependency cycle in stale data does not loop forever.
        let units = [("a", t(10, 10)), ("b", t(10, 10))];
        let g = graph(&[("a", &["b"]), ("b", &["a"])], &[]);
        assert_eq!(
            names(&units, &critical_chain_by_name(&g, &units)),
            ["a", "b"]
        );
        // Unknown names (a service removed from the file) are skipped.
        let g = graph(&[("a", &["ghost", "b"])], &[]);
        assert_eq!(
            names(&units, &critical_chain_by_name(&g, &units)),
            ["a", "b"]
        );
        // A unit that never started is gated by its ready time.
        let units = [("a", t(0, 10)), ("b", UnitTimes::new(None, Some(20)))];
        let g = graph(&[("b", &["a"])], &[]);
        assert_eq!(
            names(&units, &critical_chain_by_name(&g, &units)),
            ["b", "a"]
        );
    }

    #[test]
    fn by_index_over_a_plan() {
        let text = r#"
[layers]
order = ["data", "app", "edge"]

[services.pg]
command = "x"
layer = "data"

[services.api]
command = "x"
layer = "app"
depends_on = ["pg"]

[services.worker]
command = "x"
layer = "app"
depends_on = ["api"]

[services.web]
command = "x"
layer = "edge"
"#;
        let source = gantry_spec::Source::new("gantry.toml", text);
        let loaded = gantry_spec::decode(&source, &|_| None);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let (plan, diags) = crate::build(&loaded.spec, &source, &Default::default());
        assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
        let idx = |n: &str| plan.index(n).unwrap();
        let mut times = vec![UnitTimes::default(); plan.units.len()];
        times[idx("pg")] = t(0, 100);
        times[idx("api")] = t(100, 300);
        times[idx("worker")] = t(300, 400);
        times[idx("web")] = t(400, 450);
        let chain: Vec<&str> = critical_chain(&plan, &times)
            .into_iter()
            .map(|i| plan.units[i].name())
            .collect();
        assert_eq!(chain, ["web", "worker", "api", "pg"]);
        // The same through names.
        let named: Vec<(&str, UnitTimes)> = plan
            .units
            .iter()
            .zip(&times)
            .map(|(u, t)| (u.name(), *t))
            .collect();
        let by_name: Vec<&str> = critical_chain_by_name(&NamedGraph::from_plan(&plan), &named)
            .into_iter()
            .map(|i| named[i].0)
            .collect();
        assert_eq!(by_name, chain);
        // Missing times count as never ready.
        assert!(critical_chain(&plan, &[]).is_empty());
    }
}

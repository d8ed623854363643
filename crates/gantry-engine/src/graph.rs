//! Validation and precomputed indexes of the dependency graph: dependents lists, cycle check, dense layer ranks.

use crate::config::{Condition, UnitConfig, UnitId, UnitKind};
use crate::error::EngineError;

/// Reverse edges and layers, computed once so that every event costs
/// O(degree) instead of a scan of all units.
#[derive(Clone, Debug)]
pub(crate) struct Graph {
    /// For each unit, the edges pointing at it: the dependent, the index of
    /// the edge in the dependent's `deps`, and whether it is required.
    pub(crate) dependents: Vec<Vec<(UnitId, usize, bool)>>,
    /// Dense layer rank of each unit: user layers may be sparse (0, 10, 20).
    pub(crate) rank: Vec<usize>,
    /// Units of each dense layer.
    pub(crate) layers: Vec<Vec<UnitId>>,
}

pub(crate) fn build(units: &[UnitConfig]) -> Result<Graph, EngineError> {
    let n = units.len();
    for unit in units {
        for dep in &unit.deps {
            let Some(target) = units.get(dep.unit.0) else {
                return Err(EngineError::UnknownDependency {
                    unit: unit.name.clone(),
                    index: dep.unit.0,
                    units: n,
                });
            };
            if target.layer > unit.layer {
                return Err(EngineError::LayerOrder {
                    unit: unit.name.clone(),
                    layer: unit.layer,
                    dependency: target.name.clone(),
                    dependency_layer: target.layer,
                });
            }
            if dep.condition == Condition::Completed && target.kind != UnitKind::Task {
                return Err(EngineError::NotATask {
                    unit: unit.name.clone(),
                    dependency: target.name.clone(),
                });
            }
        }
    }
    check_cycles(units)?;

    let mut dependents = vec![Vec::new(); n];
    for (i, unit) in units.iter().enumerate() {
        for (k, dep) in unit.deps.iter().enumerate() {
            dependents[dep.unit.0].push((UnitId(i), k, dep.required));
        }
    }

    let mut distinct: Vec<usize> = units.iter().map(|u| u.layer).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut layers = vec![Vec::new(); distinct.len()];
    let mut rank = Vec::with_capacity(n);
    for (i, unit) in units.iter().enumerate() {
        let r = distinct.partition_point(|&l| l < unit.layer);
        rank.push(r);
        layers[r].push(UnitId(i));
    }
    Ok(Graph {
        dependents,
        rank,
        layers,
    })
}

/// Iterative depth-first search, so that a 10,000-unit chain cannot overflow
/// the stack; on a back edge the whole cycle is reported, not just one edge.
fn check_cycles(units: &[UnitConfig]) -> Result<(), EngineError> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; units.len()];
    for root in 0..units.len() {
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::OnPath;
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = path.last_mut() {
            let node = top.0;
            let Some(dep) = units[node].deps.get(top.1) else {
                mark[node] = Mark::Done;
                path.pop();
                continue;
            };
            top.1 += 1;
            let next = dep.unit.0;
            match mark[next] {
                Mark::New => {
                    mark[next] = Mark::OnPath;
                    path.push((next, 0));
                }
                Mark::OnPath => {
                    let start = path.iter().position(|&(u, _)| u == next).unwrap_or(0);
                    let mut names: Vec<String> = path[start..]
                        .iter()
                        .map(|&(u, _)| units[u].name.clone())
                        .collect();
                    names.push(units[next].name.clone());
                    return Err(EngineError::Cycle { path: names });
                }
                Mark::Done => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dep;

    fn unit(name: &str, deps: &[usize]) -> UnitConfig {
        let mut u = UnitConfig::new(name, UnitKind::Process);
        u.deps = deps
            .iter()
            .map(|&d| Dep::hard(UnitId(d), Condition::Ready))
            .collect();
        u
    }

    #[test]
    fn reports_the_whole_cycle() {
        let units = vec![unit("one", &[1]), unit("two", &[2]), unit("three", &[0])];
        let err = build(&units).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle: [ one -> two -> three -> one ]"
        );
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let err = build(&[unit("a", &[0])]).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: [ a -> a ]");
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let err = build(&[unit("a", &[7])]).unwrap_err();
        assert!(matches!(
            err,
            EngineError::UnknownDependency { index: 7, .. }
        ));
    }

    #[test]
    fn sparse_layers_are_ranked_densely() {
        let mut a = unit("a", &[]);
        a.layer = 10;
        let mut b = unit("b", &[]);
        b.layer = usize::MAX;
        let c = unit("c", &[]);
        let g = build(&[a, b, c]).unwrap();
        assert_eq!(g.rank, [1, 2, 0]);
        assert_eq!(g.layers.len(), 3);
    }

    #[test]
    fn later_layer_dependency_is_rejected() {
        let mut b = unit("b", &[]);
        b.layer = 1;
        let err = build(&[unit("a", &[1]), b]).unwrap_err();
        assert!(matches!(err, EngineError::LayerOrder { .. }));
    }

    #[test]
    fn diamond_is_fine_and_dependents_are_indexed() {
        let units = vec![
            unit("db", &[]),
            unit("a", &[0]),
            unit("b", &[0]),
            unit("api", &[1, 2]),
        ];
        let g = build(&units).unwrap();
        assert_eq!(
            g.dependents[0],
            [(UnitId(1), 0, true), (UnitId(2), 0, true)]
        );
        assert_eq!(g.dependents[3], []);
    }
}

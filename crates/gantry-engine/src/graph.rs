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

/// Rejects a cyclic graph, naming the first cycle [`dependency_order`] reports.
fn check_cycles(units: &[UnitConfig]) -> Result<(), EngineError> {
    match dependency_order(units.len(), |i| units[i].deps.iter().map(|d| d.unit.0)) {
        Ok(_) => Ok(()),
        Err(cycles) => Err(EngineError::Cycle {
            path: cycles
                .first()
                .map(|c| c.iter().map(|&u| units[u].name.clone()).collect())
                .unwrap_or_default(),
        }),
    }
}

/// A dependencies-first order of the graph whose node `i` depends on the nodes `deps(i)`
/// (Kahn's algorithm: iterative, so a 10,000-node chain cannot overflow the stack).
///
/// On cycles it returns one cycle per group of nodes that could not be ordered, each as
/// its full path with the first node repeated at the end, in dependency direction
/// (`[a, b, a]`: a depends on b, b on a). The one cycle check of gantry: the plan turns
/// these paths into diagnostics, the engine refuses to run them. Dependencies that are
/// not below `n` are ignored (the engine reports them before it asks).
pub fn dependency_order<D, I>(n: usize, deps: D) -> Result<Vec<usize>, Vec<Vec<usize>>>
where
    D: Fn(usize) -> I,
    I: IntoIterator<Item = usize>,
{
    let edges = |i: usize| deps(i).into_iter().filter(move |&d| d < n);
    // Reverse edges in one flat array (CSR), each node's dependents in node order.
    let mut indegree = vec![0usize; n];
    let mut start = vec![0usize; n + 1];
    for (i, count) in indegree.iter_mut().enumerate() {
        for d in edges(i) {
            *count += 1;
            start[d + 1] += 1;
        }
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut dependents = vec![0usize; start[n]];
    for i in 0..n {
        for d in edges(i) {
            dependents[fill[d]] = i;
            fill[d] += 1;
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    order.reserve(n - order.len());
    let mut head = 0;
    while head < order.len() {
        let u = order[head];
        head += 1;
        for &d in &dependents[start[u]..start[u + 1]] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                order.push(d);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(stuck_cycles(n, &indegree, &edges))
}

/// The cycles among the nodes Kahn could not order (indegree > 0): from each stuck node
/// not yet reported, walk to a stuck dependency until a node repeats. Every stuck node
/// has one (otherwise it would have been released), so each walk ends on a cycle or on a
/// node already reported.
fn stuck_cycles<E, I>(n: usize, indegree: &[usize], edges: &E) -> Vec<Vec<usize>>
where
    E: Fn(usize) -> I,
    I: Iterator<Item = usize>,
{
    let stuck: Vec<bool> = indegree.iter().map(|&d| d > 0).collect();
    let mut reported = vec![false; n];
    // Position of a node on the current walk; usize::MAX when it is not on it.
    let mut pos = vec![usize::MAX; n];
    let mut cycles = Vec::new();
    for first in 0..n {
        if !stuck[first] || reported[first] {
            continue;
        }
        let mut path = Vec::new();
        let mut u = first;
        loop {
            if pos[u] != usize::MAX {
                let mut cycle = path[pos[u]..].to_vec();
                cycle.push(u);
                let already = cycle.iter().any(|&c| reported[c]);
                for &c in &cycle {
                    reported[c] = true;
                }
                if !already {
                    cycles.push(cycle);
                }
                break;
            }
            if reported[u] {
                break;
            }
            pos[u] = path.len();
            path.push(u);
            match edges(u).find(|&d| stuck[d]) {
                Some(d) => u = d,
                None => break,
            }
        }
        for &p in &path {
            reported[p] = true;
            pos[p] = usize::MAX;
        }
    }
    cycles
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
    fn dependency_order_puts_dependencies_first_or_names_every_cycle() {
        let deps: [&[usize]; 4] = [&[], &[0], &[0], &[1, 2]];
        assert_eq!(
            dependency_order(4, |i| deps[i].iter().copied()),
            Ok(vec![0, 1, 2, 3])
        );
        // Two separate cycles, and a node stuck behind one of them.
        let deps: [&[usize]; 5] = [&[1], &[0], &[3], &[2], &[0]];
        assert_eq!(
            dependency_order(5, |i| deps[i].iter().copied()),
            Err(vec![vec![0, 1, 0], vec![2, 3, 2]])
        );
        // A 10,000-node chain with a back edge: no recursion, the whole path.
        let n = 10_000;
        let cyc = dependency_order(n, |i| [(i + 1) % n]).unwrap_err();
        assert_eq!(cyc.len(), 1);
        assert_eq!(cyc[0].len(), n + 1);
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

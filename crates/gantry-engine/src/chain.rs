//! The critical chain of a boot as it happened: which units, one after another, decided when the last one became ready.
//!
//! One computation for every place that names it (the GO line, `gantry analyze`, the
//! host's snapshot): like `systemd-analyze critical-chain`, it starts at the unit that
//! became ready last and walks back, each time to the gate that released the unit
//! last — among its dependencies *and*, for a unit of a later layer, every unit of the
//! earlier layers (a layer is a barrier) — considering only those ready by the time the
//! unit was started. Ties go to the name that sorts first, so the answer is stable.

/// One unit as the chain sees it. Times are in any one unit (milliseconds, engine time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainNode<'a> {
    pub name: &'a str,
    /// Indices of the units it depends on (any condition, hard or soft).
    pub deps: Vec<usize>,
    /// Its layer index (0 when the file has no layers).
    pub layer: usize,
    /// When it was (first) started, if it was.
    pub started: Option<u64>,
    /// When it became ready / completed, if it did.
    pub ready: Option<u64>,
}

/// The chain, first link first (the root the boot waited on, ..., the last unit to
/// become ready). Empty when nothing became ready.
pub fn critical_chain(nodes: &[ChainNode<'_>]) -> Vec<usize> {
    // Later ready wins; on a tie, the name that sorts first.
    let later = |a: usize, b: usize| -> bool {
        let (na, nb) = (&nodes[a], &nodes[b]);
        na.ready > nb.ready || (na.ready == nb.ready && na.name < nb.name)
    };
    let best = |candidates: &mut dyn Iterator<Item = usize>| -> Option<usize> {
        candidates.fold(None, |acc, c| match acc {
            Some(a) if !later(c, a) => Some(a),
            _ => Some(c),
        })
    };
    let Some(mut cur) = best(&mut (0..nodes.len()).filter(|&u| nodes[u].ready.is_some())) else {
        return Vec::new();
    };
    let mut chain = vec![cur];
    let mut seen = vec![false; nodes.len()];
    seen[cur] = true;
    loop {
        let node = &nodes[cur];
        let gate = node.started.or(node.ready).unwrap_or(u64::MAX);
        let layer = node.layer;
        let mut candidates = node
            .deps
            .iter()
            .copied()
            .filter(|&d| d < nodes.len())
            .chain((0..nodes.len()).filter(|&u| nodes[u].layer < layer))
            .filter(|&d| !seen[d] && nodes[d].ready.is_some_and(|r| r <= gate));
        let Some(next) = best(&mut candidates) else {
            break;
        };
        seen[next] = true;
        chain.push(next);
        cur = next;
    }
    chain.reverse();
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(
        name: &'a str,
        deps: &[usize],
        layer: usize,
        started: u64,
        ready: Option<u64>,
    ) -> ChainNode<'a> {
        ChainNode {
            name,
            deps: deps.to_vec(),
            layer,
            started: Some(started),
            ready,
        }
    }

    fn names(nodes: &[ChainNode<'_>]) -> Vec<String> {
        critical_chain(nodes)
            .into_iter()
            .map(|i| nodes[i].name.to_string())
            .collect()
    }

    #[test]
    fn walks_back_through_the_dependency_ready_last() {
        let nodes = [
            node("db", &[], 0, 0, Some(100)),
            node("cache", &[], 0, 0, Some(30)),
            node("api", &[0, 1], 0, 100, Some(160)),
            node("ui", &[2], 0, 160, Some(170)),
        ];
        assert_eq!(names(&nodes), ["db", "api", "ui"]);
    }

    #[test]
    fn a_layer_barrier_is_a_gate_without_a_dependency_edge() {
        // pg-init → pg → migrate → api → worker → web, where only the layers link
        // pg to migrate and api to worker.
        let nodes = [
            node("pg-init", &[], 0, 0, Some(400)),
            node("pg", &[0], 0, 400, Some(900)),
            node("redis", &[], 0, 0, Some(20)),
            node("migrate", &[], 1, 900, Some(1200)),
            node("api", &[], 2, 1200, Some(1500)),
            node("worker", &[], 3, 1500, Some(1510)),
            node("web", &[4], 4, 1510, Some(1520)),
        ];
        assert_eq!(
            names(&nodes),
            ["pg-init", "pg", "migrate", "api", "worker", "web"]
        );
    }

    #[test]
    fn only_gates_ready_before_the_start_count_and_ties_go_to_the_first_name() {
        let nodes = [
            node("b", &[], 0, 0, Some(50)),
            node("a", &[], 0, 0, Some(50)),
            // Ready after "c" started: it did not hold "c" back.
            node("late", &[], 0, 0, Some(500)),
            node("c", &[0, 1, 2], 0, 60, Some(900)),
        ];
        assert_eq!(names(&nodes), ["a", "c"]);
    }

    #[test]
    fn nothing_ready_is_an_empty_chain_and_cycles_end() {
        let none = [node("x", &[], 0, 0, None)];
        assert!(critical_chain(&none).is_empty());
        let cyclic = [
            node("a", &[1], 0, 0, Some(10)),
            node("b", &[0], 0, 0, Some(10)),
        ];
        assert_eq!(critical_chain(&cyclic).len(), 1);
    }
}

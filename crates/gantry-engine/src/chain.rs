//! The critical chain of a boot as it happened: which units, one after another, decided when the last one became ready.
//!
//! One computation for every place that names it (the GO line through gantry-host,
//! `gantry analyze` through gantry-plan's adapters). Like `systemd-analyze
//! critical-chain`, the walk starts at the unit that became ready last and steps back,
//! each time to the unit that held the current one back: among the units that were ready
//! by the time the current one was started, the one that became ready last, taken from
//!
//! - its dependencies, and
//! - with layers, every unit of the earlier layers: a unit of layer k > 0 could not start
//!   before every unit of layers 0..k had settled, so the last of them released it even
//!   without a dependency edge.
//!
//! A dependency that became ready only after the unit was started (a `started`
//! condition, a soft dependency) did not hold it back and is not followed. On a tie a
//! dependency edge wins over a barrier, then the lower index. Pure: times in, indices out.

/// One unit as the walk sees it. Times are in any one unit (milliseconds since the boot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainNode {
    /// Indices of the units it depends on (any condition, hard or soft).
    pub deps: Vec<usize>,
    /// Its layer index; `None` takes part in no barrier (no layers declared).
    pub layer: Option<usize>,
    /// When it was (first) started, if it was.
    pub started: Option<u64>,
    /// When it became ready / completed, if it did.
    pub ready: Option<u64>,
}

/// The chain: unit indices, the last to become ready first. Empty when nothing became ready.
pub fn critical_chain(nodes: &[ChainNode]) -> Vec<usize> {
    let ready = |i: usize| nodes[i].ready;
    // The last to become ready; ties to the lower index.
    let Some(mut cur) = (0..nodes.len())
        .filter(|&i| ready(i).is_some())
        .min_by_key(|&i| (std::cmp::Reverse(ready(i)), i))
    else {
        return Vec::new();
    };
    let mut chain = vec![cur];
    let mut seen = vec![false; nodes.len()];
    seen[cur] = true;
    loop {
        let node = &nodes[cur];
        let gate = node.started.or(node.ready).unwrap_or(u64::MAX);
        let held_back = |i: usize| !seen[i] && ready(i).is_some_and(|r| r <= gate);
        // (ready time, is a dependency, lower index): the greatest key wins.
        let key = |i: usize, edge: bool| (ready(i), edge, std::cmp::Reverse(i));
        let by_edge = node
            .deps
            .iter()
            .copied()
            .filter(|&d| d < nodes.len() && held_back(d))
            .map(|d| key(d, true));
        let by_barrier = node
            .layer
            .filter(|&k| k > 0)
            .into_iter()
            .flat_map(|k| (0..nodes.len()).filter(move |&i| nodes[i].layer.is_some_and(|l| l < k)))
            .filter(|&i| held_back(i))
            .map(|i| key(i, false));
        let Some((_, _, std::cmp::Reverse(next))) = by_edge.chain(by_barrier).max() else {
            break;
        };
        seen[next] = true;
        chain.push(next);
        cur = next;
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(deps: &[usize], layer: Option<usize>, started: u64, ready: Option<u64>) -> ChainNode {
        ChainNode {
            deps: deps.to_vec(),
            layer,
            started: Some(started),
            ready,
        }
    }

    #[test]
    fn walks_back_through_the_dependency_ready_last() {
        // db, cache, api (db, cache), ui (api)
        let nodes = [
            node(&[], None, 0, Some(100)),
            node(&[], None, 0, Some(30)),
            node(&[0, 1], None, 100, Some(160)),
            node(&[2], None, 160, Some(170)),
        ];
        assert_eq!(critical_chain(&nodes), [3, 2, 0]);
    }

    #[test]
    fn a_layer_barrier_is_a_gate_without_a_dependency_edge() {
        // pg-init → pg → migrate → api → worker → web, where only the layers link
        // pg to migrate and api to worker; redis is fast and off the chain.
        let nodes = [
            node(&[], Some(0), 0, Some(400)),
            node(&[0], Some(0), 400, Some(900)),
            node(&[], Some(0), 0, Some(20)),
            node(&[], Some(1), 900, Some(1200)),
            node(&[], Some(2), 1200, Some(1500)),
            node(&[], Some(3), 1500, Some(1510)),
            node(&[4], Some(4), 1510, Some(1520)),
        ];
        assert_eq!(critical_chain(&nodes), [6, 5, 4, 3, 1, 0]);
    }

    #[test]
    fn only_gates_ready_before_the_start_count_and_edges_win_ties() {
        let nodes = [
            node(&[], Some(0), 0, Some(50)),
            node(&[], Some(0), 0, Some(50)),
            // Ready after the last unit started: it did not hold it back.
            node(&[], Some(0), 0, Some(500)),
            node(&[1, 2], Some(1), 60, Some(900)),
        ];
        assert_eq!(
            critical_chain(&nodes),
            [3, 1],
            "the dependency beats the barrier tie"
        );
    }

    #[test]
    fn nothing_ready_is_an_empty_chain_and_cycles_end() {
        assert!(critical_chain(&[node(&[], None, 0, None)]).is_empty());
        let cyclic = [
            node(&[1], None, 0, Some(10)),
            node(&[0], None, 10, Some(10)),
        ];
        assert_eq!(critical_chain(&cyclic), [0]);
        assert_eq!(
            critical_chain(&[node(&[7], None, 0, Some(1))]),
            [0],
            "out-of-range deps"
        );
    }
}

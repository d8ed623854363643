//! `gantry analyze --format json`: the machine-readable report (boot, critical chain, services, comparison).

use super::{
    Boot, Deps, REGRESSION_MS, REGRESSION_PCT, blame_order, boot_order, compare, critical_chain,
    to_ready,
};
use crate::store::ServiceRecord;

fn boot_json(boot: &Boot) -> serde_json::Value {
    serde_json::json!({
        "id": boot.id,
        "started_at": boot.started_at,
        "outcome": boot.outcome,
        "duration_ms": boot.duration_ms,
        "reason": boot.reason,
    })
}

fn service_json(s: &ServiceRecord) -> serde_json::Value {
    serde_json::json!({
        "name": s.name,
        "state": s.state,
        "priority": s.priority,
        "started_ms": s.started_ms,
        "ready_ms": s.ready_ms,
        "to_ready_ms": to_ready(s),
        "attempts": s.attempts,
        "error": s.error,
    })
}

/// The machine-readable report: `boot`, `critical_chain` (in boot order: first-ready first),
/// `services` (blame order with `blame`, boot order otherwise) and, with a previous boot,
/// `compare`.
pub fn to_json(
    boot: &Boot,
    deps: &Deps,
    blame: bool,
    previous: Option<&Boot>,
) -> serde_json::Value {
    let chain = critical_chain(&boot.services, deps);
    let services = if blame {
        blame_order(&boot.services)
    } else {
        boot_order(&boot.services)
    };
    let mut value = serde_json::json!({
        "boot": boot_json(boot),
        "critical_chain": chain.iter().rev().map(|s| serde_json::json!({
            "name": s.name,
            "ready_ms": s.ready_ms,
            "to_ready_ms": to_ready(s),
        })).collect::<Vec<_>>(),
        "services": services.into_iter().map(service_json).collect::<Vec<_>>(),
    });
    if let Some(prev) = previous {
        let deltas = compare(&prev.services, &boot.services);
        value["compare"] = serde_json::json!({
            "previous": boot_json(prev),
            "threshold": { "pct": REGRESSION_PCT, "ms": REGRESSION_MS },
            "services": deltas.iter().map(|d| serde_json::json!({
                "name": d.name,
                "previous_ms": d.previous_ms,
                "current_ms": d.current_ms,
                "delta_ms": d.delta_ms(),
                "delta_pct": d.delta_pct().map(|p| (p * 10.0).round() / 10.0),
                "status": if !d.in_current { "gone" } else if !d.in_previous { "new" } else { d.state.as_str() },
                "regression": d.regression,
            })).collect::<Vec<_>>(),
            "regressions": deltas.iter().filter(|d| d.regression).map(|d| d.name.as_str()).collect::<Vec<_>>(),
        });
    }
    value
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::*;

    #[test]
    fn json_report() {
        let (services, d) = sample();
        let prev = boot(11, 1000, services.clone());
        let v = to_json(&boot(12, 1240, services), &d, true, Some(&prev));
        assert_eq!(v["boot"]["id"], 12);
        assert_eq!(v["boot"]["outcome"], "go");
        let chain: Vec<&str> = v["critical_chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(chain, ["db", "api", "web"]);
        assert_eq!(v["services"][0]["name"], "api");
        assert_eq!(v["services"][0]["to_ready_ms"], 600);
        assert_eq!(v["services"][0]["attempts"], 2);
        assert_eq!(v["compare"]["previous"]["id"], 11);
        assert_eq!(v["compare"]["regressions"].as_array().unwrap().len(), 0);
        assert_eq!(v["compare"]["services"][0]["delta_ms"], 0);
    }
}

//! SLOs as multi-window burn-rate rules: for `availability = 99.9` over 30 days, page when the
//! error budget burns at 14.4× over 1 h and 5 m (P0) or 6× over 6 h and 30 m (P1), and open a
//! ticket at 1× over 3 d and 6 h (P2) — the long window says it matters, the short one that it
//! is still happening.

use crate::rules::{Condition, Labels, Op, Reduce, Rule, Severity};
use serde::{Deserialize, Serialize};

/// An availability objective over a counter of failed and a counter of all requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub name: String,
    /// e.g. 99.9
    pub availability: f64,
    /// The failed requests' counter and the requests' counter, with the labels that select the
    /// SLO's traffic (e.g. `route=/api`).
    pub errors: String,
    pub requests: String,
    pub matching: Labels,
    /// Fewer requests than this in a window is not judged.
    pub min_requests: f64,
}

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

/// The three burn-rate rules of an SLO.
pub fn burn_rate_rules(slo: &Slo) -> Vec<Rule> {
    let budget = (1.0 - slo.availability / 100.0).max(0.0);
    let windows = [
        ("fast_burn", Severity::P0, 14.4, HOUR, 5 * MINUTE),
        ("slow_burn", Severity::P1, 6.0, 6 * HOUR, 30 * MINUTE),
        ("budget_burn", Severity::P2, 1.0, 72 * HOUR, 6 * HOUR),
    ];
    windows
        .into_iter()
        .map(|(kind, severity, factor, long, short)| {
            let condition = |window_ms: u64| Condition {
                signal: slo.errors.clone(),
                matching: slo.matching.clone(),
                except: Vec::new(),
                reduce: Reduce::Ratio {
                    denominator: slo.requests.clone(),
                    window_ms,
                    min_volume: slo.min_requests,
                },
                op: Op::Above,
                threshold: factor * budget,
            };
            let mut labels = Labels::new();
            labels.insert("slo".into(), slo.name.clone());
            Rule {
                name: format!("slo_{}_{kind}", slo.name),
                severity,
                conditions: vec![condition(long), condition(short)],
                for_ms: 0,
                labels,
                runbook: None,
                auto_runbook: false,
                summary: format!(
                    "SLO {} ({} %): the error budget burns at more than {factor}× over {} h and {} min",
                    slo.name,
                    slo.availability,
                    long / HOUR,
                    short / MINUTE
                ),
            }
        })
        .collect()
}

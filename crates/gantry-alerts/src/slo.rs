//! SLOs as multi-window burn-rate rules: for `availability = 99.9` over 30 days, page when the
//! error budget burns at 14.4× over 1 h and 5 m (P0) or 6× over 6 h and 30 m (P1), and open a
//! ticket at 1× over 3 d and 6 h (P2) — the long window says it matters, the short one that it
//! is still happening. The budget is the SLO's window's: each rule fires when its long window spent
//! 2 %, 5 % or 10 % of it, so the factors follow the window (a 7-day SLO pages at 3.36× over 1 h)
//! while the rules' own windows stay; never below 1× (a slower burn does not spend the budget
//! within the window).

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
    /// The window the objective (and so its error budget) is over, in ms (30 days by default).
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
}

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
/// The SLO window when none is given: 30 days.
pub const SLO_WINDOW_MS: u64 = 30 * 24 * HOUR;

fn default_window_ms() -> u64 {
    SLO_WINDOW_MS
}

/// The burn rate at which a rule's long window (`long_ms`) spends `percent` % of the error budget
/// of an SLO over `window_ms`: `percent / 100 × window / long`, at least 1.
pub fn burn_factor(percent: u64, window_ms: u64, long_ms: u64) -> f64 {
    // Whole numbers divided once: 30 days gives exactly 14.4, 6 and 1.
    let factor = (percent as f64 * window_ms as f64) / (100.0 * long_ms.max(1) as f64);
    factor.max(1.0)
}

/// The three burn-rate rules of an SLO.
pub fn burn_rate_rules(slo: &Slo) -> Vec<Rule> {
    let budget = (1.0 - slo.availability / 100.0).max(0.0);
    // The share of the window's budget each rule's long window may spend before it fires.
    let windows = [
        ("fast_burn", Severity::P0, 2, HOUR, 5 * MINUTE),
        ("slow_burn", Severity::P1, 5, 6 * HOUR, 30 * MINUTE),
        ("budget_burn", Severity::P2, 10, 72 * HOUR, 6 * HOUR),
    ];
    windows
        .into_iter()
        .map(|(kind, severity, percent, long, short)| {
            let factor = burn_factor(percent, slo.window_ms, long);
            // Shown with at most two decimals (3.36×, 14.4×, 6×).
            let shown = (factor * 100.0).round() / 100.0;
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
                    "SLO {} ({} % over {}): the error budget burns at more than {shown}× over {} h and {} min",
                    slo.name,
                    slo.availability,
                    window_text(slo.window_ms),
                    long / HOUR,
                    short / MINUTE
                ),
            }
        })
        .collect()
}

/// `30 d`, `36 h`: the SLO's window in the summary.
fn window_text(ms: u64) -> String {
    let day = 24 * HOUR;
    if ms.is_multiple_of(day) {
        format!("{} d", ms / day)
    } else if ms.is_multiple_of(HOUR) {
        format!("{} h", ms / HOUR)
    } else {
        format!("{} min", ms / MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_factors_follow_the_window_and_never_drop_below_one() {
        let day = 24 * HOUR;
        // 30 days: the documented 14.4×, 6× and 1×.
        assert_eq!(burn_factor(2, 30 * day, HOUR), 14.4);
        assert_eq!(burn_factor(5, 30 * day, 6 * HOUR), 6.0);
        assert_eq!(burn_factor(10, 30 * day, 72 * HOUR), 1.0);
        // 7 days: 2 % of a week's budget in an hour is 3.36× its rate.
        assert!((burn_factor(2, 7 * day, HOUR) - 3.36).abs() < 1e-9);
        assert!((burn_factor(5, 7 * day, 6 * HOUR) - 1.4).abs() < 1e-9);
        assert_eq!(burn_factor(10, 7 * day, 72 * HOUR), 1.0);
        // 90 days: three times the 30 days' factors.
        assert!((burn_factor(2, 90 * day, HOUR) - 43.2).abs() < 1e-9);
        assert_eq!(burn_factor(10, 90 * day, 72 * HOUR), 3.0);
        // 1 hour: a budget that lasts an hour pages only when it burns faster than that.
        assert_eq!(burn_factor(2, HOUR, HOUR), 1.0);
    }

    #[test]
    fn the_rules_thresholds_are_the_windows_budget_share() {
        let slo = |window_ms| Slo {
            name: "api".into(),
            availability: 99.9,
            errors: "e".into(),
            requests: "r".into(),
            matching: Labels::new(),
            min_requests: 100.0,
            window_ms,
        };
        let thresholds = |window_ms| -> Vec<f64> {
            burn_rate_rules(&slo(window_ms))
                .iter()
                .map(|r| r.conditions[0].threshold)
                .collect()
        };
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(
            &thresholds(SLO_WINDOW_MS),
            &[14.4 * 0.001, 6.0 * 0.001, 0.001]
        ));
        assert!(close(
            &thresholds(7 * 24 * HOUR),
            &[3.36 * 0.001, 1.4 * 0.001, 0.001]
        ));
        let rules = burn_rate_rules(&slo(7 * 24 * HOUR));
        assert_eq!(
            rules[0].summary,
            "SLO api (99.9 % over 7 d): the error budget burns at more than 3.36× over 1 h and 5 min"
        );
        // The rules' own windows do not change with the SLO's.
        let windows: Vec<u64> = rules
            .iter()
            .flat_map(|r| &r.conditions)
            .map(|c| match c.reduce {
                Reduce::Ratio { window_ms, .. } => window_ms,
                _ => 0,
            })
            .collect();
        assert_eq!(
            windows,
            [HOUR, 5 * MINUTE, 6 * HOUR, 30 * MINUTE, 72 * HOUR, 6 * HOUR]
        );
    }
}

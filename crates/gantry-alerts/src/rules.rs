//! Rules: a severity, conditions over signals (a gauge's value, a counter's increase, a ratio of
//! two counters over a window with a minimum volume), a `for` duration, labels and a runbook; and
//! the built-in default rule set.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Labels of a series or an alert.
pub type Labels = BTreeMap<String, String>;

/// P0 (respond within 5 minutes), P1 (15 minutes), P2 (1 hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    P0,
    P1,
    P2,
}

impl Severity {
    /// The response the severity asks for, in minutes.
    pub fn respond_within_minutes(self) -> u32 {
        match self {
            Severity::P0 => 5,
            Severity::P1 => 15,
            Severity::P2 => 60,
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_uppercase().as_str() {
            "P0" => Some(Severity::P0),
            "P1" => Some(Severity::P1),
            "P2" => Some(Severity::P2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "P0",
            Severity::P1 => "P1",
            Severity::P2 => "P2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Above,
    Below,
}

/// How a condition reads its signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reduce {
    /// The latest value (a gauge).
    Value,
    /// How much a counter grew over the window.
    Increase { window_ms: u64 },
    /// The signal's increase divided by `denominator`'s increase over the window, for the same
    /// labels; not judged while the denominator grew by less than `min_volume` (no alert on
    /// three requests).
    Ratio {
        denominator: String,
        window_ms: u64,
        min_volume: f64,
    },
}

/// One condition: `reduce(signal{matching}) op threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub signal: String,
    /// Only series whose labels include these.
    pub matching: Labels,
    /// And none of these (label, value) pairs: a rule turned off for some services.
    #[serde(default)]
    pub except: Vec<(String, String)>,
    pub reduce: Reduce,
    pub op: Op,
    pub threshold: f64,
}

impl Condition {
    pub fn gauge(signal: &str, op: Op, threshold: f64) -> Condition {
        Condition {
            signal: signal.to_string(),
            matching: Labels::new(),
            except: Vec::new(),
            reduce: Reduce::Value,
            op,
            threshold,
        }
    }

    pub fn matching(mut self, key: &str, value: &str) -> Condition {
        self.matching.insert(key.to_string(), value.to_string());
        self
    }

    /// Whether a series with `labels` is excluded by `except`.
    pub(crate) fn excludes(&self, labels: &Labels) -> bool {
        self.except
            .iter()
            .any(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    }

    pub(crate) fn holds(&self, value: f64) -> bool {
        match self.op {
            Op::Above => value > self.threshold,
            Op::Below => value < self.threshold,
        }
    }
}

/// An alert rule. Every condition must hold, for each label set of the first condition's
/// signal, continuously for `for_ms` before the alert fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub severity: Severity,
    pub conditions: Vec<Condition>,
    pub for_ms: u64,
    /// Added to the alert's labels.
    pub labels: Labels,
    /// A runbook to show (and, when allowed, run once per incident).
    pub runbook: Option<String>,
    /// Run `runbook` by itself when the alert fires (at most once per incident).
    #[serde(default)]
    pub auto_runbook: bool,
    /// One line for people, e.g. "critical service {service} is down".
    pub summary: String,
}

impl Rule {
    pub fn new(name: &str, severity: Severity, condition: Condition, summary: &str) -> Rule {
        Rule {
            name: name.to_string(),
            severity,
            conditions: vec![condition],
            for_ms: 0,
            labels: Labels::new(),
            runbook: None,
            auto_runbook: false,
            summary: summary.to_string(),
        }
    }

    pub fn for_ms(mut self, ms: u64) -> Rule {
        self.for_ms = ms;
        self
    }

    /// The summary with `{label}` replaced by the alert's label values.
    pub fn summarize(&self, labels: &Labels) -> String {
        let mut out = self.summary.clone();
        for (k, v) in labels {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }
}

/// The built-in rules, named so a user can turn one off or override it. The seeds' fixed
/// thresholds are these defaults, not hard-coded checks. Signals the driver feeds:
/// `service_down{service,priority}` (1 while a started service is down), `boot_no_go` (1 after a
/// NO-GO), `service_restarts_total{service}`, `breaker_open{service}` (1 until it closed again, half-open
/// included), `service_unready{service}`,
/// `disk_free_ratio{path}`, `certificate_days_left{target}`.
pub fn default_rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "critical_service_down",
            Severity::P0,
            Condition::gauge("service_down", Op::Above, 0.5).matching("priority", "critical"),
            "critical service {service} is down",
        ),
        Rule::new(
            "boot_no_go",
            Severity::P0,
            Condition::gauge("boot_no_go", Op::Above, 0.5),
            "the boot was decided NO-GO",
        ),
        Rule::new(
            "crash_loop",
            Severity::P1,
            Condition {
                signal: "service_restarts_total".into(),
                matching: Labels::new(),
                except: Vec::new(),
                reduce: Reduce::Increase { window_ms: 300_000 },
                op: Op::Above,
                threshold: 2.5,
            },
            "{service} restarted 3 times or more in 5 minutes",
        ),
        Rule::new(
            "breaker_open",
            Severity::P1,
            Condition::gauge("breaker_open", Op::Above, 0.5),
            "the start breaker of {service} is open",
        ),
        Rule::new(
            "readiness_lost",
            Severity::P1,
            Condition::gauge("service_unready", Op::Above, 0.5),
            "{service} lost its readiness",
        )
        .for_ms(60_000),
        Rule::new(
            "disk_low",
            Severity::P2,
            Condition::gauge("disk_free_ratio", Op::Below, 0.10),
            "less than 10 % of the disk under {path} is free",
        )
        .for_ms(300_000),
        Rule::new(
            "certificate_expiring",
            Severity::P2,
            Condition::gauge("certificate_days_left", Op::Below, 14.0),
            "the certificate of {target} expires in less than 14 days",
        ),
    ]
}

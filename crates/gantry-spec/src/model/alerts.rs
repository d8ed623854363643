//! The typed `[alerts]` table: where notifications go and which built-in rules are off.

use super::{Dur, Sp};
use crate::source::Span;

/// The names of the built-in alert rules (`[alerts] disabled` may name them; gantry-alerts
/// checks its default rules carry exactly these names).
pub const ALERT_RULES: &[&str] = &[
    "critical_service_down",
    "boot_no_go",
    "crash_loop",
    "breaker_open",
    "readiness_lost",
    "disk_low",
    "certificate_expiring",
];

/// `[slo.NAME]`: an availability objective over an ingress route; gantry pages on its
/// multi-window burn rates.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub name: Sp<String>,
    /// The route's `path` as written in `[[ingress.routes]]` (its name in the ingress).
    pub route: Sp<String>,
    /// e.g. 99.9 (percent).
    pub availability: f64,
    /// Fewer requests than this in a window is not judged.
    pub min_requests: u64,
    /// The window the objective and its error budget are over (default 30 days, 1 h to 90 days).
    pub window: Dur,
}

/// `[slo.NAME] window` when unset.
pub const SLO_WINDOW: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
/// The shortest and the longest `[slo.NAME] window`.
pub const SLO_WINDOW_MIN: std::time::Duration = std::time::Duration::from_secs(3_600);
pub const SLO_WINDOW_MAX: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// The signals a rule may watch (what gantry feeds its evaluator).
pub const ALERT_SIGNALS: &[&str] = &[
    "service_down",
    "service_unready",
    "service_restarts_total",
    "service_starting_seconds",
    "service_readiness_lost_total",
    "service_probe_failures_total",
    "breaker_open",
    "boot_no_go",
    "service_rss_bytes",
    "service_cpu_seconds_total",
    "disk_free_ratio",
    "certificate_days_left",
    "ingress_requests_total",
    "ingress_failures_total",
    "ingress_p95_ms",
    "ingress_p99_ms",
    "ingress_traffic_ratio",
    "ingress_instance_requests_total",
    "ingress_instance_failures_total",
    "ingress_instance_p99_ms",
    "missions_open",
];

/// `[alerts.rules.NAME]`: a rule of the user's, or (named like a built-in rule) an override of
/// it, where every key left out keeps the built-in's value.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRuleDef {
    pub name: Sp<String>,
    /// `P0`, `P1`, `P2`.
    pub severity: Option<String>,
    pub signal: Option<String>,
    pub above: Option<f64>,
    pub below: Option<f64>,
    /// For a counter (`*_total`): its increase over this window.
    pub window: Option<Dur>,
    /// The signal's increase divided by this counter's increase over `window`.
    pub ratio_of: Option<String>,
    /// With `ratio_of`: a window whose denominator grew less is not judged.
    pub min_volume: Option<u64>,
    pub for_: Option<Dur>,
    /// Only this service's / route's series.
    pub service: Option<String>,
    pub route: Option<String>,
    /// Never these services.
    pub except: Vec<Sp<String>>,
    pub summary: Option<String>,
    /// A `[runbooks.NAME]` to show (and run once per incident with `auto_runbook`).
    pub runbook: Option<Sp<String>>,
    pub auto_runbook: Option<bool>,
    /// Added to the alert's labels (routing in the receiver: team, channel).
    pub labels: Vec<(String, String)>,
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    pub span: Span,
    /// POST the Alertmanager-compatible JSON here (http://).
    pub webhook: Option<Sp<String>>,
    /// Run this command with the notification as JSON on stdin.
    pub exec: Option<Sp<Vec<String>>>,
    /// A line on gantry's output per notification.
    pub log: bool,
    /// A firing alert is notified again this often.
    pub repeat_interval: Dur,
    /// Built-in rules turned off.
    pub disabled: Vec<Sp<String>>,
    /// `[alerts.rules.NAME]`.
    pub rules: Vec<AlertRuleDef>,
    /// PEM file of the CAs an https webhook's certificate must chain to, instead of the
    /// system roots (relative to the file).
    pub webhook_ca: Option<String>,
}

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
}

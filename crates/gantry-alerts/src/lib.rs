//! Alerts over gantry's own signals, in the pure core: the driver feeds samples (service state,
//! restarts, breakers, ingress counters, disk, certificates) with the time, the [`Evaluator`] turns
//! rules into firing and resolved alerts, and the [`Notifier`] turns those into deliveries with
//! fingerprints, repeat intervals, resolves, inhibition and retries. No I/O, no clock: every rule is
//! tested on virtual time.

mod eval;
mod notify;
mod prometheus;
mod rules;
mod series;
mod slo;

pub use eval::{Alert, AlertState, Evaluator, Transition};
pub use notify::{Delivery, Notification, Notifier, NotifyConfig};
pub use prometheus::{PromContext, prometheus_rules};
pub use rules::{Condition, Labels, Op, Reduce, Rule, Severity, default_rules};
pub use series::{Sample, Series};
pub use slo::{SLO_WINDOW_MS, Slo, burn_factor, burn_rate_rules};

//! What a boot reports: the startup report (the seeds' startup-manager metrics), per-component results, the shutdown report and the live status snapshot.

use std::fmt;
use std::time::Duration;

use gantry_engine::{Priority, State};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

/// How one component's startup ended, in the seeds' vocabulary.
///
/// ```
/// use gantry::ComponentStatus;
///
/// assert_eq!(ComponentStatus::Degraded.to_string(), "DEGRADED");
/// assert!(ComponentStatus::Success.is_success());
/// assert!(!ComponentStatus::Skipped.is_success());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentStatus {
    /// Initialized (and ready).
    Success,
    /// Failed, but it is not critical and degraded mode is allowed: the application runs
    /// without it.
    Degraded,
    /// Failed, and the failure counts against the boot (critical, or degraded mode is off).
    Failed,
    /// Never initialized: a required dependency failed, or the boot was aborted or shut
    /// down first.
    Skipped,
}

impl ComponentStatus {
    /// `Success` only.
    pub const fn is_success(self) -> bool {
        matches!(self, ComponentStatus::Success)
    }

    /// `SUCCESS`, `DEGRADED`, `FAILED` or `SKIPPED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Success => "SUCCESS",
            ComponentStatus::Degraded => "DEGRADED",
            ComponentStatus::Failed => "FAILED",
            ComponentStatus::Skipped => "SKIPPED",
        }
    }
}

impl fmt::Display for ComponentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One component in a [`StartupReport`] (or the answer of
/// [`Boot::reinitialize`](crate::Boot::reinitialize)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use gantry::{Boot, Component, ComponentStatus};
///
/// let boot = Boot::builder()
///     .component(Component::new("config").init(|| async { Ok(()) }))
///     .build()
///     .unwrap();
/// let report = boot.start().await;
/// let config = report.component("config").unwrap();
/// assert_eq!(config.status, ComponentStatus::Success);
/// assert_eq!(config.retries, 0);
/// assert_eq!(config.error, None);
/// # boot.shutdown().await;
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentReport {
    pub name: String,
    pub status: ComponentStatus,
    /// From the start of its first attempt to ready (or to the final failure), retries and
    /// backoff included; zero when it never started.
    pub duration: Duration,
    /// Attempts after the first one.
    pub retries: u32,
    pub priority: Priority,
    /// Why it failed (the last attempt's error) or why it was skipped.
    pub error: Option<String>,
    /// Its cleanup ran after a NO-GO (always false in GO and DEGRADED reports: nothing is
    /// cleaned up until shutdown).
    pub cleaned_up: bool,
}

impl ComponentReport {
    /// The seeds' metrics entry: `{"status", "duration" (seconds), "retries", "priority", "error"?}`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gantry::{ComponentReport, ComponentStatus, Priority};
    ///
    /// let redis = ComponentReport {
    ///     name: "redis".into(),
    ///     status: ComponentStatus::Degraded,
    ///     duration: Duration::from_millis(5670),
    ///     retries: 2,
    ///     priority: Priority::High,
    ///     error: Some("Connection timeout".into()),
    ///     cleaned_up: false,
    /// };
    /// assert_eq!(
    ///     redis.metrics(),
    ///     serde_json::json!({"status": "DEGRADED", "duration": 5.67, "retries": 2,
    ///                        "priority": "HIGH", "error": "Connection timeout"})
    /// );
    /// ```
    pub fn metrics(&self) -> Value {
        let mut entry = json!({
            "status": self.status.as_str(),
            "duration": self.duration.as_secs_f64(),
            "retries": self.retries,
            "priority": priority_upper(self.priority),
        });
        if let (Some(error), Some(obj)) = (&self.error, entry.as_object_mut()) {
            obj.insert("error".into(), Value::String(error.clone()));
        }
        entry
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "status": self.status.as_str(),
            "duration_ms": millis(self.duration),
            "retries": self.retries,
            "priority": priority_upper(self.priority),
            "error": self.error,
            "cleaned_up": self.cleaned_up,
        })
    }
}

impl Serialize for ComponentReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// The GO / NO-GO verdict of a boot.
///
/// ```
/// use gantry::BootOutcome;
///
/// assert!(BootOutcome::Go.is_up());
/// assert!(BootOutcome::Degraded { failed: vec!["search".into()] }.is_up());
/// let no_go = BootOutcome::NoGo { component: Some("db".into()), reason: "refused".into() };
/// assert!(!no_go.is_up());
/// assert_eq!(no_go.label(), "no-go");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootOutcome {
    /// Every component is up.
    Go,
    /// Only non-critical components failed (degraded mode allowed); they are named here.
    Degraded { failed: Vec<String> },
    /// The boot was aborted: `component` failed (critical, or degraded mode is off) — or
    /// `None` when it was shut down before it could be decided.
    NoGo {
        component: Option<String>,
        reason: String,
    },
}

impl BootOutcome {
    /// `Go` or `Degraded`: the application may serve.
    pub const fn is_up(&self) -> bool {
        !matches!(self, BootOutcome::NoGo { .. })
    }

    /// `go`, `degraded` or `no-go`, as the API and health endpoints write it.
    pub const fn label(&self) -> &'static str {
        match self {
            BootOutcome::Go => "go",
            BootOutcome::Degraded { .. } => "degraded",
            BootOutcome::NoGo { .. } => "no-go",
        }
    }
}

impl fmt::Display for BootOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootOutcome::Go => f.write_str("GO"),
            BootOutcome::Degraded { failed } => {
                write!(f, "DEGRADED ({} failed)", failed.join(", "))
            }
            BootOutcome::NoGo {
                component: Some(c),
                reason,
            } => write!(f, "NO-GO: {c} failed: {reason}"),
            BootOutcome::NoGo {
                component: None,
                reason,
            } => write!(f, "NO-GO: {reason}"),
        }
    }
}

/// The result of [`Boot::start`](crate::Boot::start): the verdict, the total time and one
/// entry per component, in registration order — the shape the seeds' startup manager returns.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use gantry::{Boot, BootOutcome, Component, Priority};
///
/// let boot = Boot::builder()
///     .component(Component::new("db").priority(Priority::Critical))
///     .component(Component::new("search").retries(0).init(|| async { Err("index missing".into()) }))
///     .build()
///     .unwrap();
/// let report = boot.start().await;
/// assert!(report.success);
/// assert_eq!(report.outcome, BootOutcome::Degraded { failed: vec!["search".into()] });
/// assert_eq!(report.metrics()["search"]["status"], "DEGRADED");
/// assert_eq!(report.metrics()["search"]["error"], "index missing");
/// # boot.shutdown().await;
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StartupReport {
    /// GO or DEGRADED: the application may serve.
    pub success: bool,
    pub outcome: BootOutcome,
    /// From `start()` until the boot was decided (for a NO-GO: until the cleanups finished).
    pub duration: Duration,
    pub components: Vec<ComponentReport>,
}

impl StartupReport {
    /// The entry of `name`.
    pub fn component(&self, name: &str) -> Option<&ComponentReport> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The seeds' `get_startup_metrics()` map: component name → metrics entry.
    pub fn metrics(&self) -> Value {
        let map: Map<String, Value> = self
            .components
            .iter()
            .map(|c| (c.name.clone(), c.metrics()))
            .collect();
        Value::Object(map)
    }

    fn to_json(&self) -> Value {
        let (component, reason) = match &self.outcome {
            BootOutcome::NoGo { component, reason } => (component.clone(), Some(reason.clone())),
            BootOutcome::Go | BootOutcome::Degraded { .. } => (None, None),
        };
        json!({
            "success": self.success,
            "outcome": self.outcome.label(),
            "failed_component": component,
            "reason": reason,
            "duration_ms": millis(self.duration),
            "components": self.components,
        })
    }
}

impl Serialize for StartupReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl fmt::Display for StartupReport {
    /// One line for the verdict, then one per component.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} in {}", self.outcome, human(self.duration))?;
        for c in &self.components {
            let priority = priority_upper(c.priority);
            write!(f, "  {:<8} {} ({priority}", c.status.as_str(), c.name)?;
            // A skipped component has no time or attempts to show.
            if c.status != ComponentStatus::Skipped {
                write!(f, ", {}, {} retries", human(c.duration), c.retries)?;
            }
            write!(f, ")")?;
            if let Some(e) = &c.error {
                write!(f, ": {e}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// One cleanup that ran during a shutdown, in the order they finished.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use gantry::{Boot, Component};
///
/// let boot = Boot::builder()
///     .component(Component::new("cache").cleanup(|| async {}))
///     .build()
///     .unwrap();
/// boot.start().await;
/// let report = boot.shutdown().await;
/// let cleanup = &report.cleanups[0];
/// assert_eq!((cleanup.name.as_str(), cleanup.ok), ("cache", true));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    pub name: String,
    pub ok: bool,
    pub error: Option<String>,
    pub duration: Duration,
}

/// The result of [`Boot::shutdown`](crate::Boot::shutdown): how long it took and every cleanup,
/// dependents before their dependencies.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use gantry::{Boot, Component};
///
/// let boot = Boot::builder()
///     .component(Component::new("db").cleanup(|| async {}))
///     .component(Component::new("api").depends_on(["db"]).cleanup(|| async {}))
///     .build()
///     .unwrap();
/// boot.start().await;
/// let report = boot.shutdown().await;
/// let order: Vec<&str> = report.cleanups.iter().map(|c| c.name.as_str()).collect();
/// assert_eq!(order, ["api", "db"]);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    pub duration: Duration,
    pub cleanups: Vec<CleanupReport>,
}

/// One component in a [`BootStatus`].
///
/// ```
/// use gantry::{Boot, Component, State};
///
/// let boot = Boot::builder().component(Component::new("db")).build().unwrap();
/// let db = boot.status().component("db").cloned().unwrap();
/// assert_eq!(db.state, State::Pending);
/// assert!(!db.ready());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentState {
    pub name: String,
    pub priority: Priority,
    /// The engine's state: pending, starting, ready, failed, skipped, stopping, stopped...
    pub state: State,
    /// Attempt number in the current start sequence (1 = first try).
    pub attempt: u32,
    /// Restarts so far (reinitializations included).
    pub restarts: u32,
    pub last_error: Option<String>,
}

impl ComponentState {
    /// Passed its gate (`init` done, readiness passed).
    pub fn ready(&self) -> bool {
        matches!(self.state, State::Ready | State::Running | State::Completed)
    }
}

/// A snapshot of a boot, from [`Boot::status`](crate::Boot::status): cheap, never blocks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use gantry::{Boot, Component};
///
/// let boot = Boot::builder().component(Component::new("db")).build().unwrap();
/// assert!(!boot.status().started);
/// boot.start().await;
/// let status = boot.status();
/// assert!(status.is_ready());
/// assert_eq!(status.outcome.as_ref().map(|o| o.label()), Some("go"));
/// # boot.shutdown().await;
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootStatus {
    pub started: bool,
    /// Set once the boot is decided.
    pub outcome: Option<BootOutcome>,
    pub shutting_down: bool,
    /// Shutdown complete: every cleanup ran.
    pub finished: bool,
    pub components: Vec<ComponentState>,
}

impl BootStatus {
    /// The entry of `name`.
    pub fn component(&self, name: &str) -> Option<&ComponentState> {
        self.components.iter().find(|c| c.name == name)
    }

    /// What `/health/ready` answers: decided GO or DEGRADED, not shutting down, and every
    /// `Critical` and `High` component ready (`Medium` and `Low` are optional).
    pub fn is_ready(&self) -> bool {
        self.outcome.as_ref().is_some_and(BootOutcome::is_up)
            && !self.shutting_down
            && !self.finished
            && self
                .components
                .iter()
                .all(|c| matches!(c.priority, Priority::Medium | Priority::Low) || c.ready())
    }
}

pub(crate) fn priority_upper(p: Priority) -> &'static str {
    match p {
        Priority::Critical => "CRITICAL",
        Priority::High => "HIGH",
        Priority::Medium => "MEDIUM",
        Priority::Low => "LOW",
    }
}

/// Rounded for people: `850µs`, `15.8ms`, `2.34s` (measured times are never round).
fn human(d: Duration) -> String {
    fn trim(s: String) -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
    if d < Duration::from_millis(1) {
        format!("{}µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        trim(format!("{:.1}", d.as_secs_f64() * 1000.0)) + "ms"
    } else {
        trim(format!("{:.2}", d.as_secs_f64())) + "s"
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_are_rounded() {
        assert_eq!(human(Duration::from_nanos(850_400)), "850µs");
        assert_eq!(human(Duration::from_micros(15_799)), "15.8ms");
        assert_eq!(human(Duration::from_millis(50)), "50ms");
        assert_eq!(human(Duration::from_millis(2340)), "2.34s");
        assert_eq!(human(Duration::from_secs(60)), "60s");
        assert_eq!(human(Duration::ZERO), "0µs");
    }
}

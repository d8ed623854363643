//! Embeddable boot API: register components (priority, dependencies, timeout, retries, init, readiness and cleanup functions) and let gantry's lifecycle engine bring them up inside your own tokio program.
//!
//! This is the seeds' `StartupManager` — register components, initialize the system, read
//! startup metrics, reinitialize one component, degrade gracefully — on the **same** engine
//! that `gantry up` runs for processes (`gantry-engine`). A component is one more kind of
//! unit: its "process" is its `init` future. Ordering, parallelism, retries with exponential
//! backoff and full jitter, the start breaker, timeouts, priorities (critical NO-GO,
//! degraded, skipped), restarts of dependents in order and the reverse-order shutdown are
//! the engine's, exactly as for services in `gantry.toml`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use gantry::{Boot, BootOutcome, Component, ComponentStatus, Priority};
//!
//! let boot = Boot::builder()
//!     .component(Component::new("config").priority(Priority::Critical).init(|| async {
//!         // Load and validate settings...
//!         Ok(())
//!     }))
//!     .component(
//!         Component::new("db")
//!             .priority(Priority::Critical)
//!             .depends_on(["config"])
//!             .timeout(Duration::from_secs(5))
//!             .retries(2)
//!             .init(|| async { Ok(()) })
//!             .readiness(|| async { true })
//!             .cleanup(|| async { /* close the pool */ }),
//!     )
//!     .component(
//!         Component::new("search")
//!             .priority(Priority::Low)
//!             .depends_on(["db"])
//!             .retries(0)
//!             .init(|| async { Err("search cluster unreachable".into()) }),
//!     )
//!     .allow_degraded(true)
//!     .build()
//!     .expect("valid components");
//!
//! let report = boot.start().await;
//! assert!(report.success);
//! assert_eq!(report.outcome, BootOutcome::Degraded { failed: vec!["search".into()] });
//! assert_eq!(report.component("db").unwrap().status, ComponentStatus::Success);
//! assert_eq!(report.component("search").unwrap().status, ComponentStatus::Degraded);
//!
//! // Serve `boot.health_router()` next to your own routes, then:
//! boot.shutdown().await;
//! # }
//! ```
//!
//! See [`Boot`] for the handle, [`Component`] for what a component can say,
//! [`StartupReport`] for the report, and `examples/embedded.rs` for an axum service that
//! boots Postgres, Redis and a worker this way.
#![forbid(unsafe_code)]

mod boot;
mod component;
mod driver;
mod error;
mod http;
mod report;

pub use boot::{Boot, BootBuilder};
pub use component::{BoxError, CheckOutput, Component};
pub use error::BootError;
pub use report::{
    BootOutcome, BootStatus, CleanupReport, ComponentReport, ComponentState, ComponentStatus,
    ShutdownReport, StartupReport,
};

/// How much a component matters: a `Critical` failure aborts the boot (NO-GO); `High`,
/// `Medium` and `Low` failures degrade it (when degraded mode is allowed); `Low` components
/// do not count for `/health/ready`.
///
/// ```
/// use gantry::Priority;
/// assert!(Priority::Critical < Priority::Low);
/// assert_eq!(Priority::High.to_string(), "high");
/// ```
pub use gantry_engine::Priority;

/// The retry curve of a component (the engine's type): `attempts` counts the first try.
///
/// ```
/// use std::time::Duration;
/// use gantry::{Component, RetryPolicy};
///
/// let policy = RetryPolicy {
///     attempts: 5,
///     backoff: Duration::from_millis(100),
///     max_backoff: Duration::from_secs(2),
///     jitter: false,
/// };
/// assert_eq!(policy.cap(3), Duration::from_millis(400));
/// let db = Component::new("db").retry_policy(policy);
/// # let _ = db;
/// ```
pub use gantry_engine::RetryPolicy;

/// The lifecycle state of a component, as the engine names it (`pending`, `starting`,
/// `ready`, `failed`, `skipped`, `stopping`, `stopped`, ...).
///
/// ```
/// use gantry::State;
/// assert!(State::Ready.is_settled());
/// assert_eq!(State::Starting.to_string(), "starting");
/// ```
pub use gantry_engine::State;

//! Timeouts: cut a call that takes too long, on tokio's clock (so tests run
//! under paused time).
//!
//! ```
//! use gantry_resilience::timeout::Elapsed;
//! use gantry_resilience::{CallError, Timeout};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let timeout = Timeout::new(Duration::from_millis(100));
//! let slow = timeout
//!     .call(|| async {
//!         tokio::time::sleep(Duration::from_secs(1)).await;
//!         Ok::<_, std::io::Error>(())
//!     })
//!     .await;
//! assert!(matches!(slow, Err(CallError::Rejected(Elapsed { .. }))));
//! assert_eq!(timeout.snapshot().timeouts, 1);
//! # }
//! ```

mod error;
mod future;
mod layer;
mod service;

pub use self::error::Elapsed;
pub use self::future::ResponseFuture;
pub use self::layer::TimeoutLayer;
pub use self::service::TimeoutService;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::CallError;

#[derive(Debug, Default)]
struct Metrics {
    calls: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
}

/// A time limit with its metrics; cheap to clone (clones share metrics).
///
/// ```
/// use gantry_resilience::Timeout;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let timeout = Timeout::new(Duration::from_secs(1));
/// assert_eq!(timeout.call(|| async { Ok::<_, ()>(5) }).await, Ok(5));
/// assert_eq!(timeout.duration(), Duration::from_secs(1));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Timeout {
    duration: Duration,
    metrics: Arc<Metrics>,
}

/// A timeout's counters: `calls = successes + failures + timeouts + (calls
/// still running or dropped)`.
///
/// ```
/// use gantry_resilience::Timeout;
/// use std::time::Duration;
/// assert_eq!(Timeout::new(Duration::from_secs(1)).snapshot().calls, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeoutSnapshot {
    /// Calls started.
    pub calls: u64,
    /// Calls that finished in time with `Ok`.
    pub successes: u64,
    /// Calls that finished in time with `Err`.
    pub failures: u64,
    /// Calls cut at the limit.
    pub timeouts: u64,
}

impl Timeout {
    /// A limit of `duration` per call.
    pub fn new(duration: Duration) -> Timeout {
        Timeout {
            duration,
            metrics: Arc::default(),
        }
    }

    /// The limit.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Runs the future `f` makes, cutting it at the limit.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, CallError<Elapsed, E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.metrics.calls.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.duration, f()).await {
            Ok(Ok(v)) => {
                self.count(Ok(()));
                Ok(v)
            }
            Ok(Err(e)) => {
                self.count(Err(false));
                Err(CallError::Inner(e))
            }
            Err(_) => {
                self.count(Err(true));
                Err(CallError::Rejected(Elapsed::after(self.duration)))
            }
        }
    }

    /// `Ok` for success, `Err(timed_out)` otherwise.
    fn count(&self, outcome: Result<(), bool>) {
        let m = &self.metrics;
        let counter = match outcome {
            Ok(()) => &m.successes,
            Err(false) => &m.failures,
            Err(true) => &m.timeouts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> TimeoutSnapshot {
        let m = &self.metrics;
        TimeoutSnapshot {
            calls: m.calls.load(Ordering::Relaxed),
            successes: m.successes.load(Ordering::Relaxed),
            failures: m.failures.load(Ordering::Relaxed),
            timeouts: m.timeouts.load(Ordering::Relaxed),
        }
    }
}

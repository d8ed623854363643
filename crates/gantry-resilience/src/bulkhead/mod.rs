//! Bulkheads: at most N calls in flight, a bounded queue of callers waiting
//! for a slot (optionally for a bounded time), and an immediate, typed
//! rejection for everyone else — so one slow dependency cannot take every
//! task or connection with it.
//!
//! Built on tokio's FIFO semaphore, so waiters are served in arrival order.
//!
//! ```
//! use gantry_resilience::bulkhead::Rejected;
//! use gantry_resilience::Bulkhead;
//!
//! let bulkhead = Bulkhead::builder().max_concurrent(1).build()?;
//! let held = bulkhead.try_acquire().expect("one slot free");
//! assert!(matches!(bulkhead.try_acquire(), Err(Rejected::Full { .. })));
//! drop(held);
//! assert!(bulkhead.try_acquire().is_ok());
//! # Ok::<(), gantry_resilience::ConfigError>(())
//! ```

mod error;
mod future;
mod layer;
mod service;

pub use self::error::Rejected;
pub use self::future::ResponseFuture;
pub use self::layer::BulkheadLayer;
pub use self::service::BulkheadService;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{CallError, ConfigError};

#[derive(Debug, Default)]
struct Metrics {
    permitted: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    rejected_full: AtomicU64,
    rejected_wait: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    semaphore: Arc<Semaphore>,
    max_concurrent: u32,
    max_waiting: u32,
    max_wait: Option<Duration>,
    waiting: AtomicU32,
    metrics: Metrics,
}

/// A concurrency limit with a bounded wait queue; cheap to clone (clones
/// share the limit).
///
/// ```
/// use gantry_resilience::bulkhead::Rejected;
/// use gantry_resilience::{Bulkhead, CallError};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), gantry_resilience::ConfigError> {
/// let bulkhead = Bulkhead::builder()
///     .max_concurrent(2)
///     .max_waiting(10)
///     .max_wait(Duration::from_millis(500))
///     .build()?;
/// let r = bulkhead.call(|| async { Ok::<_, ()>("in") }).await;
/// assert_eq!(r, Ok("in"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

/// Builds a [`Bulkhead`]. Defaults: 25 concurrent, no queue (reject at
/// once), no limit on the time a queued caller waits.
///
/// ```
/// use gantry_resilience::Bulkhead;
/// use std::time::Duration;
/// let b = Bulkhead::builder().max_concurrent(4).max_waiting(8).max_wait(Duration::from_secs(1)).build()?;
/// assert_eq!(b.snapshot().max_concurrent, 4);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    max_concurrent: u32,
    max_waiting: u32,
    max_wait: Option<Duration>,
}

impl Builder {
    /// Calls in flight at once; at least 1.
    pub fn max_concurrent(mut self, n: u32) -> Self {
        self.max_concurrent = n;
        self
    }

    /// Callers that may wait for a slot; beyond that, rejected at once.
    pub fn max_waiting(mut self, n: u32) -> Self {
        self.max_waiting = n;
        self
    }

    /// The longest a queued caller waits before it is rejected.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = Some(wait);
        self
    }

    /// Checks the settings and builds the bulkhead.
    pub fn build(self) -> Result<Bulkhead, ConfigError> {
        if self.max_concurrent == 0 || self.max_concurrent as usize > Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(
                "bulkhead",
                "max_concurrent",
                self.max_concurrent,
                "at least 1",
            ));
        }
        Ok(Bulkhead {
            inner: Arc::new(Inner {
                semaphore: Arc::new(Semaphore::new(self.max_concurrent as usize)),
                max_concurrent: self.max_concurrent,
                max_waiting: self.max_waiting,
                max_wait: self.max_wait,
                waiting: AtomicU32::new(0),
                metrics: Metrics::default(),
            }),
        })
    }
}

/// A bulkhead's counters and current load.
///
/// ```
/// use gantry_resilience::Bulkhead;
/// let b = Bulkhead::builder().max_concurrent(3).build()?;
/// let _p = b.try_acquire().unwrap();
/// let s = b.snapshot();
/// assert_eq!((s.permitted, s.in_flight), (1, 1));
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkheadSnapshot {
    /// Calls given a slot.
    pub permitted: u64,
    /// Calls run through [`Bulkhead::call`] or the tower service that returned `Ok`.
    pub successes: u64,
    /// … that returned `Err`.
    pub failures: u64,
    /// Calls rejected because every slot and queue place was taken.
    pub rejected_full: u64,
    /// Calls rejected after waiting `max_wait` in the queue.
    pub rejected_wait: u64,
    /// Slots taken now.
    pub in_flight: u32,
    /// Callers queued now.
    pub waiting: u32,
    /// The slot limit.
    pub max_concurrent: u32,
    /// The queue limit.
    pub max_waiting: u32,
}

/// A slot in the bulkhead, given back when dropped.
///
/// ```
/// use gantry_resilience::Bulkhead;
/// let b = Bulkhead::builder().max_concurrent(1).build()?;
/// let permit = b.try_acquire().unwrap();
/// assert_eq!(b.snapshot().in_flight, 1);
/// drop(permit);
/// assert_eq!(b.snapshot().in_flight, 0);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct BulkheadPermit {
    _permit: OwnedSemaphorePermit,
}

/// Leaves the queue when the waiting caller stops waiting, however it stops
/// (got a slot, timed out, or its future was dropped).
struct Queued<'a>(&'a AtomicU32);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Bulkhead {
    /// A builder with the defaults listed on [`Builder`].
    pub fn builder() -> Builder {
        Builder {
            max_concurrent: 25,
            max_waiting: 0,
            max_wait: None,
        }
    }

    /// A free slot now, or a rejection; never waits.
    pub fn try_acquire(&self) -> Result<BulkheadPermit, Rejected> {
        self.try_permit().ok_or_else(|| self.reject_full())
    }

    /// A slot, waiting in the queue if there is room in it.
    pub async fn acquire(&self) -> Result<BulkheadPermit, Rejected> {
        if let Some(p) = self.try_permit() {
            return Ok(p);
        }
        let inner = &self.inner;
        let joined = inner
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < inner.max_waiting).then_some(w + 1)
            });
        if joined.is_err() {
            return Err(self.reject_full());
        }
        let _queued = Queued(&inner.waiting);
        let acquire = Arc::clone(&inner.semaphore).acquire_owned();
        let permit = match inner.max_wait {
            Some(limit) => match tokio::time::timeout(limit, acquire).await {
                Ok(p) => p,
                Err(_) => {
                    inner.metrics.rejected_wait.fetch_add(1, Ordering::Relaxed);
                    return Err(Rejected::WaitTimedOut { waited: limit });
                }
            },
            None => acquire.await,
        };
        match permit {
            Ok(p) => {
                inner.metrics.permitted.fetch_add(1, Ordering::Relaxed);
                Ok(BulkheadPermit { _permit: p })
            }
            // The semaphore is never closed; treat the impossible as "full".
            Err(_) => Err(self.reject_full()),
        }
    }

    /// [`acquire`](Self::acquire) for a `'static` future.
    pub(crate) async fn acquire_owned(self) -> Result<BulkheadPermit, Rejected> {
        self.acquire().await
    }

    /// Runs the future `f` makes once it has a slot (waiting in the queue if
    /// there is room), holding the slot until it finishes.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, CallError<Rejected, E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _permit = self.acquire().await.map_err(CallError::Rejected)?;
        let result = f().await;
        self.count(result.is_ok());
        result.map_err(CallError::Inner)
    }

    pub(crate) fn try_permit(&self) -> Option<BulkheadPermit> {
        let permit = Arc::clone(&self.inner.semaphore).try_acquire_owned().ok()?;
        self.inner.metrics.permitted.fetch_add(1, Ordering::Relaxed);
        Some(BulkheadPermit { _permit: permit })
    }

    pub(crate) fn reject_full(&self) -> Rejected {
        self.inner
            .metrics
            .rejected_full
            .fetch_add(1, Ordering::Relaxed);
        Rejected::Full {
            max_concurrent: self.inner.max_concurrent,
        }
    }

    pub(crate) fn count(&self, ok: bool) {
        let m = &self.inner.metrics;
        if ok { &m.successes } else { &m.failures }.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn can_queue(&self) -> bool {
        self.inner.max_waiting > 0
    }

    /// A copy of the counters and the current load.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        let inner = &self.inner;
        let m = &inner.metrics;
        let free = u32::try_from(inner.semaphore.available_permits()).unwrap_or(u32::MAX);
        BulkheadSnapshot {
            permitted: m.permitted.load(Ordering::Relaxed),
            successes: m.successes.load(Ordering::Relaxed),
            failures: m.failures.load(Ordering::Relaxed),
            rejected_full: m.rejected_full.load(Ordering::Relaxed),
            rejected_wait: m.rejected_wait.load(Ordering::Relaxed),
            in_flight: inner.max_concurrent.saturating_sub(free),
            waiting: inner.waiting.load(Ordering::Relaxed),
            max_concurrent: inner.max_concurrent,
            max_waiting: inner.max_waiting,
        }
    }
}

//! Rate limiting with a token bucket, implemented as GCRA (the generic cell
//! rate algorithm): the whole bucket is one atomic "theoretical arrival
//! time", so taking a token is one CAS with no lock and no refill timer.
//!
//! A bucket of `burst` tokens refilling `rate` tokens per `per` is the same
//! as: each token "costs" `interval = per / rate` of time, and a request is
//! allowed if the time it would push the TAT to is at most `burst * interval`
//! ahead of now.
//!
//! ```
//! use gantry_resilience::rate_limit::RateLimited;
//! use gantry_resilience::{ManualClock, RateLimiter};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! let limiter = RateLimiter::builder().rate(10, Duration::from_secs(1)).burst(2).clock(clock.clone()).build()?;
//! assert!(limiter.try_acquire().is_ok());
//! assert!(limiter.try_acquire().is_ok());
//! let Err(RateLimited { retry_after }) = limiter.try_acquire() else { panic!("bucket empty") };
//! assert_eq!(retry_after, Duration::from_millis(100));
//! clock.advance(retry_after);
//! assert!(limiter.try_acquire().is_ok());
//! # Ok::<(), gantry_resilience::ConfigError>(())
//! ```

mod error;
mod future;
mod layer;
mod service;

pub use self::error::RateLimited;
pub use self::future::ResponseFuture;
pub use self::layer::RateLimitLayer;
pub use self::service::RateLimitService;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, Nanos, SystemClock, duration_to_nanos};
use crate::error::{CallError, ConfigError};

struct Inner {
    /// Theoretical arrival time: when the bucket will be full again, in clock nanos.
    tat: AtomicU64,
    /// Time one token is worth.
    interval: u64,
    /// `burst * interval`: how far ahead of now the TAT may run.
    tolerance: u64,
    burst: u32,
    clock: Arc<dyn Clock>,
    permitted: AtomicU64,
    rejected: AtomicU64,
}

/// A token bucket; cheap to clone (clones share the bucket).
///
/// ```
/// use gantry_resilience::{CallError, RateLimiter};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gantry_resilience::ConfigError> {
/// let limiter = RateLimiter::builder().rate(100, Duration::from_secs(1)).build()?;
/// assert_eq!(limiter.call(|| async { Ok::<_, ()>(1) }).await, Ok(1));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("interval", &Duration::from_nanos(self.inner.interval))
            .field("burst", &self.inner.burst)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RateLimiter`]. Defaults: 100 per second, a burst of the same,
/// [`SystemClock`].
///
/// ```
/// use gantry_resilience::RateLimiter;
/// use std::time::Duration;
/// let limiter = RateLimiter::builder().rate(5, Duration::from_secs(1)).burst(1).build()?;
/// assert_eq!(limiter.available(), 1);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
pub struct Builder {
    rate: u32,
    per: Duration,
    burst: Option<u32>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("rate", &self.rate)
            .field("per", &self.per)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

const NAME: &str = "rate limiter";

impl Builder {
    /// `tokens` per `per` (at most one token per nanosecond).
    pub fn rate(mut self, tokens: u32, per: Duration) -> Self {
        self.rate = tokens;
        self.per = per;
        self
    }

    /// The bucket size: how many tokens can go at once after a quiet spell
    /// (default: the `tokens` of [`rate`](Self::rate)).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// The clock (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// A clock already shared with other primitives.
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the settings and builds a full bucket.
    pub fn build(self) -> Result<RateLimiter, ConfigError> {
        if self.rate == 0 {
            return Err(ConfigError::new(
                NAME,
                "rate",
                self.rate,
                "at least 1 token per period",
            ));
        }
        let interval = duration_to_nanos(self.per) / u64::from(self.rate);
        if interval == 0 {
            return Err(ConfigError::new(
                NAME,
                "rate",
                self.per,
                "at most one token per nanosecond",
            ));
        }
        let burst = self.burst.unwrap_or(self.rate);
        if burst == 0 {
            return Err(ConfigError::new(
                NAME,
                "burst",
                burst,
                "at least 1, or no call could ever pass",
            ));
        }
        let now = self.clock.now().as_nanos();
        Ok(RateLimiter {
            inner: Arc::new(Inner {
                // A TAT at or before now is a full bucket.
                tat: AtomicU64::new(now),
                interval,
                tolerance: interval.saturating_mul(u64::from(burst)),
                burst,
                clock: self.clock,
                permitted: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        })
    }
}

/// A rate limiter's counters and current tokens.
///
/// ```
/// use gantry_resilience::RateLimiter;
/// let l = RateLimiter::builder().build()?;
/// let _ = l.try_acquire();
/// assert_eq!(l.snapshot().permitted, 1);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimiterSnapshot {
    /// Tokens handed out.
    pub permitted: u64,
    /// Requests refused.
    pub rejected: u64,
    /// Tokens in the bucket now.
    pub available: u32,
    /// The bucket size.
    pub burst: u32,
}

impl RateLimiter {
    /// A builder with the defaults listed on [`Builder`].
    pub fn builder() -> Builder {
        Builder {
            rate: 100,
            per: Duration::from_secs(1),
            burst: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Takes one token, or says how long until one is there.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), RateLimited> {
        self.try_acquire_n(1)
    }

    /// Takes `n` tokens at once, or none. Asking for more than the burst
    /// can never succeed and is rejected with the time a full bucket would need.
    pub fn try_acquire_n(&self, n: u32) -> Result<(), RateLimited> {
        let inner = &self.inner;
        let now = inner.clock.now().as_nanos();
        let cost = inner.interval.saturating_mul(u64::from(n));
        let mut tat = inner.tat.load(Ordering::Acquire);
        loop {
            let new_tat = tat.max(now).saturating_add(cost);
            let limit = now.saturating_add(inner.tolerance);
            if new_tat > limit {
                inner.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(RateLimited {
                    retry_after: Duration::from_nanos(new_tat - limit),
                });
            }
            match inner
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    inner.permitted.fetch_add(u64::from(n), Ordering::Relaxed);
                    return Ok(());
                }
                Err(actual) => tat = actual,
            }
        }
    }

    /// Tokens in the bucket now.
    pub fn available(&self) -> u32 {
        self.available_at(self.inner.clock.now())
    }

    fn available_at(&self, now: Nanos) -> u32 {
        let inner = &self.inner;
        let now = now.as_nanos();
        let used = inner.tat.load(Ordering::Acquire).max(now) - now;
        let free = inner.tolerance.saturating_sub(used) / inner.interval;
        u32::try_from(free).unwrap_or(u32::MAX).min(inner.burst)
    }

    /// Runs the future `f` makes if a token is there; never waits.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, CallError<RateLimited, E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.try_acquire().map_err(CallError::Rejected)?;
        f().await.map_err(CallError::Inner)
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> RateLimiterSnapshot {
        RateLimiterSnapshot {
            permitted: self.inner.permitted.load(Ordering::Relaxed),
            rejected: self.inner.rejected.load(Ordering::Relaxed),
            available: self.available(),
            burst: self.inner.burst,
        }
    }
}

//! A retry budget (finagle's `RetryBudget`, linkerd's `retry_budget`): retries
//! may add at most a fixed ratio of extra load, plus a small floor, over a
//! sliding window — so a fleet of clients cannot multiply an outage.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::window::Windowed;

/// Shared between all the calls (and [`Retry`](crate::Retry)s) that should
/// draw on one allowance; clones share it.
///
/// Over the last `ttl`, at most `min_retries_per_sec * ttl + retry_ratio *
/// calls` retries are allowed. With the defaults (10 s, 10 per second, 0.2) a
/// client can always retry a little, and under load retries add at most 20 %.
///
/// The check and the withdrawal are two atomic steps, so threads racing for
/// the last retry may overshoot the allowance by at most one retry each.
///
/// ```
/// use gantry_resilience::retry::RetryBudget;
/// use gantry_resilience::ManualClock;
/// use std::time::Duration;
///
/// let budget = RetryBudget::builder()
///     .ttl(Duration::from_secs(10))
///     .min_retries_per_sec(0)
///     .retry_ratio(0.5)
///     .clock(ManualClock::new())
///     .build()?;
/// for _ in 0..4 {
///     budget.deposit();
/// }
/// assert!(budget.try_withdraw());
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw(), "half of 4 calls is 2 retries");
/// assert_eq!(budget.snapshot().exhausted, 1);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<BudgetInner>,
}

struct BudgetInner {
    /// [deposits, withdrawals] per bucket.
    window: Windowed<2>,
    reserve: f64,
    ratio: f64,
    exhausted: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("reserve", &self.inner.reserve)
            .field("ratio", &self.inner.ratio)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RetryBudget`].
///
/// ```
/// use gantry_resilience::retry::RetryBudget;
/// let budget = RetryBudget::builder().retry_ratio(0.1).build()?;
/// # let _ = budget;
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
pub struct BudgetBuilder {
    ttl: Duration,
    min_retries_per_sec: u32,
    retry_ratio: f64,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for BudgetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetBuilder")
            .field("ttl", &self.ttl)
            .field("min_retries_per_sec", &self.min_retries_per_sec)
            .field("retry_ratio", &self.retry_ratio)
            .finish_non_exhaustive()
    }
}

const NAME: &str = "retry budget";

impl BudgetBuilder {
    /// How long a call or retry counts (default 10 s, kept in 10 buckets).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Retries always allowed per second of `ttl`, whatever the traffic (default 10).
    pub fn min_retries_per_sec(mut self, n: u32) -> Self {
        self.min_retries_per_sec = n;
        self
    }

    /// Retries allowed per call on top of the floor, in [0, 1000] (default 0.2).
    pub fn retry_ratio(mut self, ratio: f64) -> Self {
        self.retry_ratio = ratio;
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

    /// Checks the settings and builds the budget.
    pub fn build(self) -> Result<RetryBudget, ConfigError> {
        if !(0.0..=1000.0).contains(&self.retry_ratio) {
            return Err(ConfigError::new(
                NAME,
                "retry_ratio",
                self.retry_ratio,
                "between 0 and 1000, e.g. 0.2",
            ));
        }
        if self.ttl < Duration::from_millis(1) {
            return Err(ConfigError::new(
                NAME,
                "ttl",
                self.ttl,
                "at least 1 ms, typically 10 s",
            ));
        }
        Ok(RetryBudget {
            inner: Arc::new(BudgetInner {
                window: Windowed::new(self.ttl, 10),
                reserve: f64::from(self.min_retries_per_sec) * self.ttl.as_secs_f64(),
                ratio: self.retry_ratio,
                exhausted: AtomicU64::new(0),
                clock: self.clock,
            }),
        })
    }
}

/// The budget's counters over its current window.
///
/// ```
/// use gantry_resilience::retry::RetryBudget;
/// let b = RetryBudget::builder().build()?;
/// b.deposit();
/// assert_eq!(b.snapshot().calls, 1);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetSnapshot {
    /// Calls deposited in the window.
    pub calls: u64,
    /// Retries withdrawn in the window.
    pub retries: u64,
    /// Retries still allowed now.
    pub balance: u64,
    /// Retries refused since the budget was built.
    pub exhausted: u64,
}

impl RetryBudget {
    /// Defaults: 10 s ttl, 10 retries per second floor, ratio 0.2.
    pub fn builder() -> BudgetBuilder {
        BudgetBuilder {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 10,
            retry_ratio: 0.2,
            clock: Arc::new(SystemClock),
        }
    }

    /// Records a call (a first attempt).
    pub fn deposit(&self) {
        self.inner.window.add(self.inner.clock.now(), [1, 0]);
    }

    /// Takes one retry from the allowance, if there is one.
    pub fn try_withdraw(&self) -> bool {
        let now = self.inner.clock.now();
        let [calls, retries] = self.inner.window.sum(now);
        if (retries as f64) + 1.0 <= self.allowance(calls) {
            self.inner.window.add(now, [0, 1]);
            true
        } else {
            self.inner.exhausted.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    fn allowance(&self, calls: u64) -> f64 {
        self.inner.reserve + self.inner.ratio * calls as f64
    }

    /// The counters now.
    pub fn snapshot(&self) -> BudgetSnapshot {
        let [calls, retries] = self.inner.window.sum(self.inner.clock.now());
        BudgetSnapshot {
            calls,
            retries,
            balance: (self.allowance(calls) - retries as f64).max(0.0) as u64,
            exhausted: self.inner.exhausted.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn floor_allows_retries_without_traffic_and_expires() {
        let clock = ManualClock::new();
        let b = RetryBudget::builder()
            .ttl(Duration::from_secs(1))
            .min_retries_per_sec(2)
            .retry_ratio(0.0)
            .clock(clock.clone())
            .build()
            .unwrap();
        assert!(b.try_withdraw());
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
        // A full ttl later the withdrawals have left the window.
        clock.advance(Duration::from_secs(1));
        assert!(b.try_withdraw());
    }
}

//! Retries: a bounded number of attempts, exponential backoff with jitter,
//! respect for a server's "retry after", and a budget that caps the extra
//! load retries may add.
//!
//! The decision logic is a plain state machine, [`RetryState`]: feed it how
//! an attempt failed and it answers "retry after this delay" or "give up,
//! because …". [`Retry::call`] drives it with tokio's sleep (so tests run
//! under paused time); a host with its own scheduler can drive it directly.
//!
//! ```
//! use gantry_resilience::retry::{Backoff, Jitter, RetryAfter};
//! use gantry_resilience::Retry;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//!
//! #[derive(Debug)]
//! struct Flaky;
//! impl RetryAfter for Flaky {}
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), gantry_resilience::ConfigError> {
//! let retry = Retry::builder()
//!     .max_attempts(4)
//!     .backoff(Backoff::exponential(Duration::from_millis(50), Duration::from_secs(1)).jitter(Jitter::Full))
//!     .build()?;
//! let tries = AtomicU32::new(0);
//! let answer = retry
//!     .call(|| async {
//!         if tries.fetch_add(1, Ordering::Relaxed) < 2 { Err(Flaky) } else { Ok("third time lucky") }
//!     })
//!     .await;
//! assert_eq!(answer.unwrap(), "third time lucky");
//! assert_eq!(retry.snapshot().retries, 2);
//! # Ok(()) }
//! ```

mod backoff;
mod budget;
mod future;
mod layer;
mod service;

pub use self::backoff::{Backoff, Delays, Jitter};
pub use self::budget::{BudgetBuilder, BudgetSnapshot, RetryBudget};
pub use self::future::ResponseFuture;
pub use self::layer::RetryLayer;
pub use self::service::RetryService;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::duration_to_nanos;
use crate::error::{BoxError, CallError, ConfigError};
use crate::rng::SplitMix64;

/// An error that may carry the server's "retry after" hint (an HTTP
/// `Retry-After`, a gRPC `RetryInfo`, an open breaker's remaining wait).
///
/// The default says "no hint"; `impl RetryAfter for MyError {}` is enough to
/// use an error with [`Retry::call`].
///
/// ```
/// use gantry_resilience::retry::RetryAfter;
/// use std::time::Duration;
///
/// struct Throttled { seconds: u64 }
/// impl RetryAfter for Throttled {
///     fn retry_after(&self) -> Option<Duration> {
///         Some(Duration::from_secs(self.seconds))
///     }
/// }
/// assert_eq!(Throttled { seconds: 2 }.retry_after(), Some(Duration::from_secs(2)));
/// ```
pub trait RetryAfter {
    /// How long the server asked us to wait before trying again.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl RetryAfter for std::io::Error {}
impl RetryAfter for String {}
impl RetryAfter for &str {}
impl RetryAfter for () {}
impl RetryAfter for Infallible {}

impl RetryAfter for crate::breaker::Rejected {
    fn retry_after(&self) -> Option<Duration> {
        crate::breaker::Rejected::retry_after(self)
    }
}

impl<R: RetryAfter, E: RetryAfter> RetryAfter for CallError<R, E> {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Rejected(r) => r.retry_after(),
            CallError::Inner(e) => e.retry_after(),
        }
    }
}

/// A boxed error (tower's error type) gives the hint of the first error in
/// its `source()` chain that is one of this crate's rejections.
impl RetryAfter for BoxError {
    fn retry_after(&self) -> Option<Duration> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self.as_ref());
        while let Some(e) = current {
            if let Some(r) = e.downcast_ref::<crate::breaker::Rejected>() {
                return r.retry_after();
            }
            if let Some(r) = e.downcast_ref::<crate::rate_limit::RateLimited>() {
                return r.retry_after();
            }
            current = e.source();
        }
        None
    }
}

/// Whether, and when, a failed attempt may be retried.
///
/// ```
/// use gantry_resilience::retry::Retryable;
/// use std::time::Duration;
///
/// assert_eq!(Retryable::of(&std::io::Error::other("reset")), Retryable::Yes);
/// let hint = Retryable::After(Duration::from_secs(1));
/// assert_ne!(hint, Retryable::No);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    /// Do not retry (a bad request, a success).
    No,
    /// Retry after the backoff delay.
    Yes,
    /// Retry after this long, as the server asked.
    After(Duration),
}

impl Retryable {
    /// `After(hint)` if the error carries one, else `Yes`.
    pub fn of<E: RetryAfter + ?Sized>(error: &E) -> Retryable {
        match error.retry_after() {
            Some(d) => Retryable::After(d),
            None => Retryable::Yes,
        }
    }
}

/// What to do after a failed attempt.
///
/// ```
/// use gantry_resilience::retry::{Backoff, Decision, GiveUp, Retryable};
/// use gantry_resilience::Retry;
/// use std::time::Duration;
///
/// let retry = Retry::builder().max_attempts(2).backoff(Backoff::constant(Duration::from_millis(5))).build()?;
/// let mut state = retry.begin();
/// assert_eq!(state.on_error(Retryable::Yes), Decision::Retry(Duration::from_millis(5)));
/// assert_eq!(state.on_error(Retryable::Yes), Decision::GiveUp(GiveUp::AttemptsExhausted));
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then make the next attempt.
    Retry(Duration),
    /// Stop and return the last error.
    GiveUp(GiveUp),
}

/// Why a retry loop stopped.
///
/// ```
/// use gantry_resilience::retry::GiveUp;
/// assert_eq!(GiveUp::BudgetExhausted.to_string(), "the retry budget is spent");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GiveUp {
    /// The error is not one to retry.
    #[error("the error is not retryable")]
    NotRetryable,
    /// `max_attempts` attempts were made.
    #[error("every attempt was used")]
    AttemptsExhausted,
    /// The shared [`RetryBudget`] allows no more retries now.
    #[error("the retry budget is spent")]
    BudgetExhausted,
    /// The server asked for a longer wait than `max_retry_after`.
    #[error("the server asked to wait longer than max_retry_after")]
    RetryAfterTooLong,
}

#[derive(Debug, Default)]
struct Metrics {
    calls: AtomicU64,
    retries: AtomicU64,
    successes: AtomicU64,
    successes_after_retry: AtomicU64,
    not_retryable: AtomicU64,
    attempts_exhausted: AtomicU64,
    budget_exhausted: AtomicU64,
    retry_after_too_long: AtomicU64,
}

struct Inner {
    max_attempts: u32,
    backoff: Backoff,
    max_retry_after: u64,
    budget: Option<RetryBudget>,
    seeds: AtomicU64,
    metrics: Metrics,
}

/// A retry policy with its metrics; cheap to clone (clones share metrics and budget).
///
/// ```
/// use gantry_resilience::Retry;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), gantry_resilience::ConfigError> {
/// let retry = Retry::builder().max_attempts(3).build()?;
/// // Retry only errors the predicate likes; the last error comes back as is.
/// let r: Result<(), std::io::Error> = retry
///     .call_if(|| async { Err(std::io::Error::other("bad request")) }, |e| e.kind() != std::io::ErrorKind::Other)
///     .await;
/// assert!(r.is_err());
/// assert_eq!(retry.snapshot().retries, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Retry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("max_attempts", &self.inner.max_attempts)
            .field("backoff", &self.inner.backoff)
            .field(
                "max_retry_after",
                &Duration::from_nanos(self.inner.max_retry_after),
            )
            .field("budget", &self.inner.budget)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Retry`]. Defaults: 3 attempts, exponential backoff from 100 ms
/// capped at 10 s with full jitter, a server hint of up to 30 s honoured, no budget.
///
/// ```
/// use gantry_resilience::retry::{Backoff, Jitter, RetryBudget};
/// use gantry_resilience::Retry;
/// use std::time::Duration;
///
/// let retry = Retry::builder()
///     .max_attempts(5)
///     .backoff(Backoff::exponential(Duration::from_millis(20), Duration::from_secs(2)).jitter(Jitter::Decorrelated))
///     .max_retry_after(Duration::from_secs(10))
///     .budget(RetryBudget::builder().build()?)
///     .seed(7)
///     .build()?;
/// # let _ = retry;
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Builder {
    max_attempts: u32,
    backoff: Backoff,
    max_retry_after: Duration,
    budget: Option<RetryBudget>,
    seed: Option<u64>,
}

const NAME: &str = "retry";

impl Builder {
    /// Attempts in all, the first included; at least 1 (1 means never retry).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// The delays between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The longest server-requested wait honoured; asked for more, give up
    /// rather than hold the caller (or retry early, which the server refused).
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Draw every retry from this shared budget.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Fixes the jitter's random sequence (per call it still differs, but
    /// reproducibly) — for tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the settings and builds the policy.
    pub fn build(self) -> Result<Retry, ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                NAME,
                "max_attempts",
                0,
                "at least 1, the first attempt",
            ));
        }
        self.backoff.validate(NAME)?;
        Ok(Retry {
            inner: Arc::new(Inner {
                max_attempts: self.max_attempts,
                backoff: self.backoff,
                max_retry_after: duration_to_nanos(self.max_retry_after),
                budget: self.budget,
                seeds: AtomicU64::new(self.seed.unwrap_or_else(SplitMix64::random_seed)),
                metrics: Metrics::default(),
            }),
        })
    }
}

/// A retry policy's counters.
///
/// `calls = successes + not_retryable + attempts_exhausted + budget_exhausted
/// + retry_after_too_long + (calls still running or dropped)`.
///
/// ```
/// use gantry_resilience::Retry;
/// let s = Retry::builder().build()?.snapshot();
/// assert_eq!(s.calls, 0);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetrySnapshot {
    /// Retry loops started.
    pub calls: u64,
    /// Retries made (attempts after the first).
    pub retries: u64,
    /// Loops that ended in success.
    pub successes: u64,
    /// … of which needed at least one retry.
    pub successes_after_retry: u64,
    /// Loops that gave up on a non-retryable error.
    pub not_retryable: u64,
    /// Loops that used every attempt.
    pub attempts_exhausted: u64,
    /// Loops stopped by the budget.
    pub budget_exhausted: u64,
    /// Loops stopped by a too-long server hint.
    pub retry_after_too_long: u64,
}

impl Retry {
    /// A builder with the defaults listed on [`Builder`].
    pub fn builder() -> Builder {
        Builder {
            max_attempts: 3,
            backoff: Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10)),
            max_retry_after: Duration::from_secs(30),
            budget: None,
            seed: None,
        }
    }

    /// Starts one retry loop: counts the call and deposits it in the budget.
    pub fn begin(&self) -> RetryState {
        let inner = &self.inner;
        inner.metrics.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = &inner.budget {
            b.deposit();
        }
        // Golden-ratio steps give every call its own well-spread seed.
        let seed = inner
            .seeds
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        RetryState {
            retry: self.clone(),
            attempts: 0,
            delays: inner.backoff.delays(seed),
        }
    }

    /// Runs `op` until it succeeds, fails with an error not worth retrying,
    /// or a limit is reached; returns the last error as is.
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: RetryAfter,
    {
        self.call_if(op, |_| true).await
    }

    /// Like [`call`](Self::call), retrying only errors `retry_on` accepts.
    pub async fn call_if<T, E, F, Fut>(
        &self,
        mut op: F,
        retry_on: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: RetryAfter,
    {
        let mut state = self.begin();
        loop {
            match op().await {
                Ok(v) => {
                    state.on_success();
                    return Ok(v);
                }
                Err(e) => {
                    let hint = if retry_on(&e) {
                        Retryable::of(&e)
                    } else {
                        Retryable::No
                    };
                    match state.on_error(hint) {
                        Decision::Retry(delay) => tokio::time::sleep(delay).await,
                        Decision::GiveUp(_) => return Err(e),
                    }
                }
            }
        }
    }

    /// The budget, if one is set.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.inner.budget.as_ref()
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> RetrySnapshot {
        let m = &self.inner.metrics;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RetrySnapshot {
            calls: get(&m.calls),
            retries: get(&m.retries),
            successes: get(&m.successes),
            successes_after_retry: get(&m.successes_after_retry),
            not_retryable: get(&m.not_retryable),
            attempts_exhausted: get(&m.attempts_exhausted),
            budget_exhausted: get(&m.budget_exhausted),
            retry_after_too_long: get(&m.retry_after_too_long),
        }
    }
}

/// One retry loop's state: the pure core of [`Retry`], with no timers in it.
///
/// ```
/// use gantry_resilience::retry::{Backoff, Decision, GiveUp, Retryable};
/// use gantry_resilience::Retry;
/// use std::time::Duration;
///
/// let retry = Retry::builder()
///     .max_attempts(3)
///     .max_retry_after(Duration::from_secs(5))
///     .build()?;
/// let mut state = retry.begin();
/// // The server's hint wins over the backoff...
/// assert_eq!(state.on_error(Retryable::After(Duration::from_secs(2))), Decision::Retry(Duration::from_secs(2)));
/// // ...unless it asks for more than we are willing to wait.
/// assert_eq!(state.on_error(Retryable::After(Duration::from_secs(9))), Decision::GiveUp(GiveUp::RetryAfterTooLong));
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryState {
    retry: Retry,
    attempts: u32,
    delays: Delays,
}

impl RetryState {
    /// Attempts that have failed so far.
    pub fn failed_attempts(&self) -> u32 {
        self.attempts
    }

    /// Reports a failed attempt and gets the verdict.
    pub fn on_error(&mut self, hint: Retryable) -> Decision {
        let inner = &self.retry.inner;
        let m = &inner.metrics;
        self.attempts = self.attempts.saturating_add(1);
        let give_up = |why: GiveUp, counter: &AtomicU64| {
            counter.fetch_add(1, Ordering::Relaxed);
            Decision::GiveUp(why)
        };
        if hint == Retryable::No {
            return give_up(GiveUp::NotRetryable, &m.not_retryable);
        }
        if self.attempts >= inner.max_attempts {
            return give_up(GiveUp::AttemptsExhausted, &m.attempts_exhausted);
        }
        let delay = match hint {
            Retryable::After(d) if duration_to_nanos(d) > inner.max_retry_after => {
                return give_up(GiveUp::RetryAfterTooLong, &m.retry_after_too_long);
            }
            Retryable::After(d) => d,
            _ => Duration::from_nanos(self.delays.next_nanos()),
        };
        // Last, so a loop that stops for another reason does not spend budget.
        if inner.budget.as_ref().is_some_and(|b| !b.try_withdraw()) {
            return give_up(GiveUp::BudgetExhausted, &m.budget_exhausted);
        }
        m.retries.fetch_add(1, Ordering::Relaxed);
        Decision::Retry(delay)
    }

    /// Reports that the latest attempt worked.
    pub fn on_success(self) {
        let m = &self.retry.inner.metrics;
        m.successes.fetch_add(1, Ordering::Relaxed);
        if self.attempts > 0 {
            m.successes_after_retry.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Decides from a tower service's result whether to retry; implemented for
/// [`RetryErrors`] and for any `Fn(&Result<T, E>) -> Retryable`.
///
/// ```
/// use gantry_resilience::retry::{RetryClassify, RetryErrors, Retryable};
///
/// let on_503 = |r: &Result<u16, std::io::Error>| match r {
///     Ok(503) => Retryable::Yes,
///     Ok(_) => Retryable::No,
///     Err(e) => Retryable::of(e),
/// };
/// assert_eq!(on_503.classify(&Ok(503)), Retryable::Yes);
/// assert_eq!(RetryErrors.classify(&Ok::<u16, std::io::Error>(503)), Retryable::No);
/// ```
pub trait RetryClassify<T, E> {
    /// Whether to retry after `result`.
    fn classify(&self, result: &Result<T, E>) -> Retryable;
}

/// The default tower classifier: retry every error (honouring its
/// [`RetryAfter`] hint), never a response.
///
/// ```
/// use gantry_resilience::retry::{RetryClassify, RetryErrors, Retryable};
/// assert_eq!(RetryErrors.classify(&Err::<(), _>(std::io::Error::other("x"))), Retryable::Yes);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryErrors;

impl<T, E: RetryAfter> RetryClassify<T, E> for RetryErrors {
    fn classify(&self, result: &Result<T, E>) -> Retryable {
        match result {
            Ok(_) => Retryable::No,
            Err(e) => Retryable::of(e),
        }
    }
}

impl<T, E, F> RetryClassify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Retryable,
{
    fn classify(&self, result: &Result<T, E>) -> Retryable {
        self(result)
    }
}

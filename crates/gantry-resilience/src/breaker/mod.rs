//! The circuit breaker: stop calling a callee that is failing or slow, try it
//! again with a few trial calls after a while, and tell the host every change.
//!
//! ```text
//!            failure or slow-call rate ≥ threshold
//!            (over ≥ minimum_number_of_calls)
//!   Closed ───────────────────────────────────────▶ Open ◀─────────────┐
//!     ▲                                               │                │ a trial rate ≥ threshold,
//!     │ all permitted trials done, rates below        │ wait_in_open   │ or max_wait_in_half_open
//!     │                                               ▼ passed         │ passed
//!     └──────────────────────────────────────────── HalfOpen ──────────┘
//!
//!   by hand: force_open() → ForcedOpen, disable() → Disabled, force_close() → Closed
//! ```
//!
//! # How it is built
//!
//! * One `AtomicU64` state word holds the state, a generation and the number
//!   of half-open trials issued (see `state.rs`). A closed breaker admits a
//!   call with one load; a half-open one issues a trial with one CAS, so at
//!   most `permitted_calls_in_half_open` trials are ever in flight.
//! * Outcomes go into a [`SlidingWindow`]: the count window is a bitmap ring
//!   indexed by one running counter (the same counter is the `calls` metric),
//!   so the closed-state path for a success is: load the state, `fetch_add`
//!   the counter, load one bitmap word — no lock, no allocation, no clock read
//!   unless slow calls are tracked.
//! * Transitions are rare and take a `Mutex` so that exactly one thread
//!   performs each; the state-change callback runs after it is released, so a
//!   callback may call back into the breaker.
//! * Timed transitions (Open → HalfOpen after `wait_in_open`, HalfOpen → Open
//!   after `max_wait_in_half_open`) happen lazily on the next
//!   [`try_acquire`](CircuitBreaker::try_acquire), [`state`](CircuitBreaker::state)
//!   or [`snapshot`](CircuitBreaker::snapshot); a host that wants events on
//!   time can call `state()` at [`next_deadline`](CircuitBreaker::next_deadline).
//!   A breaker can therefore never stay half-open because its trials hang.
//!
//! ```
//! use gantry_resilience::breaker::{Rejected, SlidingWindow, State};
//! use gantry_resilience::{CallError, CircuitBreaker, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! let breaker = CircuitBreaker::builder()
//!     .sliding_window(SlidingWindow::Count { size: 4 })
//!     .minimum_number_of_calls(4)
//!     .failure_rate_threshold(0.5)
//!     .wait_in_open(Duration::from_secs(10))
//!     .permitted_calls_in_half_open(1)
//!     .clock(clock.clone())
//!     .build()?;
//!
//! for ok in [true, false, true, false] {
//!     let _ = breaker.call_sync(|| if ok { Ok(()) } else { Err("boom") });
//! }
//! assert_eq!(breaker.state(), State::Open);
//! assert!(matches!(
//!     breaker.call_sync(|| Ok::<_, ()>(())),
//!     Err(CallError::Rejected(Rejected::Open { .. }))
//! ));
//!
//! clock.advance(Duration::from_secs(10));
//! assert_eq!(breaker.call_sync(|| Ok::<_, ()>("trial")), Ok("trial"));
//! assert_eq!(breaker.state(), State::Closed);
//! # Ok::<(), gantry_resilience::ConfigError>(())
//! ```

mod builder;
mod error;
mod future;
mod layer;
mod permit;
mod service;
mod state;
mod window;

pub use self::builder::Builder;
pub use self::error::Rejected;
pub use self::future::ResponseFuture;
pub use self::layer::CircuitBreakerLayer;
pub use self::permit::{OwnedPermit, Permit};
pub use self::service::CircuitBreakerService;
pub use self::state::{State, StateChange};
pub use self::window::SlidingWindow;

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use self::state::{
    CLOSED, DISABLED, FORCED_OPEN, GEN_MASK, HALF_OPEN, ISSUED_ONE, MAX_TRIALS, OPEN, PERIOD_MASK,
    Trials, generation, issued, pack, state_of, tag,
};
use self::window::{Tally, Window};
use crate::clock::{Clock, Nanos, SystemClock, duration_to_nanos};
use crate::error::{CallError, ConfigError, check_ratio};
use crate::outcome::{Classify, ErrorIsFailure, Outcome};

/// Keeps a hot atomic on its own cache-line pair, so writes to neighbours
/// (metrics, timestamps) do not invalidate it for readers on other cores.
/// 128 rather than 64 because adjacent-line prefetchers pair lines.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

impl<T> Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

type Callback = Box<dyn Fn(StateChange) + Send + Sync>;

#[derive(Debug, Clone)]
struct Config {
    window: SlidingWindow,
    failure_rate_threshold: f64,
    slow_call_rate_threshold: f64,
    /// `None`: slow calls are not tracked and no clock is read for them.
    slow_call_nanos: Option<u64>,
    minimum_number_of_calls: u64,
    wait_in_open: u64,
    permitted_in_half_open: u32,
    max_wait_in_half_open: u64,
    /// Whether recording a closed-state outcome needs `now`.
    needs_clock: bool,
}

struct Inner {
    /// Read by every call.
    state: Padded<AtomicU64>,
    /// Every recorded outcome; also the count window's ring index.
    calls: Padded<AtomicU64>,
    /// Written by every rejected call, so kept apart from `state`, which those calls read.
    rejected: Padded<AtomicU64>,
    failures: AtomicU64,
    slow: AtomicU64,
    ignored: AtomicU64,
    transitions: AtomicU64,
    /// When the current state was entered, on `clock`.
    state_since: AtomicU64,
    /// Half-open trial results, see `state::Trials`.
    trials: AtomicU64,
    window: Window,
    /// Serialises transitions (never taken on the call path of a closed breaker).
    lock: Mutex<()>,
    config: Config,
    clock: Arc<dyn Clock>,
    on_change: Option<Callback>,
}

/// A circuit breaker; cheap to clone (clones share one breaker).
///
/// See the [module docs](crate::breaker) for the state machine.
///
/// ```
/// use gantry_resilience::{CallError, CircuitBreaker};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::builder().build()?;
/// let answer = breaker.call(|| async { Ok::<_, std::io::Error>(42) }).await;
/// assert_eq!(answer.unwrap(), 42);
///
/// // With a fallback for when the breaker is open: serve cached data.
/// breaker.force_open();
/// let cached = breaker.call_with_fallback(|| async { Ok::<_, std::io::Error>(1) }, |_rejected| Ok(0)).await?;
/// assert_eq!(cached, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &state_of(self.inner.state.load(Ordering::Relaxed)))
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A point-in-time copy of a breaker's counters; reading it allocates nothing.
///
/// `calls` counts every recorded outcome (successes + failures) since the
/// breaker was built; `ignored` and `rejected` calls are not in `calls`.
///
/// ```
/// use gantry_resilience::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder().build()?;
/// let _ = breaker.call_sync(|| Err::<(), _>("boom"));
/// let snap = breaker.snapshot();
/// assert_eq!((snap.calls, snap.failures, snap.successes), (1, 1, 0));
/// assert_eq!(snap.window_failure_rate(), 1.0);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSnapshot {
    /// The state, with due timed transitions applied.
    pub state: State,
    /// Recorded outcomes.
    pub calls: u64,
    /// Recorded successes (`calls - failures`).
    pub successes: u64,
    /// Recorded failures.
    pub failures: u64,
    /// Recorded calls, failed or not, slower than the slow-call threshold.
    pub slow_calls: u64,
    /// Permitted calls whose outcome was [`Outcome::Ignore`] or that were dropped unrecorded.
    pub ignored: u64,
    /// Calls refused while open, forced open or half-open and full.
    pub rejected: u64,
    /// State changes since the breaker was built.
    pub transitions: u64,
    /// Calls in the sliding window now (half-open: trials finished this period; disabled: 0).
    pub window_calls: u64,
    /// Failures in the sliding window now.
    pub window_failures: u64,
    /// Slow calls in the sliding window now (0 unless slow calls are tracked).
    pub window_slow_calls: u64,
}

impl BreakerSnapshot {
    /// Failures over calls in the window; 0 when it is empty.
    pub fn window_failure_rate(&self) -> f64 {
        ratio(self.window_failures, self.window_calls)
    }

    /// Slow calls over calls in the window; 0 when it is empty.
    pub fn window_slow_call_rate(&self) -> f64 {
        ratio(self.window_slow_calls, self.window_calls)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl CircuitBreaker {
    /// A builder with the defaults listed on [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Asks to make one call. On `Ok`, make the call and report how it went
    /// on the [`Permit`]; a permit dropped unreported counts as
    /// [`Outcome::Ignore`] (so a cancelled future hands back its trial slot).
    ///
    /// ```
    /// use gantry_resilience::{CircuitBreaker, Outcome};
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// let permit = breaker.try_acquire().expect("a new breaker is closed");
    /// permit.record(Outcome::Success);
    /// # Ok::<(), gantry_resilience::ConfigError>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let (word, start) = self.inner.acquire()?;
        Ok(Permit {
            inner: &self.inner,
            word,
            start,
        })
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a
    /// handle to the breaker (for futures that outlive a borrow).
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, Rejected> {
        let (word, start) = self.inner.acquire()?;
        Ok(OwnedPermit {
            breaker: self.clone(),
            word,
            start,
            recorded: false,
        })
    }

    /// Runs `f` if the breaker permits it; `Err` from `f` counts as a failure.
    #[inline]
    pub fn call_sync<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<Rejected, E>> {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let result = f();
        permit.record(if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        });
        result.map_err(CallError::Inner)
    }

    /// Runs the future `f` makes if the breaker permits it; `Err` counts as a
    /// failure. Dropping the returned future before it finishes records nothing.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, CallError<Rejected, E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_classified(f, ErrorIsFailure).await
    }

    /// Like [`call`](Self::call), with `classify` deciding what the result
    /// means (for example: a 404 is a success, a 503 a failure, a 400 ignored).
    ///
    /// ```
    /// use gantry_resilience::{CircuitBreaker, Outcome};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), gantry_resilience::ConfigError> {
    /// let breaker = CircuitBreaker::builder().build()?;
    /// let classify = |r: &Result<u16, ()>| match r {
    ///     Ok(s) if *s >= 500 => Outcome::Failure,
    ///     Ok(_) => Outcome::Success,
    ///     Err(()) => Outcome::Ignore,
    /// };
    /// let status = breaker.call_classified(|| async { Ok::<u16, ()>(503) }, classify).await;
    /// assert_eq!(status, Ok(503));
    /// assert_eq!(breaker.snapshot().failures, 1);
    /// # Ok(()) }
    /// ```
    pub async fn call_classified<T, E, F, Fut, C>(
        &self,
        f: F,
        classify: C,
    ) -> Result<T, CallError<Rejected, E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let result = f().await;
        permit.record(classify.classify(&result));
        result.map_err(CallError::Inner)
    }

    /// Like [`call`](Self::call), but a rejection is answered by `fallback`
    /// ("serve cached data or a polite no-op") instead of an error.
    pub async fn call_with_fallback<T, E, F, Fut>(
        &self,
        f: F,
        fallback: impl FnOnce(Rejected) -> Result<T, E>,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match self.call(f).await {
            Ok(v) => Ok(v),
            Err(CallError::Inner(e)) => Err(e),
            Err(CallError::Rejected(r)) => fallback(r),
        }
    }

    /// The blocking twin of [`call_with_fallback`](Self::call_with_fallback).
    ///
    /// ```
    /// use gantry_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::builder().build()?;
    /// breaker.force_open();
    /// let v: Result<&str, ()> = breaker.call_sync_with_fallback(|| Ok("fresh"), |_| Ok("cached"));
    /// assert_eq!(v, Ok("cached"));
    /// # Ok::<(), gantry_resilience::ConfigError>(())
    /// ```
    pub fn call_sync_with_fallback<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        fallback: impl FnOnce(Rejected) -> Result<T, E>,
    ) -> Result<T, E> {
        match self.call_sync(f) {
            Ok(v) => Ok(v),
            Err(CallError::Inner(e)) => Err(e),
            Err(CallError::Rejected(r)) => fallback(r),
        }
    }

    /// The window this breaker was built with.
    pub fn sliding_window(&self) -> SlidingWindow {
        self.inner.config.window
    }

    /// The state now, after applying any timed transition that is due.
    pub fn state(&self) -> State {
        // Only open and half-open have timed transitions: the others need no clock (a
        // proxy asks this for every request).
        let word = self.inner.state.load(Ordering::Acquire);
        if !matches!(tag(word), OPEN | HALF_OPEN) {
            return state_of(word);
        }
        state_of(self.inner.poll(self.inner.clock.now()))
    }

    /// When the next timed transition is due (end of the wait in open, or of
    /// the longest wait in half-open), if one is pending.
    ///
    /// ```
    /// use gantry_resilience::{CircuitBreaker, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder().wait_in_open(Duration::from_secs(5)).clock(clock).build()?;
    /// assert_eq!(breaker.next_deadline(), None);
    /// breaker.force_open();
    /// assert_eq!(breaker.next_deadline(), None, "forced open waits for a person");
    /// # Ok::<(), gantry_resilience::ConfigError>(())
    /// ```
    pub fn next_deadline(&self) -> Option<Nanos> {
        let word = self.inner.state.load(Ordering::Acquire);
        let since = Nanos::from_nanos(self.inner.state_since.load(Ordering::Acquire));
        let cfg = &self.inner.config;
        match tag(word) {
            OPEN => Some(since + Duration::from_nanos(cfg.wait_in_open)),
            HALF_OPEN => Some(since + Duration::from_nanos(cfg.max_wait_in_half_open)),
            _ => None,
        }
    }

    /// Opens the breaker until changed by hand ([`force_close`](Self::force_close)).
    pub fn force_open(&self) {
        self.inner.force(FORCED_OPEN);
    }

    /// Closes the breaker with an empty window; it works normally from here
    /// and can trip again. Also the way out of forced-open and disabled.
    /// Does nothing (and keeps the window) if the breaker is already closed.
    pub fn force_close(&self) {
        self.inner.force(CLOSED);
    }

    /// Lets every call through and never trips, still counting outcomes in
    /// the metrics, until [`force_close`](Self::force_close).
    pub fn disable(&self) {
        self.inner.force(DISABLED);
    }

    /// A copy of the counters, after applying any timed transition that is due.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let inner = &self.inner;
        let now = inner.clock.now();
        let state = state_of(inner.poll(now));
        let calls = inner.calls.load(Ordering::Acquire);
        let failures = inner.failures.load(Ordering::Relaxed);
        let Tally {
            calls: window_calls,
            failures: window_failures,
            slow: window_slow_calls,
        } = match state {
            // Half-open judges its trials, not the window.
            State::HalfOpen => {
                let t = Trials::unpack(inner.trials.load(Ordering::Acquire));
                Tally {
                    calls: t.done.into(),
                    failures: t.failed.into(),
                    slow: t.slow.into(),
                }
            }
            // Disabled records nothing in the window.
            State::Disabled => Tally::default(),
            _ => inner.window.tally(calls, now),
        };
        BreakerSnapshot {
            state,
            calls,
            successes: calls.saturating_sub(failures),
            failures,
            slow_calls: inner.slow.load(Ordering::Relaxed),
            ignored: inner.ignored.load(Ordering::Relaxed),
            rejected: inner.rejected.load(Ordering::Relaxed),
            transitions: inner.transitions.load(Ordering::Relaxed),
            window_calls,
            window_failures,
            window_slow_calls,
        }
    }
}

impl Inner {
    /// The fast path: closed (or disabled) is one load.
    #[inline]
    fn acquire(&self) -> Result<(u64, Nanos), Rejected> {
        let word = self.state.load(Ordering::Acquire);
        if tag(word) == CLOSED || tag(word) == DISABLED {
            Ok((word, self.start_time()))
        } else {
            self.acquire_slow(word)
        }
    }

    #[inline]
    fn start_time(&self) -> Nanos {
        if self.config.slow_call_nanos.is_some() {
            self.clock.now()
        } else {
            Nanos::ZERO
        }
    }

    #[cold]
    fn acquire_slow(&self, mut word: u64) -> Result<(u64, Nanos), Rejected> {
        let cfg = &self.config;
        loop {
            match tag(word) {
                CLOSED | DISABLED => return Ok((word, self.start_time())),
                FORCED_OPEN => return Err(self.reject(Rejected::ForcedOpen)),
                OPEN => {
                    let now = self.clock.now();
                    let until = self.since() + Duration::from_nanos(cfg.wait_in_open);
                    if now < until {
                        return Err(self.reject(Rejected::Open {
                            retry_after: until - now,
                        }));
                    }
                    self.transition_if(word, HALF_OPEN, now);
                    word = self.state.load(Ordering::Acquire);
                }
                _ => {
                    let now = self.clock.now();
                    if now >= self.since() + Duration::from_nanos(cfg.max_wait_in_half_open) {
                        self.transition_if(word, OPEN, now);
                        word = self.state.load(Ordering::Acquire);
                        continue;
                    }
                    if issued(word) >= cfg.permitted_in_half_open {
                        return Err(self.reject(Rejected::HalfOpenFull));
                    }
                    let trial = word + ISSUED_ONE;
                    match self.state.compare_exchange_weak(
                        word,
                        trial,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Ok((trial, now)),
                        Err(actual) => word = actual,
                    }
                }
            }
        }
    }

    fn reject(&self, why: Rejected) -> Rejected {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        why
    }

    fn since(&self) -> Nanos {
        Nanos::from_nanos(self.state_since.load(Ordering::Acquire))
    }

    /// Records the outcome of a call admitted under state word `word`.
    #[inline]
    fn record(&self, word: u64, start: Nanos, outcome: Outcome) {
        let failed = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignore => return self.record_ignored(word),
        };
        let cfg = &self.config;
        let needs_clock = cfg.needs_clock || tag(word) == HALF_OPEN;
        let now = if needs_clock {
            self.clock.now()
        } else {
            Nanos::ZERO
        };
        let slow = match cfg.slow_call_nanos {
            Some(threshold) => now.as_nanos().saturating_sub(start.as_nanos()) >= threshold,
            None => false,
        };
        // Relaxed: the index only picks a ring slot (itself an atomic); the
        // state word and the transition lock order everything else.
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        if slow {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
        match tag(word) {
            // Written even if the breaker has opened since: the window is
            // emptied when it closes again, so nothing stale survives.
            // A success can only lower a count window's rates, except the
            // one that brings the window up to the minimum number of calls.
            CLOSED => match &self.window {
                Window::Count(w) => {
                    w.record(index, failed, slow);
                    if failed || slow || w.reaches(index, cfg.minimum_number_of_calls) {
                        self.check_closed(index + 1, now);
                    }
                }
                Window::Time(w) => {
                    w.add(now, failed, slow);
                    if failed || slow || w.below_minimum() {
                        self.check_closed(0, now);
                    }
                }
            },
            HALF_OPEN => self.record_trial(word, failed, slow, now),
            // Disabled: metrics only.
            _ => {}
        }
    }

    /// Trips the breaker if the window's rates crossed a threshold.
    #[cold]
    fn check_closed(&self, calls: u64, now: Nanos) {
        let word = self.state.load(Ordering::Acquire);
        if tag(word) != CLOSED {
            return;
        }
        let cfg = &self.config;
        let t = self.window.tally(calls, now);
        if let Window::Time(w) = &self.window {
            w.set_below_minimum(t.calls < cfg.minimum_number_of_calls);
        }
        if t.calls < cfg.minimum_number_of_calls {
            return;
        }
        let calls = t.calls as f64;
        let too_many_failures = t.failures as f64 >= cfg.failure_rate_threshold * calls;
        let too_slow =
            cfg.slow_call_nanos.is_some() && t.slow as f64 >= cfg.slow_call_rate_threshold * calls;
        if too_many_failures || too_slow {
            // A count window without slow-call tracking has not read the clock yet.
            let now = if cfg.needs_clock {
                now
            } else {
                self.clock.now()
            };
            self.transition_if(word, OPEN, now);
        }
    }

    #[cold]
    fn record_trial(&self, word: u64, failed: bool, slow: bool, now: Nanos) {
        let cfg = &self.config;
        let mut current = self.trials.load(Ordering::Acquire);
        let t = loop {
            let mut t = Trials::unpack(current);
            if t.generation != generation(word) {
                // A trial of an earlier half-open period: it must not decide this one.
                return;
            }
            t.done += 1;
            t.failed += u32::from(failed);
            t.slow += u32::from(slow);
            match self.trials.compare_exchange_weak(
                current,
                t.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break t,
                Err(actual) => current = actual,
            }
        };
        let permitted = f64::from(cfg.permitted_in_half_open);
        // Open as soon as the remaining trials cannot bring the rate back under the threshold.
        let too_many_failures = f64::from(t.failed) >= cfg.failure_rate_threshold * permitted;
        let too_slow = cfg.slow_call_nanos.is_some()
            && f64::from(t.slow) >= cfg.slow_call_rate_threshold * permitted;
        if too_many_failures || too_slow {
            self.transition_if(word, OPEN, now);
        } else if t.done >= cfg.permitted_in_half_open {
            self.transition_if(word, CLOSED, now);
        }
    }

    #[cold]
    fn record_ignored(&self, word: u64) {
        self.ignored.fetch_add(1, Ordering::Relaxed);
        if tag(word) != HALF_OPEN {
            return;
        }
        // Hand the trial slot back, but only to the half-open period that issued it.
        let mut current = self.state.load(Ordering::Acquire);
        while current & PERIOD_MASK == word & PERIOD_MASK && issued(current) > 0 {
            match self.state.compare_exchange_weak(
                current,
                current - ISSUED_ONE,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Applies due timed transitions and returns the resulting state word.
    fn poll(&self, now: Nanos) -> u64 {
        let cfg = &self.config;
        loop {
            let word = self.state.load(Ordering::Acquire);
            let due = match tag(word) {
                OPEN if now >= self.since() + Duration::from_nanos(cfg.wait_in_open) => HALF_OPEN,
                HALF_OPEN
                    if now >= self.since() + Duration::from_nanos(cfg.max_wait_in_half_open) =>
                {
                    OPEN
                }
                _ => return word,
            };
            self.transition_if(word, due, now);
        }
    }

    /// Moves to `to` if the breaker is still in the state period of `expected`.
    fn transition_if(&self, expected: u64, to: u64, now: Nanos) -> bool {
        let change = {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            let current = self.state.load(Ordering::Acquire);
            if current & PERIOD_MASK != expected & PERIOD_MASK {
                return false;
            }
            self.enter(current, to, now)
        };
        self.emit(change);
        true
    }

    fn force(&self, to: u64) {
        let now = self.clock.now();
        let change = {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            let current = self.state.load(Ordering::Acquire);
            if tag(current) == to {
                return;
            }
            self.enter(current, to, now)
        };
        self.emit(change);
    }

    /// Performs a transition; the caller holds `lock`.
    fn enter(&self, current: u64, to: u64, now: Nanos) -> StateChange {
        let next_gen = (generation(current) + 1) & GEN_MASK;
        match to {
            CLOSED => self.window.reset(self.calls.load(Ordering::Acquire)),
            HALF_OPEN => self
                .trials
                .store(Trials::fresh(next_gen).pack(), Ordering::Release),
            _ => {}
        }
        self.state_since.store(now.as_nanos(), Ordering::Release);
        // Publishing the word last makes the reset window and trial counters
        // visible to anyone who sees the new state.
        self.state.store(pack(to, next_gen), Ordering::Release);
        self.transitions.fetch_add(1, Ordering::Relaxed);
        StateChange {
            from: state_of(current),
            to: state_of(to),
            at: now,
            generation: next_gen as u32,
        }
    }

    fn emit(&self, change: StateChange) {
        if let Some(f) = &self.on_change {
            f(change);
        }
    }
}

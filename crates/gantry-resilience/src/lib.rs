//! Resilience primitives for gantry and the hosts that embed it: a circuit
//! breaker, retries with backoff and a budget, a timeout, a bulkhead and a
//! rate limiter — each a plain type with a plain async API, and each a tower
//! `Layer` + `Service`.
//!
//! # The pieces
//!
//! | type | plain API | tower | rejection (a value) | counters |
//! | --- | --- | --- | --- | --- |
//! | [`CircuitBreaker`] | `call`, `call_sync`, `call_with_fallback`, `try_acquire` | [`breaker::CircuitBreakerLayer`] | [`breaker::Rejected`] | [`breaker::BreakerSnapshot`] |
//! | [`Retry`] | `call`, `call_if`, `begin` (sans-IO) | [`retry::RetryLayer`] | the last error | [`retry::RetrySnapshot`] |
//! | [`Timeout`] | `call` | [`timeout::TimeoutLayer`] | [`timeout::Elapsed`] | [`timeout::TimeoutSnapshot`] |
//! | [`Bulkhead`] | `call`, `acquire`, `try_acquire` | [`bulkhead::BulkheadLayer`] | [`bulkhead::Rejected`] | [`bulkhead::BulkheadSnapshot`] |
//! | [`RateLimiter`] | `call`, `try_acquire` | [`rate_limit::RateLimitLayer`] | [`rate_limit::RateLimited`] | [`rate_limit::RateLimiterSnapshot`] |
//!
//! Plain calls return [`CallError`]`<Rejection, E>`; tower services return
//! tower's [`BoxError`] holding the concrete rejection, to `downcast_ref`.
//! Nothing here panics on a rejection, and builders return a typed
//! [`ConfigError`] instead of panicking on a bad setting.
//!
//! # Time is injected
//!
//! Every decision that depends on time reads a [`Clock`]:
//!
//! * [`ManualClock`] — moves only when told to; every state-machine test
//!   runs on it, with no sleeps;
//! * [`SystemClock`] — `std::time::Instant` (a vDSO read on Linux);
//! * [`TokioClock`] — tokio's clock, so breakers and rate limiters obey
//!   `tokio::time::pause()` like the timers do;
//! * [`CoarseClock`] — one atomic load of a cached time, refreshed every N
//!   reads per thread and/or by a background [`Ticker`] thread (or by hand):
//!   for time-based windows and slow-call tracking on very hot paths.
//!
//! [`Timeout`], [`Retry`]'s sleeps and [`Bulkhead`]'s queue wait use tokio's
//! timers (tokio with only `sync` and `time` is a normal dependency); the
//! breaker, the retry decision core ([`retry::RetryState`], [`retry::Backoff`]),
//! the budget and the rate limiter run without a runtime.
//!
//! # Composing
//!
//! Retry around a breaker honours the breaker's `retry_after`: every
//! rejection implements [`retry::RetryAfter`], as does [`CallError`] and
//! tower's boxed error.
//!
//! ```
//! use gantry_resilience::breaker::{CircuitBreakerLayer, Rejected};
//! use gantry_resilience::retry::RetryLayer;
//! use gantry_resilience::timeout::TimeoutLayer;
//! use gantry_resilience::{CircuitBreaker, Retry, Timeout, TokioClock};
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let breaker = CircuitBreaker::builder().clock(TokioClock::new()).build()?;
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(Retry::builder().max_attempts(3).build()?))
//!     .layer(CircuitBreakerLayer::new(breaker.clone()))
//!     .layer(TimeoutLayer::new(Timeout::new(Duration::from_secs(2))))
//!     .service_fn(|name: &'static str| async move { Ok::<_, tower::BoxError>(format!("hello {name}")) });
//! assert_eq!(client.clone().oneshot("gantry").await?, "hello gantry");
//!
//! breaker.force_open();
//! let err = client.oneshot("again").await.unwrap_err();
//! assert_eq!(err.downcast_ref::<Rejected>(), Some(&Rejected::ForcedOpen));
//! # Ok(()) }
//! ```
//!
//! # Cost
//!
//! A closed breaker with a count window and no slow-call tracking admits and
//! records a call with atomics only — one load of the state word, one
//! `fetch_add` of the call counter, one load of a bitmap word (a write only
//! when an outcome differs from the one it replaces) — and no allocation, no
//! lock and no clock read; `benches/breaker.rs` measures it against the
//! `failsafe` and `recloser` crates and `tests/no_alloc.rs` proves it
//! allocates nothing. Transitions take a mutex (rare, never on the closed
//! path); a time-based window or slow-call tracking adds clock reads.
//!
//! # Known approximations
//!
//! Lock-free bookkeeping trades a little exactness at the edges, always in
//! ways that cannot accumulate:
//!
//! * an outcome recorded by a thread that was preempted across a whole
//!   transition (closed → open → half-open → closed) lands in the new window
//!   as one stale sample, overwritten within one window;
//! * a time window's rates are evaluated on failures, slow calls, and on
//!   successes while the window is below its minimum number of calls — a
//!   rate that rises only because old successes expired is acted on at the
//!   next failure;
//! * threads racing for a retry budget's last retry may each get one;
//! * a sample that meets a time-window bucket mid-recycle, with the
//!   recycling thread preempted for longer than a short spin, is dropped
//!   rather than made to wait.

#![warn(missing_docs)]

pub mod breaker;
pub mod bulkhead;
mod clock;
mod error;
mod outcome;
pub mod rate_limit;
pub mod retry;
mod rng;
pub mod timeout;
mod window;

pub use breaker::CircuitBreaker;
pub use bulkhead::Bulkhead;
pub use clock::{Clock, CoarseClock, ManualClock, Nanos, SystemClock, Ticker, TokioClock};
pub use error::{BoxError, CallError, ConfigError};
pub use outcome::{Classify, ErrorIsFailure, Outcome};
pub use rate_limit::RateLimiter;
pub use retry::Retry;
pub use timeout::Timeout;

//! One component of an embedded boot: its name, priority, dependencies, timeouts and retries, and the async functions that bring it up, check it and take it down.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use gantry_engine::{BreakerConfig, Priority, RetryPolicy};

/// The error type init, readiness and cleanup functions return: anything that converts into a
/// boxed error, so `?` works on `std::io::Error`, `tokio_postgres::Error`, `anyhow::Error`,
/// `String` and `&str` alike.
///
/// ```
/// use gantry::BoxError;
///
/// fn parse(port: &str) -> Result<u16, BoxError> {
///     Ok(port.parse::<u16>()?)
/// }
/// assert_eq!(parse("5432").unwrap(), 5432);
/// assert!(parse("port").is_err());
/// let custom: BoxError = "config file missing".into();
/// assert_eq!(custom.to_string(), "config file missing");
/// ```
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A user function, type-erased: every call starts a fresh future whose error is already text
/// (the engine, the report and the API only ever show the message).
pub(crate) type Job = Arc<dyn Fn() -> BoxFuture<Result<(), String>> + Send + Sync>;

/// What a readiness or cleanup function may return: `()`, `bool` (`false` = not ready /
/// failed), `Result<(), BoxError>` or `Result<bool, BoxError>`.
///
/// The impls are for [`BoxError`] only, so `|| async { Ok(()) }` and `?` inside the block
/// need no type annotations.
///
/// ```
/// use gantry::{BoxError, CheckOutput};
///
/// assert_eq!(true.into_check(), Ok(()));
/// assert_eq!(false.into_check(), Err("not ready".to_string()));
/// assert_eq!(().into_check(), Ok(()));
/// let failed: Result<(), BoxError> = Err("connection refused".into());
/// assert_eq!(failed.into_check(), Err("connection refused".to_string()));
/// let not_yet: Result<bool, BoxError> = Ok(false);
/// assert!(not_yet.into_check().is_err());
/// ```
pub trait CheckOutput: Send + 'static {
    /// `Ok(())` when the check passed, otherwise the message to show.
    fn into_check(self) -> Result<(), String>;
}

impl CheckOutput for () {
    fn into_check(self) -> Result<(), String> {
        Ok(())
    }
}

impl CheckOutput for bool {
    fn into_check(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("not ready".to_string())
        }
    }
}

impl CheckOutput for Result<(), BoxError> {
    fn into_check(self) -> Result<(), String> {
        self.map_err(|e| error_chain(&*e))
    }
}

impl CheckOutput for Result<bool, BoxError> {
    fn into_check(self) -> Result<(), String> {
        self.map_err(|e| error_chain(&*e))?.into_check()
    }
}

/// `error: cause: cause`, skipping a cause the message already quotes (many errors, such as
/// tokio-postgres's, print their source themselves and return it again from `source()`).
pub(crate) fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Default retry curve: the first attempt plus 3 retries, exponential backoff from 1 s to
/// 30 s with full jitter — the seeds' startup manager defaults (`MAX_RETRIES=3`, "1s to 30s").
const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 4,
    backoff: Duration::from_secs(1),
    max_backoff: Duration::from_secs(30),
    jitter: true,
};

/// A component to initialize: a database pool, a cache client, a background worker, a config
/// loader. Built with chained calls, then handed to [`BootBuilder::component`].
///
/// * `init` runs once per attempt; an `Err` fails the attempt and the engine retries with
///   backoff (full jitter) until the retry policy gives up. An attempt that takes longer than
///   [`timeout`](Component::timeout) is cancelled (its future is dropped) and counts as failed.
/// * `readiness`, if given, is polled after `init` succeeded, until it passes (within the same
///   timeout); without one the component is ready as soon as `init` returns `Ok`. It keeps
///   running every [`readiness_interval`](Component::readiness_interval) while the component
///   is up: three failures in a row make it `unready` (`/health/ready` fails, nothing is
///   restarted), one pass makes it ready again.
/// * `cleanup` runs when an initialized component is stopped: at shutdown, after a NO-GO, before
///   a [`Boot::reinitialize`](crate::Boot::reinitialize), and before a retry when `init`
///   succeeded but readiness never came. It never runs for an `init` that did not finish.
///
/// ```
/// use std::time::Duration;
/// use gantry::{Component, Priority};
///
/// let db = Component::new("db")
///     .priority(Priority::Critical)
///     .depends_on(["config"])
///     .depends_on_soft(["metrics"])
///     .timeout(Duration::from_secs(5))
///     .retries(3)
///     .backoff(Duration::from_millis(200), Duration::from_secs(5))
///     .init(|| async { Ok(()) })
///     .readiness(|| async { true })
///     .cleanup(|| async {});
/// assert_eq!(db.name(), "db");
/// assert_eq!(db.get_priority(), Priority::Critical);
/// ```
///
/// [`BootBuilder::component`]: crate::BootBuilder::component
#[derive(Clone)]
pub struct Component {
    pub(crate) name: String,
    pub(crate) priority: Priority,
    /// (dependency, required) in the order given; a name given twice keeps the strongest edge.
    pub(crate) deps: Vec<(String, bool)>,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker: Option<BreakerConfig>,
    pub(crate) cleanup_timeout: Duration,
    pub(crate) init: Option<Job>,
    pub(crate) cleanup: Option<Job>,
    pub(crate) readiness: Option<Job>,
    pub(crate) readiness_interval: Duration,
    pub(crate) readiness_timeout: Duration,
}

impl Component {
    /// A component with the defaults: priority `High` (as in gantry.toml: required for
    /// readiness, a failure degrades), no dependencies, a 60 s timeout
    /// per attempt, 3 retries with exponential backoff from 1 s to 30 s (full jitter), a 10 s
    /// cleanup timeout, and an `init` that succeeds at once.
    ///
    /// ```
    /// let worker = gantry::Component::new("worker");
    /// assert_eq!(worker.name(), "worker");
    /// ```
    pub fn new(name: impl Into<String>) -> Component {
        Component {
            name: name.into(),
            priority: Priority::High,
            deps: Vec::new(),
            timeout: Duration::from_secs(60),
            retry: DEFAULT_RETRY,
            breaker: None,
            cleanup_timeout: Duration::from_secs(10),
            init: None,
            cleanup: None,
            readiness: None,
            readiness_interval: Duration::from_secs(1),
            readiness_timeout: Duration::from_secs(5),
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component's priority.
    pub fn get_priority(&self) -> Priority {
        self.priority
    }

    /// How much the application cares: a `Critical` component that fails makes the boot NO-GO
    /// (everything already initialized is cleaned up); others make it DEGRADED when
    /// [`allow_degraded`](crate::BootBuilder::allow_degraded) is on (the default), NO-GO otherwise.
    /// `Low` components are also left out of `/health/ready`.
    pub fn priority(mut self, priority: Priority) -> Component {
        self.priority = priority;
        self
    }

    fn add_deps<I>(mut self, names: I, required: bool) -> Component
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        for name in names {
            let name = name.into();
            match self.deps.iter_mut().find(|(n, _)| *n == name) {
                Some((_, r)) => *r |= required,
                None => self.deps.push((name, required)),
            }
        }
        self
    }

    /// Hard dependencies: this component's `init` starts only after each of them is ready, and
    /// if one of them fails this component is SKIPPED.
    pub fn depends_on<I>(self, names: I) -> Component
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.add_deps(names, true)
    }

    /// Soft dependencies: ordering only. This component waits until each of them is ready or
    /// has given up, and starts either way.
    pub fn depends_on_soft<I>(self, names: I) -> Component
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.add_deps(names, false)
    }

    /// Deadline of one attempt, `init` and readiness together. On expiry the `init` future is
    /// dropped and the attempt counts as failed ("did not become ready within 5s").
    pub fn timeout(mut self, timeout: Duration) -> Component {
        self.timeout = timeout;
        self
    }

    /// Retries after the first attempt: `retries(0)` tries once, `retries(3)` up to 4 times.
    pub fn retries(mut self, retries: u32) -> Component {
        self.retry.attempts = retries.saturating_add(1);
        self
    }

    /// The backoff before retry `n` is `min(max, initial · 2ⁿ⁻¹)`, or uniform in
    /// `[0, that]` with jitter (the default).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Component {
        self.retry.backoff = initial;
        self.retry.max_backoff = max.max(initial);
        self
    }

    /// Full jitter on or off (on by default, so replicas do not retry in lockstep).
    pub fn jitter(mut self, jitter: bool) -> Component {
        self.retry.jitter = jitter;
        self
    }

    /// The whole retry policy at once (the engine's type; `attempts` counts the first try).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Component {
        self.retry = policy;
        self
    }

    /// Start breaker: after `failures` consecutive failed attempts, wait `cooldown` before one
    /// more (half-open) attempt instead of the usual backoff.
    pub fn breaker(mut self, failures: u32, cooldown: Duration) -> Component {
        self.breaker = Some(BreakerConfig {
            failures: failures.max(1),
            cooldown,
        });
        self
    }

    /// How long `cleanup` may take before it is cancelled (default 10 s).
    pub fn cleanup_timeout(mut self, timeout: Duration) -> Component {
        self.cleanup_timeout = timeout;
        self
    }

    /// The function that brings the component up; called again for each attempt.
    pub fn init<F, Fut>(mut self, init: F) -> Component
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.init = Some(Arc::new(move || {
            let fut = init();
            Box::pin(async move { fut.await.map_err(|e| error_chain(&*e)) })
        }));
        self
    }

    /// The function that releases what `init` acquired; see [`CheckOutput`] for what it may return.
    pub fn cleanup<F, Fut>(mut self, cleanup: F) -> Component
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: CheckOutput,
    {
        self.cleanup = Some(job(cleanup));
        self
    }

    /// A readiness check polled after `init` succeeded until it passes: fast at first, then
    /// relaxing up to [`readiness_interval`](Component::readiness_interval); then every
    /// `readiness_interval` while the component is up, where three failures in a row make it
    /// `unready` until it passes again. It may return `bool` or a `Result` (see
    /// [`CheckOutput`]).
    pub fn readiness<F, Fut>(mut self, readiness: F) -> Component
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: CheckOutput,
    {
        self.readiness = Some(job(readiness));
        self
    }

    /// The longest pause between two readiness checks at start, and the pause between two
    /// while the component is up (default 1 s).
    pub fn readiness_interval(mut self, interval: Duration) -> Component {
        self.readiness_interval = interval;
        self
    }

    /// How long one readiness check may take before it counts as failed (default 5 s).
    pub fn readiness_timeout(mut self, timeout: Duration) -> Component {
        self.readiness_timeout = timeout;
        self
    }
}

fn job<F, Fut>(f: F) -> Job
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: CheckOutput,
{
    Arc::new(move || {
        let fut = f();
        Box::pin(async move { fut.await.into_check() })
    })
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The functions are opaque closures; say whether each is set.
        f.debug_struct("Component")
            .field("name", &self.name)
            .field("priority", &self.priority)
            .field("deps", &self.deps)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("init", &self.init.is_some())
            .field("readiness", &self.readiness.is_some())
            .field("cleanup", &self.cleanup.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connecting to db")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_chain_appends_unquoted_sources() {
        let e = Outer(std::io::Error::other("refused"));
        assert_eq!(error_chain(&e), "connecting to db: refused");
    }

    #[test]
    fn deps_merge_keeping_the_strongest_edge() {
        let c = Component::new("api")
            .depends_on_soft(["db", "cache"])
            .depends_on(["db"]);
        assert_eq!(
            c.deps,
            [("db".to_string(), true), ("cache".to_string(), false)]
        );
    }

    #[test]
    fn retries_count_after_the_first_attempt() {
        assert_eq!(Component::new("a").retries(0).retry.attempts, 1);
        assert_eq!(Component::new("a").retries(3).retry.attempts, 4);
        assert_eq!(
            Component::new("a").retries(u32::MAX).retry.attempts,
            u32::MAX
        );
    }
}

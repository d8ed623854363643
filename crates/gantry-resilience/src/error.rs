//! The one result shape every primitive's plain async API returns.

use std::error::Error as StdError;
use std::fmt;

/// Either the primitive refused or cut the call (`Rejected`, a value, never a
/// panic), or the call itself failed (`Inner`).
///
/// `R` is the primitive's own rejection type: [`breaker::Rejected`](crate::breaker::Rejected),
/// [`retry`](crate::Retry) returns the inner error directly,
/// [`timeout::Elapsed`](crate::timeout::Elapsed),
/// [`bulkhead::Rejected`](crate::bulkhead::Rejected),
/// [`rate_limit::RateLimited`](crate::rate_limit::RateLimited).
///
/// ```
/// use gantry_resilience::CallError;
/// use gantry_resilience::timeout::Elapsed;
///
/// let e: CallError<Elapsed, std::io::Error> = CallError::Rejected(Elapsed::new());
/// assert!(e.is_rejected());
/// assert!(e.rejected().is_some());
/// let inner: CallError<Elapsed, &str> = CallError::Inner("boom");
/// assert_eq!(inner.into_inner(), Some("boom"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<R, E> {
    /// The primitive did not let the call run, or cut it short.
    Rejected(R),
    /// The call ran and returned this error.
    Inner(E),
}

impl<R, E> CallError<R, E> {
    /// `true` for [`CallError::Rejected`].
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Rejected(_))
    }

    /// The rejection, if this is one.
    pub fn rejected(&self) -> Option<&R> {
        match self {
            CallError::Rejected(r) => Some(r),
            CallError::Inner(_) => None,
        }
    }

    /// The inner error, if this is one.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Rejected(_) => None,
            CallError::Inner(e) => Some(e),
        }
    }
}

impl<R: fmt::Display, E: fmt::Display> fmt::Display for CallError<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected(r) => r.fmt(f),
            CallError::Inner(e) => e.fmt(f),
        }
    }
}

impl<R, E> StdError for CallError<R, E>
where
    R: StdError + 'static,
    E: StdError + 'static,
{
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            CallError::Rejected(r) => Some(r),
            CallError::Inner(e) => Some(e),
        }
    }
}

/// The error type of every tower `Service` in this crate, as in tower itself:
/// rejections are boxed concrete types that callers `downcast_ref`.
///
/// ```
/// use gantry_resilience::BoxError;
/// use gantry_resilience::rate_limit::RateLimited;
/// use std::time::Duration;
///
/// let err: BoxError = Box::new(RateLimited { retry_after: Duration::from_secs(1) });
/// assert!(err.downcast_ref::<RateLimited>().is_some());
/// ```
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A builder was given a setting no primitive can work with.
///
/// ```
/// use gantry_resilience::CircuitBreaker;
///
/// let err = CircuitBreaker::builder().failure_rate_threshold(1.5).build().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "circuit breaker: failure_rate_threshold is 1.5; hint: a ratio in (0, 1], e.g. 0.5 for 50 %",
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{primitive}: {setting} is {value}; hint: {hint}")]
pub struct ConfigError {
    primitive: &'static str,
    setting: &'static str,
    value: String,
    hint: &'static str,
}

impl ConfigError {
    pub(crate) fn new(
        primitive: &'static str,
        setting: &'static str,
        value: impl fmt::Debug,
        hint: &'static str,
    ) -> ConfigError {
        ConfigError {
            primitive,
            setting,
            value: format!("{value:?}"),
            hint,
        }
    }

    /// The setting at fault, as named by its builder method.
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

/// Checks a ratio setting lies in (0, 1].
pub(crate) fn check_ratio(
    primitive: &'static str,
    setting: &'static str,
    value: f64,
) -> Result<(), ConfigError> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            primitive,
            setting,
            value,
            "a ratio in (0, 1], e.g. 0.5 for 50 %",
        ))
    }
}

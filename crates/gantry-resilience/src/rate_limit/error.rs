//! The rejection of a rate-limited call.

use std::time::Duration;

/// No token now; one will be there after `retry_after`.
///
/// ```
/// use gantry_resilience::rate_limit::RateLimited;
/// use gantry_resilience::retry::RetryAfter;
/// use std::time::Duration;
///
/// let r = RateLimited { retry_after: Duration::from_millis(40) };
/// assert_eq!(r.to_string(), "rate limited; retry after 40ms");
/// assert_eq!(RetryAfter::retry_after(&r), Some(Duration::from_millis(40)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited; retry after {retry_after:?}")]
pub struct RateLimited {
    /// Time until enough tokens are back.
    pub retry_after: Duration,
}

impl crate::retry::RetryAfter for RateLimited {
    fn retry_after(&self) -> Option<Duration> {
        Some(self.retry_after)
    }
}

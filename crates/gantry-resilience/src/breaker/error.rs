//! Why a breaker refused a call: a value, never a panic.

use std::time::Duration;

/// A call the breaker did not let through.
///
/// ```
/// use gantry_resilience::breaker::Rejected;
/// use std::time::Duration;
///
/// let r = Rejected::Open { retry_after: Duration::from_secs(5) };
/// assert_eq!(r.retry_after(), Some(Duration::from_secs(5)));
/// assert_eq!(r.to_string(), "circuit breaker is open; retry after 5s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// Open: no call goes through until `retry_after` has passed, then a few trials will.
    #[error("circuit breaker is open; retry after {retry_after:?}")]
    Open {
        /// Time left until the breaker lets trial calls through.
        retry_after: Duration,
    },
    /// Half-open, and every trial permit is out: the trials decide shortly.
    #[error("circuit breaker is half-open and all trial calls are in flight")]
    HalfOpenFull,
    /// Opened by hand; it stays open until someone changes it.
    #[error("circuit breaker was forced open")]
    ForcedOpen,
}

impl Rejected {
    /// When trying again could help, if the breaker knows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Rejected::Open { retry_after } => Some(*retry_after),
            Rejected::HalfOpenFull | Rejected::ForcedOpen => None,
        }
    }
}

//! The error of a call cut at its time limit.

use std::fmt;
use std::time::Duration;

/// The call took longer than the limit and was dropped.
///
/// ```
/// use gantry_resilience::timeout::Elapsed;
/// use std::time::Duration;
/// assert_eq!(Elapsed::after(Duration::from_millis(250)).to_string(), "timed out after 250ms");
/// assert_eq!(Elapsed::new().to_string(), "timed out");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Elapsed {
    /// The limit that was hit, when known.
    pub limit: Option<Duration>,
}

impl Elapsed {
    /// A timeout of unknown limit.
    pub fn new() -> Elapsed {
        Elapsed { limit: None }
    }

    /// A timeout at `limit`.
    pub fn after(limit: Duration) -> Elapsed {
        Elapsed { limit: Some(limit) }
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Some(d) => write!(f, "timed out after {d:?}"),
            None => f.write_str("timed out"),
        }
    }
}

impl std::error::Error for Elapsed {}

impl crate::retry::RetryAfter for Elapsed {}

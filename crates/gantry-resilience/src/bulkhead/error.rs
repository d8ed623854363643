//! Why a bulkhead refused a call.

use std::time::Duration;

/// A call the bulkhead did not run.
///
/// ```
/// use gantry_resilience::bulkhead::Rejected;
/// assert_eq!(
///     Rejected::Full { max_concurrent: 4 }.to_string(),
///     "bulkhead is full: 4 calls in flight and no queue place free",
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// Every slot and every queue place is taken.
    #[error("bulkhead is full: {max_concurrent} calls in flight and no queue place free")]
    Full {
        /// The slot limit.
        max_concurrent: u32,
    },
    /// Waited the longest allowed in the queue without getting a slot.
    #[error("bulkhead queue wait timed out after {waited:?}")]
    WaitTimedOut {
        /// How long it waited.
        waited: Duration,
    },
}

impl crate::retry::RetryAfter for Rejected {}

//! How a finished call counts: success, failure, or not at all.

/// What a finished call means to a breaker.
///
/// ```
/// use gantry_resilience::Outcome;
///
/// let outcome = |r: &Result<u16, ()>| match r {
///     Ok(status) if *status >= 500 => Outcome::Failure,
///     Ok(_) => Outcome::Success,
///     Err(()) => Outcome::Ignore,
/// };
/// assert_eq!(outcome(&Ok(503)), Outcome::Failure);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call worked (it may still count as slow).
    Success,
    /// The call failed and counts toward the failure rate.
    Failure,
    /// The call says nothing about the callee's health (a client-side error,
    /// a cancellation): it is not counted, and a half-open trial slot it held
    /// is handed back.
    Ignore,
}

/// Classifies a call's result for a breaker's tower layer.
///
/// Implemented for [`ErrorIsFailure`] (the default) and for any
/// `Fn(&Result<T, E>) -> Outcome + Clone`.
///
/// ```
/// use gantry_resilience::{Classify, ErrorIsFailure, Outcome};
///
/// assert_eq!(ErrorIsFailure.classify(&Err::<(), _>("boom")), Outcome::Failure);
/// let http = |r: &Result<u16, ()>| if matches!(r, Ok(s) if *s < 500) { Outcome::Success } else { Outcome::Failure };
/// assert_eq!(http.classify(&Ok(502)), Outcome::Failure);
/// ```
pub trait Classify<T, E> {
    /// The outcome of `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

/// The default classifier: `Ok` is a success, `Err` a failure.
///
/// ```
/// use gantry_resilience::{Classify, ErrorIsFailure, Outcome};
/// assert_eq!(ErrorIsFailure.classify(&Ok::<_, ()>(1)), Outcome::Success);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorIsFailure;

impl<T, E> Classify<T, E> for ErrorIsFailure {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

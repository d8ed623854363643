//! Permission for one call, borrowed from the breaker or owning a handle to it.

use super::*;

/// Permission to make one call; report how it went with
/// [`record`](Permit::record). Dropping it unreported counts as
/// [`Outcome::Ignore`].
///
/// ```
/// use gantry_resilience::CircuitBreaker;
///
/// let breaker = CircuitBreaker::builder().build()?;
/// if let Ok(permit) = breaker.try_acquire() {
///     let worked = true; // make the call here
///     if worked { permit.success() } else { permit.failure() }
/// }
/// assert_eq!(breaker.snapshot().successes, 1);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[must_use = "a permit dropped without recording counts as ignored"]
pub struct Permit<'a> {
    pub(super) inner: &'a Inner,
    pub(super) word: u64,
    pub(super) start: Nanos,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("state", &state_of(self.word))
            .field("start", &self.start)
            .finish()
    }
}

impl Permit<'_> {
    /// Reports how the call went.
    #[inline]
    pub fn record(self, outcome: Outcome) {
        // ManuallyDrop so that Drop (which records Ignore) does not run too.
        let this = ManuallyDrop::new(self);
        this.inner.record(this.word, this.start, outcome);
    }

    /// `record(Outcome::Success)`.
    #[inline]
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// `record(Outcome::Failure)`.
    #[inline]
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Whether this is one of the half-open breaker's trial calls.
    pub fn is_trial(&self) -> bool {
        tag(self.word) == HALF_OPEN
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.inner.record(self.word, self.start, Outcome::Ignore);
    }
}

/// A [`Permit`] that holds its own handle to the breaker, for futures that
/// must be `'static` (the tower service uses it).
///
/// ```
/// use gantry_resilience::{CircuitBreaker, Outcome};
///
/// let breaker = CircuitBreaker::builder().build()?;
/// let permit = breaker.try_acquire_owned().unwrap();
/// std::thread::spawn(move || permit.record(Outcome::Success)).join().unwrap();
/// assert_eq!(breaker.snapshot().successes, 1);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
#[must_use = "a permit dropped without recording counts as ignored"]
pub struct OwnedPermit {
    pub(super) breaker: CircuitBreaker,
    pub(super) word: u64,
    pub(super) start: Nanos,
    pub(super) recorded: bool,
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("state", &state_of(self.word))
            .field("start", &self.start)
            .finish()
    }
}

impl OwnedPermit {
    /// Reports how the call went.
    pub fn record(mut self, outcome: Outcome) {
        self.recorded = true;
        self.breaker.inner.record(self.word, self.start, outcome);
    }

    /// Whether this is one of the half-open breaker's trial calls.
    pub fn is_trial(&self) -> bool {
        tag(self.word) == HALF_OPEN
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker
                .inner
                .record(self.word, self.start, Outcome::Ignore);
        }
    }
}

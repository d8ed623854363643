//! Exponential backoff with the jitter variants of the AWS Architecture Blog
//! ("Exponential Backoff And Jitter", Marc Brooker, 2015).

use std::time::Duration;

use crate::clock::duration_to_nanos;
use crate::error::ConfigError;
use crate::rng::SplitMix64;

/// How a delay is randomised (`n` is the retry number, from 0; `temp =
/// min(cap, base * 2^n)`).
///
/// | variant | delay |
/// | --- | --- |
/// | `None` | `temp` |
/// | `Full` | `random_between(0, temp)` |
/// | `Equal` | `temp / 2 + random_between(0, temp / 2)` |
/// | `Decorrelated` | `min(cap, random_between(base, previous * 3))`, `previous` starting at `base` |
///
/// `Full` spreads retries the most; `Decorrelated` grows with less work per
/// caller; `None` is for tests that must be deterministic.
///
/// ```
/// use gantry_resilience::retry::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(2)).jitter(Jitter::None);
/// let delays: Vec<_> = b.delays(0).take(6).collect();
/// assert_eq!(delays.last(), Some(&Duration::from_secs(2)));
/// assert_eq!(delays[0..3], [100, 200, 400].map(Duration::from_millis));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// No randomness: `min(cap, base * 2^n)`.
    None,
    /// Uniform in `[0, temp]`.
    #[default]
    Full,
    /// Uniform in `[temp / 2, temp]`.
    Equal,
    /// Uniform in `[base, previous * 3]`, capped.
    Decorrelated,
}

/// The delays between attempts: a base, a cap, and a [`Jitter`].
///
/// ```
/// use gantry_resilience::retry::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let b = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)).jitter(Jitter::Equal);
/// for (n, d) in b.delays(42).take(10).enumerate() {
///     let temp = (Duration::from_millis(10) * 2u32.pow(n as u32)).min(Duration::from_secs(1));
///     assert!(d >= temp / 2 && d <= temp);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: u64,
    cap: u64,
    jitter: Jitter,
}

impl Backoff {
    /// Doubling delays from `base`, never above `cap`, with [`Jitter::Full`].
    pub fn exponential(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base: duration_to_nanos(base),
            cap: duration_to_nanos(cap),
            jitter: Jitter::Full,
        }
    }

    /// The same base every time (with [`Jitter::None`]: a fixed delay).
    pub fn constant(delay: Duration) -> Backoff {
        Backoff::exponential(delay, delay).jitter(Jitter::None)
    }

    /// Picks the jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// The base delay.
    pub fn base(&self) -> Duration {
        Duration::from_nanos(self.base)
    }

    /// The cap.
    pub fn cap(&self) -> Duration {
        Duration::from_nanos(self.cap)
    }

    /// The jitter.
    pub fn jitter_kind(&self) -> Jitter {
        self.jitter
    }

    pub(crate) fn validate(&self, primitive: &'static str) -> Result<(), ConfigError> {
        if self.cap < self.base {
            return Err(ConfigError::new(
                primitive,
                "backoff",
                self,
                "the cap must be at least the base",
            ));
        }
        Ok(())
    }

    /// The delays this backoff yields for a given RNG seed: an endless,
    /// deterministic iterator, for hosts that schedule retries themselves and
    /// for tests.
    pub fn delays(&self, seed: u64) -> Delays {
        Delays {
            backoff: *self,
            retry: 0,
            previous: self.base,
            rng: SplitMix64::new(seed),
        }
    }

    /// The delay before retry number `retry` (0-based); `previous` is the
    /// last delay, used by [`Jitter::Decorrelated`].
    pub(crate) fn delay(&self, retry: u32, previous: u64, rng: &mut SplitMix64) -> u64 {
        let temp = self
            .base
            .checked_shl(retry.min(63))
            .filter(|d| d >> retry.min(63) == self.base);
        let temp = temp.unwrap_or(u64::MAX).min(self.cap);
        match self.jitter {
            Jitter::None => temp,
            Jitter::Full => rng.between(0, temp),
            Jitter::Equal => temp / 2 + rng.between(0, temp - temp / 2),
            Jitter::Decorrelated => rng
                .between(self.base, previous.saturating_mul(3))
                .min(self.cap),
        }
    }
}

/// The iterator returned by [`Backoff::delays`].
///
/// ```
/// use gantry_resilience::retry::Backoff;
/// use std::time::Duration;
///
/// let b = Backoff::exponential(Duration::from_millis(1), Duration::from_millis(8));
/// let a: Vec<_> = b.delays(7).take(5).collect();
/// let again: Vec<_> = b.delays(7).take(5).collect();
/// assert_eq!(a, again, "same seed, same delays");
/// ```
#[derive(Debug, Clone)]
pub struct Delays {
    backoff: Backoff,
    retry: u32,
    previous: u64,
    rng: SplitMix64,
}

impl Delays {
    pub(crate) fn next_nanos(&mut self) -> u64 {
        let d = self.backoff.delay(self.retry, self.previous, &mut self.rng);
        self.retry = self.retry.saturating_add(1);
        self.previous = d;
        d
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_nanos(self.next_nanos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_jitter_doubles_then_caps() {
        let b = Backoff::exponential(Duration::from_nanos(3), Duration::from_nanos(20))
            .jitter(Jitter::None);
        let d: Vec<u64> = b.delays(0).take(5).map(|d| d.as_nanos() as u64).collect();
        assert_eq!(d, [3, 6, 12, 20, 20]);
    }

    #[test]
    fn huge_retry_numbers_saturate_at_the_cap() {
        let b = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60))
            .jitter(Jitter::None);
        let mut rng = SplitMix64::new(1);
        assert_eq!(b.delay(200, 0, &mut rng), 60_000_000_000);
        assert_eq!(b.delay(63, 0, &mut rng), 60_000_000_000);
    }

    #[test]
    fn cap_below_base_is_refused() {
        let b = Backoff::exponential(Duration::from_secs(2), Duration::from_secs(1));
        assert!(b.validate("retry").is_err());
    }
}

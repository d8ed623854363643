//! A tiny seeded PRNG (SplitMix64) so that retry jitter is reproducible from `EngineOptions::seed`.

use std::time::Duration;

/// SplitMix64: small, fast, and good enough for jitter; the point is that
/// the same seed replays the same boot, not cryptographic quality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is determined by `seed`.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `[0, bound]`, both ends included.
    ///
    /// Uses the multiply-shift reduction rather than `%` so that the result
    /// has no visible modulo bias for large bounds.
    pub fn up_to(&mut self, bound: u64) -> u64 {
        if bound == u64::MAX {
            return self.next_u64();
        }
        let wide = u128::from(self.next_u64()) * (u128::from(bound) + 1);
        u64::try_from(wide >> 64).unwrap_or(bound)
    }

    /// A uniform duration in `[0, cap]` with nanosecond resolution.
    pub fn duration_up_to(&mut self, cap: Duration) -> Duration {
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.up_to(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }

    #[test]
    fn bounded_values_stay_in_range() {
        let mut r = SplitMix64::new(7);
        for bound in [0, 1, 2, 10, 1000, u64::MAX - 1, u64::MAX] {
            for _ in 0..200 {
                assert!(r.up_to(bound) <= bound);
            }
        }
        assert_eq!(r.duration_up_to(Duration::ZERO), Duration::ZERO);
    }
}

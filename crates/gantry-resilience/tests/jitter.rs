//! Property tests: every jitter stays inside its AWS-blog bounds for any
//! base, cap, seed and retry number.

use std::time::Duration;

use gantry_resilience::retry::{Backoff, Jitter};
use proptest::prelude::*;

/// `min(cap, base * 2^n)` without overflow.
fn temp(base: u64, cap: u64, n: u32) -> u64 {
    base.checked_mul(1u64.checked_shl(n).unwrap_or(0))
        .filter(|_| n < 64)
        .unwrap_or(u64::MAX)
        .min(cap)
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

fn backoff() -> impl Strategy<Value = (u64, u64)> {
    // base in [1 ns, 10 s], cap in [base, base + 1 h].
    (1u64..10_000_000_000).prop_flat_map(|base| (Just(base), base..base + 3_600_000_000_000))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_jitter_is_exactly_the_capped_exponential((base, cap) in backoff(), seed in any::<u64>()) {
        let b = Backoff::exponential(Duration::from_nanos(base), Duration::from_nanos(cap)).jitter(Jitter::None);
        for (n, d) in b.delays(seed).take(70).enumerate() {
            prop_assert_eq!(ns(d), temp(base, cap, n as u32));
        }
    }

    #[test]
    fn full_jitter_is_between_zero_and_the_capped_exponential((base, cap) in backoff(), seed in any::<u64>()) {
        let b = Backoff::exponential(Duration::from_nanos(base), Duration::from_nanos(cap)).jitter(Jitter::Full);
        for (n, d) in b.delays(seed).take(70).enumerate() {
            prop_assert!(ns(d) <= temp(base, cap, n as u32));
        }
    }

    #[test]
    fn equal_jitter_keeps_at_least_half((base, cap) in backoff(), seed in any::<u64>()) {
        let b = Backoff::exponential(Duration::from_nanos(base), Duration::from_nanos(cap)).jitter(Jitter::Equal);
        for (n, d) in b.delays(seed).take(70).enumerate() {
            let t = temp(base, cap, n as u32);
            prop_assert!(ns(d) >= t / 2 && ns(d) <= t, "retry {}: {} not in [{}, {}]", n, ns(d), t / 2, t);
        }
    }

    #[test]
    fn decorrelated_jitter_stays_between_base_and_cap_and_at_most_triples((base, cap) in backoff(), seed in any::<u64>()) {
        let b = Backoff::exponential(Duration::from_nanos(base), Duration::from_nanos(cap)).jitter(Jitter::Decorrelated);
        let mut previous = base;
        for d in b.delays(seed).take(70) {
            let d = ns(d);
            prop_assert!(d >= base && d <= cap, "{} not in [{}, {}]", d, base, cap);
            prop_assert!(d <= previous.saturating_mul(3));
            previous = d;
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays((base, cap) in backoff(), seed in any::<u64>()) {
        let b = Backoff::exponential(Duration::from_nanos(base), Duration::from_nanos(cap)).jitter(Jitter::Decorrelated);
        let one: Vec<_> = b.delays(seed).take(20).collect();
        let two: Vec<_> = b.delays(seed).take(20).collect();
        prop_assert_eq!(one, two);
    }
}

#[test]
fn full_jitter_actually_spreads() {
    // Not a bound but a sanity check that jitter is not stuck at one end.
    let b = Backoff::exponential(Duration::from_millis(100), Duration::from_millis(100))
        .jitter(Jitter::Full);
    let delays: Vec<u64> = b.delays(1).take(1000).map(ns).collect();
    let low = delays.iter().filter(|&&d| d < 50_000_000).count();
    assert!(
        (350..=650).contains(&low),
        "{low} of 1000 below the midpoint"
    );
}

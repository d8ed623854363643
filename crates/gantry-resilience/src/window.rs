//! A lock-free sliding time window of counters, split into buckets: the
//! breaker's time-based window and the retry budget both sit on it.
//!
//! The window is `buckets` slots of `length / buckets` each. A slot stores
//! which period it holds (its `epoch`) and `K` counters. Adding to a slot that
//! still holds an older period first recycles it: one thread wins a CAS on the
//! epoch to a `RESETTING` marker, zeroes the counters and publishes the new
//! epoch; the others wait a few spins for that. An add that lands on a slot
//! already recycled for a newer period is counted there (the caller's clock
//! read was a hair behind another thread's), which only blurs a bucket edge.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Nanos, duration_to_nanos};

/// Marks a slot that a thread is recycling right now.
const RESETTING: u64 = u64::MAX;
/// Epoch of a slot that holds nothing (epochs are stored as `period + 1`).
const EMPTY: u64 = 0;
/// How long an add waits for another thread's recycle before dropping its
/// sample: the recycler is a handful of stores away unless it was preempted,
/// and a lost sample beats a spinning caller.
const MAX_SPINS: u32 = 128;

#[derive(Debug)]
struct Slot<const K: usize> {
    epoch: AtomicU64,
    counts: [AtomicU64; K],
}

#[derive(Debug)]
pub(crate) struct Windowed<const K: usize> {
    slots: Box<[Slot<K>]>,
    width: u64,
}

impl<const K: usize> Windowed<K> {
    /// `buckets` is clamped to at least 1, each at least 1 ns wide.
    pub(crate) fn new(length: Duration, buckets: u32) -> Windowed<K> {
        let buckets = buckets.max(1);
        let width = (duration_to_nanos(length) / u64::from(buckets)).max(1);
        let slots = (0..buckets)
            .map(|_| Slot {
                epoch: AtomicU64::new(EMPTY),
                counts: std::array::from_fn(|_| AtomicU64::new(0)),
            })
            .collect();
        Windowed { slots, width }
    }

    fn period(&self, now: Nanos) -> u64 {
        now.as_nanos() / self.width + 1
    }

    /// Adds `deltas` to the bucket of `now`.
    #[inline]
    pub(crate) fn add(&self, now: Nanos, deltas: [u64; K]) {
        let period = self.period(now);
        // The modulo is by the bucket count, a small constant the caller chose.
        let slot = &self.slots[(period % self.slots.len() as u64) as usize];
        let mut spins = 0;
        loop {
            let epoch = slot.epoch.load(Ordering::Acquire);
            if epoch == period || (epoch > period && epoch != RESETTING) {
                break;
            }
            if epoch == RESETTING {
                spins += 1;
                if spins > MAX_SPINS {
                    return;
                }
                std::hint::spin_loop();
                continue;
            }
            if slot
                .epoch
                .compare_exchange(epoch, RESETTING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                for c in &slot.counts {
                    c.store(0, Ordering::Relaxed);
                }
                slot.epoch.store(period, Ordering::Release);
                break;
            }
        }
        for (c, d) in slot.counts.iter().zip(deltas) {
            if d != 0 {
                c.fetch_add(d, Ordering::Relaxed);
            }
        }
    }

    /// The counters summed over the buckets that are still inside the window at `now`.
    pub(crate) fn sum(&self, now: Nanos) -> [u64; K] {
        let period = self.period(now);
        let n = self.slots.len() as u64;
        let mut out = [0; K];
        for slot in self.slots.iter() {
            let epoch = slot.epoch.load(Ordering::Acquire);
            // Newer than `period` is in: another thread's clock was ahead of ours.
            if epoch == EMPTY || epoch == RESETTING || epoch.saturating_add(n) <= period {
                continue;
            }
            for (o, c) in out.iter_mut().zip(&slot.counts) {
                *o += c.load(Ordering::Relaxed);
            }
        }
        out
    }

    /// Forgets everything.
    pub(crate) fn reset(&self) {
        for slot in self.slots.iter() {
            slot.epoch.store(EMPTY, Ordering::Release);
            for c in &slot.counts {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Nanos {
        Nanos::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn buckets_expire_whole() {
        // 1 s window in 10 buckets of 100 ms.
        let w: Windowed<2> = Windowed::new(Duration::from_secs(1), 10);
        w.add(at(0), [1, 1]);
        w.add(at(50), [1, 0]);
        w.add(at(950), [1, 0]);
        assert_eq!(w.sum(at(999)), [3, 1]);
        // At 1000 ms the first bucket (0..100 ms) has left the window.
        assert_eq!(w.sum(at(1000)), [1, 0]);
        // The 900..1000 ms bucket (holding 950) leaves when 1900 ms begins.
        assert_eq!(w.sum(at(1899)), [1, 0]);
        assert_eq!(w.sum(at(1900)), [0, 0]);
    }

    #[test]
    fn recycled_slot_starts_from_zero() {
        let w: Windowed<1> = Windowed::new(Duration::from_secs(1), 10);
        w.add(at(10), [5]);
        // Same slot index one full window later.
        w.add(at(1010), [2]);
        assert_eq!(w.sum(at(1010)), [2]);
    }

    #[test]
    fn reset_forgets() {
        let w: Windowed<1> = Windowed::new(Duration::from_secs(1), 4);
        w.add(at(10), [5]);
        w.reset();
        assert_eq!(w.sum(at(10)), [0]);
    }

    #[test]
    fn concurrent_adds_are_all_counted_within_one_bucket() {
        let w: Windowed<1> = Windowed::new(Duration::from_secs(10), 10);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        w.add(at(5), [1]);
                    }
                });
            }
        });
        assert_eq!(w.sum(at(5)), [20_000]);
    }
}

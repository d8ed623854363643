//! The breaker's sliding windows: the last N calls (a lock-free bitmap ring)
//! or the last T of time (lock-free buckets, see `crate::window`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::Nanos;
use crate::window::Windowed;

/// Which calls a closed breaker judges the failure and slow-call rates on.
///
/// ```
/// use gantry_resilience::breaker::SlidingWindow;
/// use std::time::Duration;
///
/// let last_100_calls = SlidingWindow::Count { size: 100 };
/// // The last 60 s in 60 buckets of 1 s: the oldest second drops out whole.
/// let last_minute = SlidingWindow::Time { length: Duration::from_secs(60), buckets: 60 };
/// assert_ne!(last_100_calls, last_minute);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `size` recorded calls. The closed-state path is a few atomic
    /// operations with no clock read unless slow calls are tracked.
    Count {
        /// How many calls; at least 1.
        size: u32,
    },
    /// The calls of the last `length`, kept in `buckets` buckets of
    /// `length / buckets`; needs a clock read per call.
    Time {
        /// How far back; at least one nanosecond per bucket.
        length: Duration,
        /// How finely the window slides; at least 1.
        buckets: u32,
    },
}

/// Calls, failures and slow calls currently in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow, track_slow: bool) -> Window {
        match kind {
            SlidingWindow::Count { size } => Window::Count(CountWindow::new(size, track_slow)),
            SlidingWindow::Time { length, buckets } => {
                Window::Time(TimeWindow::new(length, buckets))
            }
        }
    }

    /// Empties the window; `calls` is the breaker's running call counter, the
    /// count window's new starting point.
    pub(crate) fn reset(&self, calls: u64) {
        match self {
            Window::Count(w) => w.reset(calls),
            Window::Time(w) => w.reset(),
        }
    }

    pub(crate) fn tally(&self, calls: u64, now: Nanos) -> Tally {
        match self {
            Window::Count(w) => w.tally(calls),
            Window::Time(w) => {
                let [calls, failures, slow] = w.buckets.sum(now);
                Tally {
                    calls,
                    failures,
                    slow,
                }
            }
        }
    }
}

/// The calls of the last `length`, in buckets.
///
/// Unlike a count window, a time window's failure rate can rise without a
/// new failure (old successes expire) and its call count can reach the
/// minimum on a success. Summing every bucket on every success would double
/// the cost of the hot path, so a success triggers an evaluation only while
/// the last evaluation found fewer calls than the minimum (`below_minimum`);
/// a rate that rises only through expiry is acted on at the next failure or
/// slow call.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Windowed<3>,
    below_minimum: AtomicBool,
}

impl TimeWindow {
    fn new(length: Duration, buckets: u32) -> TimeWindow {
        TimeWindow {
            buckets: Windowed::new(length, buckets),
            below_minimum: AtomicBool::new(true),
        }
    }

    #[inline]
    pub(crate) fn add(&self, now: Nanos, failed: bool, slow: bool) {
        self.buckets
            .add(now, [1, u64::from(failed), u64::from(slow)]);
    }

    #[inline]
    pub(crate) fn below_minimum(&self) -> bool {
        self.below_minimum.load(Ordering::Relaxed)
    }

    pub(crate) fn set_below_minimum(&self, below: bool) {
        if self.below_minimum() != below {
            self.below_minimum.store(below, Ordering::Relaxed);
        }
    }

    fn reset(&self) {
        self.buckets.reset();
        self.below_minimum.store(true, Ordering::Relaxed);
    }
}

/// The last `size` outcomes as two bitmaps (failed, slow), indexed by the
/// breaker's running call counter modulo `size`.
///
/// Counts come from popcounts of the bitmaps, never from separate running
/// totals, so a race between two writers can at worst leave one stale bit
/// that the ring overwrites within `size` calls; totals can never drift.
#[derive(Debug)]
pub(crate) struct CountWindow {
    size: u64,
    failed: Box<[AtomicU64]>,
    slow: Box<[AtomicU64]>,
    /// The call counter's value when the window was last emptied.
    start: AtomicU64,
}

fn bitmap(bits: u64) -> Box<[AtomicU64]> {
    (0..bits.div_ceil(64)).map(|_| AtomicU64::new(0)).collect()
}

/// Sets or clears one bit, writing only when it changes: in a healthy service
/// almost every call overwrites "success" with "success", and a plain load
/// keeps that cache line shared between cores instead of bouncing it.
#[inline]
fn put(word: &AtomicU64, bit: u64, on: bool) {
    let current = word.load(Ordering::Relaxed) & bit != 0;
    if current != on {
        if on {
            word.fetch_or(bit, Ordering::Relaxed);
        } else {
            word.fetch_and(!bit, Ordering::Relaxed);
        }
    }
}

fn popcount(words: &[AtomicU64]) -> u64 {
    words
        .iter()
        .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
        .sum()
}

impl CountWindow {
    fn new(size: u32, track_slow: bool) -> CountWindow {
        let size = u64::from(size.max(1));
        CountWindow {
            size,
            failed: bitmap(size),
            slow: if track_slow { bitmap(size) } else { bitmap(0) },
            start: AtomicU64::new(0),
        }
    }

    /// Records call number `index` (the call counter before its increment).
    #[inline]
    pub(crate) fn record(&self, index: u64, failed: bool, slow: bool) {
        let pos = index % self.size;
        let (word, bit) = ((pos / 64) as usize, 1u64 << (pos % 64));
        put(&self.failed[word], bit, failed);
        if let Some(w) = self.slow.get(word) {
            put(w, bit, slow);
        }
    }

    /// Whether call number `index` is the one that brings the window to
    /// `minimum` calls: the one success that can make a rate actionable.
    #[inline]
    pub(crate) fn reaches(&self, index: u64, minimum: u64) -> bool {
        index
            .wrapping_sub(self.start.load(Ordering::Relaxed))
            .wrapping_add(1)
            == minimum
    }

    fn reset(&self, calls: u64) {
        for w in self.failed.iter().chain(self.slow.iter()) {
            w.store(0, Ordering::Relaxed);
        }
        self.start.store(calls, Ordering::Release);
    }

    /// `calls` is the call counter after the latest increment.
    pub(crate) fn tally(&self, calls: u64) -> Tally {
        let in_window = calls
            .saturating_sub(self.start.load(Ordering::Acquire))
            .min(self.size);
        Tally {
            calls: in_window,
            failures: popcount(&self.failed),
            slow: popcount(&self.slow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_forgets_the_oldest_outcome() {
        let w = CountWindow::new(3, true);
        w.record(0, true, false);
        w.record(1, false, true);
        w.record(2, false, false);
        assert_eq!(
            w.tally(3),
            Tally {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        // Call 3 overwrites call 0's failure.
        w.record(3, false, false);
        assert_eq!(
            w.tally(4),
            Tally {
                calls: 3,
                failures: 0,
                slow: 1
            }
        );
    }

    #[test]
    fn reset_counts_from_the_new_start() {
        let w = CountWindow::new(100, false);
        for i in 0..10 {
            w.record(i, true, false);
        }
        w.reset(10);
        w.record(10, false, false);
        assert_eq!(
            w.tally(11),
            Tally {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
    }

    #[test]
    fn sizes_past_one_word_use_every_bit() {
        let w = CountWindow::new(130, false);
        for i in 0..130 {
            w.record(i, true, false);
        }
        assert_eq!(w.tally(130).failures, 130);
    }
}

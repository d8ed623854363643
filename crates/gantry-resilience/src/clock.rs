//! Injected monotonic clocks: the cores never read the OS clock themselves.
//!
//! Every primitive takes an `Arc<dyn Clock>`, so tests drive time with a
//! [`ManualClock`] (no sleeps), tower tests use [`TokioClock`] under paused
//! time, and production picks [`SystemClock`] or, where the clock read itself
//! shows up in a profile, [`CoarseClock`].

use std::cell::Cell;
use std::fmt;
use std::ops::{Add, Sub};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// A point on a monotonic clock, in nanoseconds since that clock's own epoch.
///
/// Only differences between two `Nanos` of the same clock mean anything. A
/// `u64` of nanoseconds lasts 584 years, and it fits one atomic word, which is
/// why the cores store time as `Nanos` rather than `std::time::Instant`.
///
/// ```
/// use gantry_resilience::Nanos;
/// use std::time::Duration;
///
/// let t0 = Nanos::from_nanos(1_000);
/// let t1 = t0 + Duration::from_micros(2);
/// assert_eq!(t1.as_nanos(), 3_000);
/// assert_eq!(t1 - t0, Duration::from_micros(2));
/// assert_eq!(t0.saturating_duration_since(t1), Duration::ZERO);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(u64);

impl Nanos {
    /// The clock's epoch.
    pub const ZERO: Nanos = Nanos(0);

    /// Wraps a raw nanosecond count.
    pub const fn from_nanos(nanos: u64) -> Nanos {
        Nanos(nanos)
    }

    /// The raw nanosecond count.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self - earlier`, or zero when `earlier` is later (clocks shared
    /// between threads can be read slightly out of order).
    pub fn saturating_duration_since(self, earlier: Nanos) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Debug for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", Duration::from_nanos(self.0))
    }
}

impl Add<Duration> for Nanos {
    type Output = Nanos;
    /// Saturates instead of overflowing: "forever" stays forever.
    fn add(self, rhs: Duration) -> Nanos {
        Nanos(self.0.saturating_add(duration_to_nanos(rhs)))
    }
}

impl Sub<Nanos> for Nanos {
    type Output = Duration;
    /// Saturating, like [`Nanos::saturating_duration_since`].
    fn sub(self, rhs: Nanos) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// Converts a `Duration` to whole nanoseconds, saturating at `u64::MAX`.
pub(crate) fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A monotonic clock.
///
/// Implementations must never go backwards for a single reader; readers on
/// different threads may see values a little out of order, and every core
/// uses saturating arithmetic so that is harmless.
///
/// ```
/// use gantry_resilience::{Clock, ManualClock, Nanos};
/// use std::time::Duration;
///
/// fn deadline(clock: &dyn Clock, after: Duration) -> Nanos {
///     clock.now() + after
/// }
/// let clock = ManualClock::new();
/// assert_eq!(deadline(&clock, Duration::from_secs(1)).as_nanos(), 1_000_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Nanos;
}

/// The OS monotonic clock (`std::time::Instant`, a vDSO `clock_gettime` on
/// Linux), measured from the first time any `SystemClock` was read in this
/// process.
///
/// ```
/// use gantry_resilience::{Clock, SystemClock};
///
/// let clock = SystemClock;
/// let a = clock.now();
/// let b = clock.now();
/// assert!(b >= a);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

fn process_epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

impl Clock for SystemClock {
    fn now(&self) -> Nanos {
        let epoch = process_epoch();
        Nanos(duration_to_nanos(
            std::time::Instant::now().saturating_duration_since(epoch),
        ))
    }
}

/// A clock that only moves when told to: the clock for state-machine tests.
///
/// Clones share the same time.
///
/// ```
/// use gantry_resilience::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let handle = clock.clone();
/// handle.advance(Duration::from_millis(250));
/// assert_eq!(clock.now().as_nanos(), 250_000_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at its epoch, [`Nanos::ZERO`].
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let by = duration_to_nanos(by);
        // fetch_update rather than fetch_add so a huge advance saturates instead of wrapping.
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(by))
            });
    }

    /// Sets the time; refuses (returns `false`) to go backwards, because no
    /// core is written for a clock that does.
    pub fn set(&self, to: Nanos) -> bool {
        self.now.fetch_max(to.0, Ordering::AcqRel) <= to.0
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        Nanos(self.now.load(Ordering::Acquire))
    }
}

/// tokio's clock (`tokio::time::Instant`), so breakers and rate limiters obey
/// `tokio::time::pause` / `advance` in tests exactly like the tokio timers
/// that [`Timeout`](crate::Timeout) and [`Retry`](crate::Retry) use.
///
/// Measured from the moment it was created; clones share that origin.
///
/// ```
/// use gantry_resilience::{Clock, TokioClock};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = TokioClock::new();
/// tokio::time::advance(Duration::from_secs(3)).await;
/// assert_eq!(clock.now().as_nanos(), 3_000_000_000);
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose epoch is now.
    pub fn new() -> TokioClock {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Nanos {
        Nanos(duration_to_nanos(
            tokio::time::Instant::now().saturating_duration_since(self.origin),
        ))
    }
}

thread_local! {
    // Per-thread rather than per-clock, so counting reads never writes a
    // cache line that other threads share.
    static COARSE_READS: Cell<u32> = const { Cell::new(0) };
}

/// A cached clock: `now()` is one atomic load of the last refreshed time.
///
/// The cache is refreshed in up to three ways, all optional:
///
/// * **per N reads**: every N-th `now()` *on each thread* reads the
///   [`SystemClock`] and publishes it (`refresh_every(n)`, `0` turns it off).
///   Staleness is bounded in reads, not time — a caller that reads once a
///   minute would see minutes-old time — so use it only on busy paths, or
///   together with a ticker;
/// * **a background tick**: [`CoarseClock::start_ticker`] runs a thread that
///   refreshes every `period`, bounding staleness to about one period; the
///   returned [`Ticker`] stops and joins the thread when dropped;
/// * **by hand**: [`CoarseClock::tick`], e.g. from a host's own timer.
///
/// The published value only ever moves forward (`fetch_max`), so it stays
/// monotonic across threads.
///
/// ```
/// use gantry_resilience::{Clock, CoarseClock};
/// use std::time::Duration;
///
/// let clock = CoarseClock::new().refresh_every(0); // only ticks move it
/// let before = clock.now();
/// clock.tick();
/// assert!(clock.now() >= before);
///
/// let ticking = CoarseClock::new();
/// let ticker = ticking.start_ticker(Duration::from_millis(1))?;
/// drop(ticker); // stops and joins the background thread
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CoarseClock {
    inner: Arc<CoarseInner>,
}

#[derive(Debug)]
struct CoarseInner {
    cached: AtomicU64,
    refresh_every: u32,
}

impl CoarseClock {
    /// The default for [`CoarseClock::refresh_every`]: a vDSO read per 64 is
    /// well under a nanosecond per call.
    pub const DEFAULT_REFRESH_EVERY: u32 = 64;

    /// A coarse clock refreshed every [`Self::DEFAULT_REFRESH_EVERY`] reads per thread.
    pub fn new() -> CoarseClock {
        CoarseClock {
            inner: Arc::new(CoarseInner {
                cached: AtomicU64::new(SystemClock.now().0),
                refresh_every: Self::DEFAULT_REFRESH_EVERY,
            }),
        }
    }

    /// Refresh from the system clock every `n` reads per thread (`0`: never on reads).
    pub fn refresh_every(self, n: u32) -> CoarseClock {
        CoarseClock {
            inner: Arc::new(CoarseInner {
                cached: AtomicU64::new(self.inner.cached.load(Ordering::Relaxed)),
                refresh_every: n,
            }),
        }
    }

    /// Publishes the current system time now.
    pub fn tick(&self) -> Nanos {
        let now = SystemClock.now().0;
        let prev = self.inner.cached.fetch_max(now, Ordering::AcqRel);
        Nanos(prev.max(now))
    }

    /// Starts a background thread that calls [`CoarseClock::tick`] every
    /// `period` until the returned [`Ticker`] is dropped; fails only if the
    /// OS refuses a thread.
    ///
    /// The thread waits on a condition variable rather than sleeping, so
    /// dropping the `Ticker` wakes and joins it at once.
    pub fn start_ticker(&self, period: Duration) -> std::io::Result<Ticker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let clock = self.clone();
        let thread_stop = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("gantry-coarse-clock".into())
            .spawn(move || {
                let (lock, cvar) = &*thread_stop;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                while !*stopped {
                    clock.tick();
                    stopped = cvar
                        .wait_timeout(stopped, period)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            })?;
        Ok(Ticker {
            stop,
            handle: Some(handle),
        })
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        CoarseClock::new()
    }
}

impl Clock for CoarseClock {
    fn now(&self) -> Nanos {
        let n = self.inner.refresh_every;
        if n != 0 {
            let due = COARSE_READS.with(|c| {
                let reads = c.get().wrapping_add(1);
                c.set(reads);
                reads % n == 0
            });
            if due {
                return self.tick();
            }
        }
        Nanos(self.inner.cached.load(Ordering::Acquire))
    }
}

/// The background refresher of a [`CoarseClock`]; dropping it stops and
/// joins the thread.
///
/// ```
/// use gantry_resilience::CoarseClock;
/// use std::time::Duration;
///
/// let clock = CoarseClock::new().refresh_every(0);
/// let _ticker = clock.start_ticker(Duration::from_millis(10))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("running", &self.handle.is_some())
            .finish()
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_never_goes_backwards() {
        let c = ManualClock::new();
        assert!(c.set(Nanos::from_nanos(10)));
        assert!(!c.set(Nanos::from_nanos(5)));
        assert_eq!(c.now().as_nanos(), 10);
        c.advance(Duration::MAX);
        assert_eq!(c.now().as_nanos(), u64::MAX);
    }

    #[test]
    fn coarse_clock_refreshes_every_n_reads() {
        let c = CoarseClock::new().refresh_every(2);
        let first = c.now();
        let mut last = first;
        for _ in 0..10 {
            let t = c.now();
            assert!(t >= last);
            last = t;
        }
    }

    #[test]
    fn coarse_clock_without_refresh_stays_put_until_ticked() {
        let c = CoarseClock::new().refresh_every(0);
        let a = c.now();
        assert_eq!(c.now(), a);
        let t = c.tick();
        assert!(t >= a);
        assert_eq!(c.now(), t);
    }

    #[test]
    fn the_ticker_moves_a_coarse_clock_and_stops_when_dropped() {
        let c = CoarseClock::new().refresh_every(0);
        let t0 = c.now();
        let ticker = c.start_ticker(Duration::from_millis(1)).unwrap();
        // Poll with a deadline rather than sleeping a fixed time.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while c.now() == t0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the ticker never ticked"
            );
            std::thread::yield_now();
        }
        drop(ticker);
        let stopped = c.now();
        let later = std::time::Instant::now() + Duration::from_millis(20);
        while std::time::Instant::now() < later {
            std::thread::yield_now();
        }
        assert_eq!(c.now(), stopped, "no ticks after the ticker is dropped");
    }

    #[test]
    fn nanos_arithmetic_saturates() {
        assert_eq!(
            (Nanos::from_nanos(u64::MAX) + Duration::from_secs(1)).as_nanos(),
            u64::MAX
        );
        assert_eq!(Nanos::ZERO - Nanos::from_nanos(5), Duration::ZERO);
    }
}

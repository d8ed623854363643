//! The breaker's builder: every setting, its default and its check.

use super::*;

/// Builds a [`CircuitBreaker`]; every setting has a default.
///
/// | setting | default |
/// | --- | --- |
/// | `sliding_window` | `Count { size: 100 }` |
/// | `failure_rate_threshold` | `0.5` |
/// | `slow_call_duration_threshold` | off |
/// | `slow_call_rate_threshold` | `1.0` |
/// | `minimum_number_of_calls` | `100` (capped at a count window's size) |
/// | `wait_in_open` | 60 s |
/// | `permitted_calls_in_half_open` | 10 |
/// | `max_wait_in_half_open` | 60 s |
/// | `clock` | [`SystemClock`] |
///
/// ```
/// use gantry_resilience::breaker::{SlidingWindow, State};
/// use gantry_resilience::CircuitBreaker;
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let (tx, rx) = mpsc::channel();
/// let breaker = CircuitBreaker::builder()
///     .sliding_window(SlidingWindow::Time { length: Duration::from_secs(30), buckets: 30 })
///     .failure_rate_threshold(0.25)
///     .slow_call_duration_threshold(Duration::from_millis(500))
///     .slow_call_rate_threshold(0.8)
///     .minimum_number_of_calls(20)
///     .wait_in_open(Duration::from_secs(5))
///     .permitted_calls_in_half_open(3)
///     .max_wait_in_half_open(Duration::from_secs(10))
///     .on_state_change(move |change| {
///         let _ = tx.send(change);
///     })
///     .build()?;
/// breaker.force_open();
/// assert_eq!(rx.recv().unwrap().to, State::ForcedOpen);
/// # Ok::<(), gantry_resilience::ConfigError>(())
/// ```
pub struct Builder {
    window: SlidingWindow,
    failure_rate_threshold: f64,
    slow_call_rate_threshold: f64,
    slow_call_duration_threshold: Option<Duration>,
    minimum_number_of_calls: u32,
    wait_in_open: Duration,
    permitted_in_half_open: u32,
    max_wait_in_half_open: Duration,
    clock: Arc<dyn Clock>,
    on_change: Option<Callback>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("window", &self.window)
            .field("failure_rate_threshold", &self.failure_rate_threshold)
            .field("slow_call_rate_threshold", &self.slow_call_rate_threshold)
            .field(
                "slow_call_duration_threshold",
                &self.slow_call_duration_threshold,
            )
            .field("minimum_number_of_calls", &self.minimum_number_of_calls)
            .field("wait_in_open", &self.wait_in_open)
            .field("permitted_in_half_open", &self.permitted_in_half_open)
            .field("max_wait_in_half_open", &self.max_wait_in_half_open)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            window: SlidingWindow::Count { size: 100 },
            failure_rate_threshold: 0.5,
            slow_call_rate_threshold: 1.0,
            slow_call_duration_threshold: None,
            minimum_number_of_calls: 100,
            wait_in_open: Duration::from_secs(60),
            permitted_in_half_open: 10,
            max_wait_in_half_open: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
            on_change: None,
        }
    }
}

const NAME: &str = "circuit breaker";

impl Builder {
    /// Which calls the rates are computed over.
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.window = window;
        self
    }

    /// Opens when at least this share of the window's calls failed; in (0, 1].
    pub fn failure_rate_threshold(mut self, ratio: f64) -> Self {
        self.failure_rate_threshold = ratio;
        self
    }

    /// Opens when at least this share of the window's calls were slow; in (0, 1].
    /// Only used with [`Builder::slow_call_duration_threshold`].
    pub fn slow_call_rate_threshold(mut self, ratio: f64) -> Self {
        self.slow_call_rate_threshold = ratio;
        self
    }

    /// A call taking at least this long counts as slow (whether it succeeded
    /// or not). Turns on slow-call tracking, which reads the clock twice per call.
    pub fn slow_call_duration_threshold(mut self, threshold: Duration) -> Self {
        self.slow_call_duration_threshold = Some(threshold);
        self
    }

    /// No rate is acted on before the window holds this many calls; at least 1.
    pub fn minimum_number_of_calls(mut self, calls: u32) -> Self {
        self.minimum_number_of_calls = calls;
        self
    }

    /// How long an opened breaker rejects every call before trying again.
    pub fn wait_in_open(mut self, wait: Duration) -> Self {
        self.wait_in_open = wait;
        self
    }

    /// How many trial calls a half-open breaker lets through (in flight at
    /// once and in total); 1 to 4095.
    pub fn permitted_calls_in_half_open(mut self, calls: u32) -> Self {
        self.permitted_in_half_open = calls;
        self
    }

    /// The longest a breaker stays half-open before it gives up on its trials
    /// and opens again; more than zero.
    pub fn max_wait_in_half_open(mut self, wait: Duration) -> Self {
        self.max_wait_in_half_open = wait;
        self
    }

    /// The clock for every time decision (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// A clock already shared with other primitives.
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Called once per state change, after the change, outside any lock.
    /// To get a channel instead, send into one from here.
    pub fn on_state_change(mut self, f: impl Fn(StateChange) + Send + Sync + 'static) -> Self {
        self.on_change = Some(Box::new(f));
        self
    }

    /// Checks every setting and builds the breaker, closed.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        check_ratio(NAME, "failure_rate_threshold", self.failure_rate_threshold)?;
        check_ratio(
            NAME,
            "slow_call_rate_threshold",
            self.slow_call_rate_threshold,
        )?;
        let mut minimum = u64::from(self.minimum_number_of_calls);
        if minimum == 0 {
            return Err(ConfigError::new(
                NAME,
                "minimum_number_of_calls",
                0,
                "at least 1",
            ));
        }
        match self.window {
            SlidingWindow::Count { size } => {
                if size == 0 {
                    return Err(ConfigError::new(
                        NAME,
                        "sliding_window",
                        self.window,
                        "a count window holds at least 1 call",
                    ));
                }
                // A minimum the window can never reach would keep the breaker closed forever.
                minimum = minimum.min(u64::from(size));
            }
            SlidingWindow::Time { length, buckets } => {
                if buckets == 0 || duration_to_nanos(length) < u64::from(buckets) {
                    return Err(ConfigError::new(
                        NAME,
                        "sliding_window",
                        self.window,
                        "a time window needs at least 1 bucket and 1 ns per bucket",
                    ));
                }
            }
        }
        if self.permitted_in_half_open == 0 || self.permitted_in_half_open > MAX_TRIALS {
            return Err(ConfigError::new(
                NAME,
                "permitted_calls_in_half_open",
                self.permitted_in_half_open,
                "between 1 and 4095",
            ));
        }
        if self.max_wait_in_half_open.is_zero() {
            return Err(ConfigError::new(
                NAME,
                "max_wait_in_half_open",
                self.max_wait_in_half_open,
                "more than zero, so trials get a chance to finish",
            ));
        }
        let slow_call_nanos = self.slow_call_duration_threshold.map(duration_to_nanos);
        let track_slow = slow_call_nanos.is_some();
        let config = Config {
            window: self.window,
            failure_rate_threshold: self.failure_rate_threshold,
            slow_call_rate_threshold: self.slow_call_rate_threshold,
            slow_call_nanos,
            minimum_number_of_calls: minimum,
            wait_in_open: duration_to_nanos(self.wait_in_open),
            permitted_in_half_open: self.permitted_in_half_open,
            max_wait_in_half_open: duration_to_nanos(self.max_wait_in_half_open),
            needs_clock: track_slow || matches!(self.window, SlidingWindow::Time { .. }),
        };
        let now = self.clock.now();
        Ok(CircuitBreaker {
            inner: Arc::new(Inner {
                state: Padded(AtomicU64::new(pack(CLOSED, 0))),
                calls: Padded(AtomicU64::new(0)),
                rejected: Padded(AtomicU64::new(0)),
                failures: AtomicU64::new(0),
                slow: AtomicU64::new(0),
                ignored: AtomicU64::new(0),
                transitions: AtomicU64::new(0),
                state_since: AtomicU64::new(now.as_nanos()),
                trials: AtomicU64::new(Trials::fresh(0).pack()),
                window: Window::new(self.window, track_slow),
                lock: Mutex::new(()),
                config,
                clock: self.clock,
                on_change: self.on_change,
            }),
        })
    }
}

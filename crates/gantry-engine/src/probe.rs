//! Probe bookkeeping for one unit and role: consecutive pass/fail counts, the in-flight run, and the adaptive schedule.

use std::time::Duration;

use crate::config::{ProbeConfig, ProbeMode, ProbeRole};
use crate::time::Time;

/// The interval before the next readiness (or startup) run.
///
/// `max(min_interval, elapsed / 50)`, capped at `period`: right after spawn
/// the probe runs every `min_interval`, so readiness is seen within a
/// millisecond or two, and the longer a unit takes the more probing relaxes.
pub fn adaptive_interval(min_interval: Duration, period: Duration, elapsed: Duration) -> Duration {
    (elapsed / 50).max(min_interval).min(period)
}

/// The run of a steady probe due at `at` (scheduled at `now`, one `period` on), moved to
/// the nearest multiple of `period` since the epoch: every steady probe with the same
/// period then falls due at the same instant, so one wakeup (and one listener scan in the
/// driver) serves them all instead of one each, spread over the period. The gap between
/// two runs stays `period` once aligned; the first one is between half and one and a half
/// periods.
pub fn on_beat(now: Time, at: Time, period: Duration) -> Time {
    let q = period.as_nanos();
    if q == 0 {
        return at;
    }
    let t = at.as_duration().as_nanos();
    let nearest = (t + q / 2) / q * q;
    let floor = now.as_duration().saturating_add(period / 2).as_nanos();
    let aligned = if nearest < floor {
        nearest + q
    } else {
        nearest
    };
    match u64::try_from(aligned) {
        Ok(ns) => Time(Duration::from_nanos(ns)),
        Err(_) => at,
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Probe {
    pub(crate) config: ProbeConfig,
    pub(crate) role: ProbeRole,
    pub(crate) active: bool,
    /// The `seq` of the run the engine is waiting for; a probe never
    /// overlaps itself, so there is at most one.
    pub(crate) in_flight: Option<u64>,
    /// When the first run of this activation was issued; the adaptive
    /// schedule measures its elapsed time from here.
    pub(crate) began: Option<Time>,
    pub(crate) passes: u32,
    pub(crate) failures: u32,
    /// The message of the last result when that was a failure (`None` after a pass).
    pub(crate) last_message: Option<String>,
    /// Runs at its `period` from the start of the activation (liveness, and
    /// readiness once the unit is up), never on the fast boot schedule.
    pub(crate) steady: bool,
}

impl Probe {
    pub(crate) fn new(config: ProbeConfig, role: ProbeRole) -> Probe {
        Probe {
            config,
            role,
            active: false,
            in_flight: None,
            began: None,
            passes: 0,
            failures: 0,
            last_message: None,
            steady: role == ProbeRole::Liveness,
        }
    }

    pub(crate) fn is_polled(&self) -> bool {
        matches!(self.config.mode, ProbeMode::Polled { .. })
    }

    /// A pushed probe whose silence for `period` is a failure.
    pub(crate) fn is_watchdog(&self) -> bool {
        self.config.mode == ProbeMode::Watchdog
    }

    /// Whether the engine keeps a deadline for it: the next run of a polled
    /// probe, the watchdog of a pushed one.
    pub(crate) fn is_timed(&self) -> bool {
        self.is_polled() || self.is_watchdog()
    }

    /// How long a watchdog waits for a keep-alive (at least 1 ms, so that a
    /// zero period cannot make the timer fire at the instant it is armed).
    pub(crate) fn watchdog_period(&self) -> Duration {
        self.config.period.max(Duration::from_millis(1))
    }

    pub(crate) fn success_threshold(&self) -> u32 {
        self.config.success_threshold.max(1)
    }

    pub(crate) fn failure_threshold(&self) -> u32 {
        self.config.failure_threshold.max(1)
    }

    /// Starts a fresh activation; counts from an earlier incarnation must not
    /// leak into this one. A readiness probe starts on the fast boot schedule.
    pub(crate) fn activate(&mut self) {
        self.steady = self.role == ProbeRole::Liveness;
        self.begin_activation();
    }

    /// Starts a fresh activation at the steady `period`: readiness while the
    /// unit is up.
    pub(crate) fn activate_steady(&mut self) {
        self.steady = true;
        self.begin_activation();
    }

    fn begin_activation(&mut self) {
        self.active = true;
        self.in_flight = None;
        self.began = None;
        self.passes = 0;
        self.failures = 0;
    }

    /// Stops probing but keeps the counts, so that a unit being stopped after
    /// liveness failures still shows as degraded.
    pub(crate) fn deactivate(&mut self) {
        self.active = false;
        self.in_flight = None;
    }

    /// The delay before the first run of an activation.
    pub(crate) fn first_delay(&self) -> Duration {
        if self.is_watchdog() {
            return self.watchdog_period().max(self.config.initial_delay);
        }
        match self.role {
            // Liveness takes over from a readiness probe that just passed, so
            // an immediate run would tell nothing new.
            ProbeRole::Liveness => self.config.period.max(self.config.initial_delay),
            // The same for readiness once up: it has just passed.
            ProbeRole::Readiness if self.steady => self.config.period,
            ProbeRole::Startup | ProbeRole::Readiness => self.config.initial_delay,
        }
    }

    /// When the next run is due, `delay` after `now`: on the shared beat (see [`on_beat`])
    /// when that delay is the steady `period` of a polled probe.
    pub(crate) fn due(&self, now: Time, delay: Duration) -> Time {
        if self.is_polled() && self.steady && delay == self.config.period {
            on_beat(now, now + delay, delay)
        } else {
            now + delay
        }
    }

    /// The delay from a result to the next run.
    pub(crate) fn next_delay(&self, now: Time) -> Duration {
        if self.is_watchdog() {
            return self.watchdog_period();
        }
        match (self.role, self.config.mode) {
            (ProbeRole::Startup | ProbeRole::Readiness, ProbeMode::Polled { min_interval })
                if !self.steady =>
            {
                let elapsed = self.began.map_or(Duration::ZERO, |b| now - b);
                adaptive_interval(min_interval, self.config.period, elapsed)
            }
            _ => self.config.period,
        }
    }

    /// Applies one result: any failure resets the pass streak and any pass
    /// resets the failure streak, which is what makes the gates exact.
    pub(crate) fn record(&mut self, ok: bool, message: String) {
        if ok {
            self.passes = self.passes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.passes = 0;
        }
        // Only a failure's message is ever read again (a start timeout names the last failed
        // check): a pass keeps none, so a thousand healthy services hold no copy each.
        self.last_message = (!ok).then_some(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn steady_runs_fall_on_one_beat_per_period() {
        let s = Duration::from_secs(1);
        let t = |ms| Time::from_millis(ms);
        // Scheduled anywhere, the run lands on a whole period, at least half a period on.
        assert_eq!(on_beat(t(1_001), t(2_001), s), t(2_000));
        assert_eq!(on_beat(t(1_400), t(2_400), s), t(2_000));
        assert_eq!(on_beat(t(1_600), t(2_600), s), t(3_000));
        assert_eq!(on_beat(t(1_499), t(2_499), s), t(2_000));
        // Once on the beat (a result a little late), the gap is exactly one period.
        assert_eq!(on_beat(t(2_003), t(3_003), s), t(3_000));
        // A result later than half a period does not run the probe at once.
        assert_eq!(on_beat(t(2_600), t(3_600), s), t(4_000));
        // Other periods, and the degenerate ones.
        let q = Duration::from_millis(250);
        assert_eq!(on_beat(t(130), t(380), q), t(500));
        assert_eq!(on_beat(t(7), t(7), Duration::ZERO), t(7));
        let huge = Duration::from_secs(u64::MAX / 4);
        let at = Time::from_secs(5) + huge;
        // Past what nanoseconds in a u64 hold: left as scheduled, no panic.
        assert_eq!(on_beat(Time::from_secs(5), at, huge), at);
    }

    #[test]
    fn adaptive_interval_grows_then_caps() {
        let period = Duration::from_secs(1);
        assert_eq!(adaptive_interval(MS, period, Duration::ZERO), MS);
        assert_eq!(adaptive_interval(MS, period, Duration::from_millis(40)), MS);
        assert_eq!(
            adaptive_interval(MS, period, Duration::from_millis(500)),
            Duration::from_millis(10)
        );
        assert_eq!(
            adaptive_interval(MS, period, Duration::from_secs(100)),
            period
        );
        // A min_interval above the period still respects the cap.
        assert_eq!(
            adaptive_interval(Duration::from_secs(5), period, Duration::ZERO),
            period
        );
    }

    #[test]
    fn streaks_reset_each_other() {
        let mut p = Probe::new(ProbeConfig::default(), ProbeRole::Readiness);
        p.activate();
        p.record(true, String::new());
        p.record(true, String::new());
        p.record(false, "refused".into());
        assert_eq!((p.passes, p.failures), (0, 1));
        p.record(true, String::new());
        assert_eq!((p.passes, p.failures), (1, 0));
    }
}

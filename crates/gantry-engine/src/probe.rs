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
        self.last_message = Some(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

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

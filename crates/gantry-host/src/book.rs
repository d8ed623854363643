//! What the host books per unit beside the engine: first spawn, start of the current start sequence, probe figures.

use gantry_engine::{ProbeRole, Time};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct Book {
    /// The unit's first spawn in this boot.
    pub(crate) first_spawn: Option<Time>,
    /// The first attempt of the current start sequence (the boot's, a restart's).
    pub(crate) sequence_start: Option<Time>,
    pub(crate) probes: ProbeRing,
    /// The error an operator's start or restart answered: not shown again once the
    /// unit is up (a new error is).
    pub(crate) acked_error: Option<String>,
}

/// Probe failures and durations so far (a histogram of fixed size), and the latest answer.
#[derive(Debug, Default)]
pub struct ProbeRing {
    failures: u64,
    durations: gantry_api::model::ProbeHistogram,
    last: Option<LastProbe>,
}

/// The latest probe run of a unit.
#[derive(Clone, Debug, PartialEq)]
pub struct LastProbe {
    pub role: ProbeRole,
    pub ok: bool,
    pub message: String,
    pub duration: Duration,
    pub at: Time,
}

impl ProbeRing {
    /// Counts one probe run.
    pub fn record(&mut self, ok: bool, duration: Duration) {
        if !ok {
            self.failures += 1;
        }
        self.durations.observe(duration.as_secs_f64());
    }

    /// Remembers the latest answer (polled or pushed) for `/health?verbose`.
    pub fn remember(&mut self, last: LastProbe) {
        self.last = Some(last);
    }

    /// Keeps a result as the latest answer; the message is copied only when it differs
    /// from the one kept (a running service's probe says the same thing each period).
    pub fn remember_result(
        &mut self,
        role: ProbeRole,
        ok: bool,
        message: &str,
        duration: Duration,
        at: Time,
    ) {
        match &mut self.last {
            Some(last) if last.message == message => {
                last.role = role;
                last.ok = ok;
                last.duration = duration;
                last.at = at;
            }
            _ => {
                self.last = Some(LastProbe {
                    role,
                    ok,
                    message: message.to_string(),
                    duration,
                    at,
                })
            }
        }
    }

    /// The latest answer.
    pub fn last(&self) -> Option<&LastProbe> {
        self.last.as_ref()
    }

    /// Failed probe runs so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The durations so far.
    pub fn histogram(&self) -> gantry_api::model::ProbeHistogram {
        self.durations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_counts_every_probe_and_its_failures_in_a_fixed_size() {
        let mut ring = ProbeRing::default();
        for i in 0..1000u64 {
            ring.record(i % 2 == 0, Duration::from_millis(i));
        }
        let h = ring.histogram();
        assert_eq!(h.count, 1000);
        assert_eq!(h.buckets.iter().sum::<u64>(), 1000);
        // 0..=10 ms fall in the buckets up to 0.01; 11..=25 ms in the 0.025 one.
        assert_eq!(h.buckets[..5].iter().sum::<u64>(), 11);
        assert_eq!(h.buckets[5], 15);
        assert_eq!(h.last, Some(0.999));
        assert_eq!(ring.failures(), 500);
    }
}

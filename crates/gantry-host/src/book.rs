//! What the host books per unit beside the engine: first spawn, start of the current start sequence, probe figures.

use gantry_engine::{ProbeRole, Time};
use std::collections::VecDeque;
use std::time::Duration;

/// How many probe durations per unit the snapshot carries (the metrics histogram).
pub const PROBE_SAMPLES: usize = 256;

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

/// Probe failures so far and the latest [`PROBE_SAMPLES`] durations.
#[derive(Debug, Default)]
pub struct ProbeRing {
    failures: u64,
    durations: VecDeque<f64>,
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
        if self.durations.len() == PROBE_SAMPLES {
            self.durations.pop_front();
        }
        self.durations.push_back(duration.as_secs_f64());
    }

    /// Remembers the latest answer (polled or pushed) for `/health?verbose`.
    pub fn remember(&mut self, last: LastProbe) {
        self.last = Some(last);
    }

    /// The latest answer.
    pub fn last(&self) -> Option<&LastProbe> {
        self.last.as_ref()
    }

    /// Failed probe runs so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The latest durations in seconds, oldest first.
    pub fn durations(&self) -> impl Iterator<Item = f64> + '_ {
        self.durations.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_latest_samples_and_counts_failures() {
        let mut ring = ProbeRing::default();
        for i in 0..(PROBE_SAMPLES + 10) {
            ring.record(i % 2 == 0, Duration::from_millis(i as u64));
        }
        assert_eq!(ring.durations().count(), PROBE_SAMPLES);
        assert_eq!(ring.durations().next(), Some(0.010));
        assert_eq!(ring.failures(), (PROBE_SAMPLES as u64 + 10) / 2);
    }
}

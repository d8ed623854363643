//! The start breaker: stops hammering a unit that keeps failing to start, with explicit closed/open/half-open states.

use crate::config::BreakerConfig;
use crate::time::Time;

/// Public view of a start breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Attempts flow normally.
    Closed,
    /// No attempt before `until`.
    Open { until: Time },
    /// Exactly one trial attempt is allowed; its result closes or re-opens.
    HalfOpen,
}

#[derive(Clone, Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    consecutive_failures: u32,
    state: BreakerState,
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            consecutive_failures: 0,
            state: BreakerState::Closed,
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    /// Records a failed start attempt; returns the end of the cooldown when
    /// this failure opened (or re-opened) the breaker.
    pub(crate) fn on_failure(&mut self, now: Time) -> Option<Time> {
        let open = match self.state {
            // The single trial failed: straight back to open.
            BreakerState::HalfOpen | BreakerState::Open { .. } => true,
            BreakerState::Closed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.consecutive_failures >= self.config.failures.max(1)
            }
        };
        if !open {
            return None;
        }
        let until = now + self.config.cooldown;
        self.consecutive_failures = 0;
        self.state = BreakerState::Open { until };
        Some(until)
    }

    /// A successful start closes the breaker and forgets past failures.
    pub(crate) fn on_success(&mut self) {
        self.reset();
    }

    pub(crate) fn reset(&mut self) {
        self.consecutive_failures = 0;
        self.state = BreakerState::Closed;
    }

    /// Asks to make an attempt now. An open breaker whose cooldown is over
    /// turns half-open and admits this one attempt; otherwise returns the
    /// time at which to ask again.
    pub(crate) fn admit(&mut self, now: Time) -> Result<(), Time> {
        match self.state {
            BreakerState::Open { until } if now < until => Err(until),
            BreakerState::Open { .. } => {
                self.state = BreakerState::HalfOpen;
                Ok(())
            }
            BreakerState::Closed | BreakerState::HalfOpen => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 3,
            cooldown: Duration::from_secs(300),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_then_half_opens() {
        let mut b = breaker();
        let t0 = Time::ZERO;
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), None);
        let until = b.on_failure(t0).expect("third failure opens");
        assert_eq!(until, Time::from_secs(300));
        assert_eq!(b.admit(Time::from_secs(299)), Err(until));
        assert_eq!(b.admit(Time::from_secs(300)), Ok(()));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // A failed trial re-opens at once, without counting up again.
        assert_eq!(
            b.on_failure(Time::from_secs(301)),
            Some(Time::from_secs(601))
        );
    }

    #[test]
    fn success_closes_and_forgets() {
        let mut b = breaker();
        b.on_failure(Time::ZERO);
        b.on_failure(Time::ZERO);
        b.on_success();
        assert_eq!(b.on_failure(Time::ZERO), None);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}

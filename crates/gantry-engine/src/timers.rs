//! The deadline queue: at most one timer per unit and kind, ordered by time, so `poll_timeout` is a peek.

use std::collections::BTreeSet;

use crate::config::{ProbeRole, UnitId};
use crate::time::Time;

/// What a deadline is for. Each kind belongs to one private lifecycle state
/// and is cancelled when the unit leaves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKind {
    /// start_timeout of the current attempt.
    Start,
    /// stop_timeout after the graceful signal: escalate to Kill.
    Stop,
    /// End of a retry/restart backoff or of a breaker cooldown.
    Backoff,
    /// Next run of a polled probe.
    Probe(ProbeRole),
    /// End of `start_grace`: a process without probes that is still alive is up.
    Grace,
}

impl TimerKind {
    const COUNT: usize = 7;

    const fn index(self) -> usize {
        match self {
            TimerKind::Start => 0,
            TimerKind::Stop => 1,
            TimerKind::Backoff => 2,
            TimerKind::Grace => 3,
            TimerKind::Probe(role) => 4 + role.index(),
        }
    }
}

/// A `BTreeSet` keyed by `(time, unit, kind)` plus a slot table to find an
/// entry again: setting, cancelling and popping are all O(log n), and ties
/// fire in unit order, which keeps runs deterministic.
#[derive(Clone, Debug)]
pub(crate) struct Timers {
    queue: BTreeSet<(Time, UnitId, TimerKind)>,
    slots: Vec<[Option<Time>; TimerKind::COUNT]>,
}

impl Timers {
    pub(crate) fn new(units: usize) -> Timers {
        Timers {
            queue: BTreeSet::new(),
            slots: vec![[None; TimerKind::COUNT]; units],
        }
    }

    /// Room for `units` units (units added to a running engine).
    pub(crate) fn grow(&mut self, units: usize) {
        if units > self.slots.len() {
            self.slots.resize(units, [None; TimerKind::COUNT]);
        }
    }

    /// Arms (or re-arms) the timer of `kind` for `unit`.
    pub(crate) fn set(&mut self, unit: UnitId, kind: TimerKind, at: Time) {
        self.cancel(unit, kind);
        self.slots[unit.0][kind.index()] = Some(at);
        self.queue.insert((at, unit, kind));
    }

    pub(crate) fn cancel(&mut self, unit: UnitId, kind: TimerKind) {
        if let Some(at) = self.slots[unit.0][kind.index()].take() {
            self.queue.remove(&(at, unit, kind));
        }
    }

    pub(crate) fn get(&self, unit: UnitId, kind: TimerKind) -> Option<Time> {
        self.slots[unit.0][kind.index()]
    }

    pub(crate) fn next(&self) -> Option<Time> {
        self.queue.first().map(|&(at, _, _)| at)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Time) -> Option<(UnitId, TimerKind)> {
        let &(at, unit, kind) = self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.pop_first();
        self.slots[unit.0][kind.index()] = None;
        Some((unit, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rearming_replaces_and_pop_respects_order() {
        let mut t = Timers::new(2);
        t.set(UnitId(1), TimerKind::Start, Time::from_millis(50));
        t.set(UnitId(0), TimerKind::Backoff, Time::from_millis(10));
        t.set(UnitId(1), TimerKind::Start, Time::from_millis(5));
        assert_eq!(t.next(), Some(Time::from_millis(5)));
        assert_eq!(t.pop_due(Time::from_millis(4)), None);
        assert_eq!(
            t.pop_due(Time::from_millis(20)),
            Some((UnitId(1), TimerKind::Start))
        );
        t.cancel(UnitId(0), TimerKind::Backoff);
        assert_eq!(t.next(), None);
        assert_eq!(t.get(UnitId(1), TimerKind::Start), None);
    }
}

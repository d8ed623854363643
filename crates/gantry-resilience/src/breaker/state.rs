//! Breaker states, state-change events, and the packed atomic words the
//! lock-free paths read.
//!
//! The whole state a caller needs to decide "may I call?" lives in one
//! `AtomicU64`, so the closed-state check is a single load:
//!
//! ```text
//! state word:  [ 63 .. 48 unused | 47 .. 32 trials issued | 31 .. 4 generation | 3 .. 0 tag ]
//! trial word:  [ 63 .. 36 generation | 35 .. 24 slow | 23 .. 12 failed | 11 .. 0 done ]
//! ```
//!
//! The generation grows on every transition. A half-open trial permit carries
//! the generation it was issued in, so a trial that finishes after the breaker
//! moved on can never count toward a later half-open period.

use crate::clock::Nanos;

/// The state of a [`CircuitBreaker`](crate::CircuitBreaker).
///
/// ```
/// use gantry_resilience::breaker::State;
/// assert!(State::Closed.permits_calls());
/// assert!(!State::ForcedOpen.permits_calls());
/// assert_eq!(State::HalfOpen.to_string(), "half_open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls flow; outcomes fill the sliding window; too many failures or slow calls open it.
    Closed,
    /// Calls are rejected until the wait in open has passed.
    Open,
    /// A limited number of trial calls decide between closed and open.
    HalfOpen,
    /// Opened by hand: every call is rejected until changed by hand.
    ForcedOpen,
    /// Switched off by hand: every call is permitted and counted in the
    /// metrics, and nothing trips it.
    Disabled,
}

impl State {
    /// Whether a call in this state is let through (half-open: up to the trial limit).
    pub fn permits_calls(self) -> bool {
        matches!(self, State::Closed | State::HalfOpen | State::Disabled)
    }

    /// A stable lower-case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
        }
    }

    /// A small stable number, for a gauge.
    pub fn as_u8(self) -> u8 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One transition, as handed to the callback given to
/// [`Builder::on_state_change`](crate::breaker::Builder::on_state_change).
///
/// `generation` counts transitions of this breaker; callbacks run outside the
/// breaker's lock, so under concurrent transitions they can arrive out of
/// order, and `generation` puts them back in order.
///
/// ```
/// use gantry_resilience::breaker::{State, StateChange};
/// use gantry_resilience::Nanos;
///
/// let change = StateChange { from: State::Closed, to: State::Open, at: Nanos::ZERO, generation: 1 };
/// assert_eq!(change.to_string(), "closed -> open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// When, on the breaker's clock.
    pub at: Nanos,
    /// The breaker's transition count after this change (wraps at 2^28).
    pub generation: u32,
}

impl std::fmt::Display for StateChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)
    }
}

pub(crate) const CLOSED: u64 = 0;
pub(crate) const OPEN: u64 = 1;
pub(crate) const HALF_OPEN: u64 = 2;
pub(crate) const FORCED_OPEN: u64 = 3;
pub(crate) const DISABLED: u64 = 4;

const TAG_BITS: u32 = 4;
const GEN_BITS: u32 = 28;
pub(crate) const GEN_MASK: u64 = (1 << GEN_BITS) - 1;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
const ISSUED_SHIFT: u32 = TAG_BITS + GEN_BITS;
/// Tag and generation: what identifies "the same state period".
pub(crate) const PERIOD_MASK: u64 = (1 << ISSUED_SHIFT) - 1;
pub(crate) const ISSUED_ONE: u64 = 1 << ISSUED_SHIFT;

/// The most half-open trials one period can issue; the trial word has 12 bits per count.
pub(crate) const MAX_TRIALS: u32 = (1 << 12) - 1;

#[inline]
pub(crate) fn tag(word: u64) -> u64 {
    word & TAG_MASK
}

#[inline]
pub(crate) fn generation(word: u64) -> u64 {
    (word >> TAG_BITS) & GEN_MASK
}

#[inline]
pub(crate) fn issued(word: u64) -> u32 {
    ((word >> ISSUED_SHIFT) & 0xffff) as u32
}

pub(crate) fn pack(tag: u64, generation: u64) -> u64 {
    tag | ((generation & GEN_MASK) << TAG_BITS)
}

pub(crate) fn state_of(word: u64) -> State {
    match tag(word) {
        CLOSED => State::Closed,
        OPEN => State::Open,
        HALF_OPEN => State::HalfOpen,
        FORCED_OPEN => State::ForcedOpen,
        _ => State::Disabled,
    }
}

#[cfg(test)]
pub(crate) fn tag_of(state: State) -> u64 {
    match state {
        State::Closed => CLOSED,
        State::Open => OPEN,
        State::HalfOpen => HALF_OPEN,
        State::ForcedOpen => FORCED_OPEN,
        State::Disabled => DISABLED,
    }
}

/// Half-open trial results, tagged with the generation they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trials {
    pub(crate) generation: u64,
    pub(crate) done: u32,
    pub(crate) failed: u32,
    pub(crate) slow: u32,
}

impl Trials {
    pub(crate) fn fresh(generation: u64) -> Trials {
        Trials {
            generation,
            done: 0,
            failed: 0,
            slow: 0,
        }
    }

    pub(crate) fn pack(self) -> u64 {
        let m = u64::from(MAX_TRIALS);
        (u64::from(self.done) & m)
            | ((u64::from(self.failed) & m) << 12)
            | ((u64::from(self.slow) & m) << 24)
            | ((self.generation & GEN_MASK) << 36)
    }

    pub(crate) fn unpack(word: u64) -> Trials {
        let m = u64::from(MAX_TRIALS);
        Trials {
            done: (word & m) as u32,
            failed: ((word >> 12) & m) as u32,
            slow: ((word >> 24) & m) as u32,
            generation: (word >> 36) & GEN_MASK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_word_round_trips() {
        let w = pack(HALF_OPEN, GEN_MASK) + 3 * ISSUED_ONE;
        assert_eq!(tag(w), HALF_OPEN);
        assert_eq!(generation(w), GEN_MASK);
        assert_eq!(issued(w), 3);
        assert_eq!(w & PERIOD_MASK, pack(HALF_OPEN, GEN_MASK));
        for s in [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
        ] {
            assert_eq!(state_of(pack(tag_of(s), 9)), s);
        }
    }

    #[test]
    fn trial_word_round_trips() {
        let t = Trials {
            generation: 12345,
            done: MAX_TRIALS,
            failed: 7,
            slow: 9,
        };
        assert_eq!(Trials::unpack(t.pack()), t);
    }
}

//! Injected engine time: a monotonic offset from the engine's epoch, never read from the OS.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// Monotonic time since the engine's epoch (the shell maps its clock onto this).
///
/// Arithmetic saturates instead of panicking, because deadlines are computed
/// from user configuration and a huge timeout must not crash the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub Duration);

impl Time {
    /// The engine's epoch.
    pub const ZERO: Time = Time(Duration::ZERO);
    /// The far future; used as "never" by callers that need a sentinel.
    pub const MAX: Time = Time(Duration::MAX);

    /// A time `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    /// A time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Time {
        Time(Duration::from_secs(secs))
    }

    /// Whole milliseconds since the epoch (saturating at `u64::MAX`).
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// The offset from the epoch.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// Time elapsed since `earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        Time(self.0.saturating_add(rhs))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub for Time {
    type Output = Duration;
    /// Saturating: a time before `rhs` yields zero, never a panic.
    fn sub(self, rhs: Time) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", HumanDuration(self.0))
    }
}

/// Formats a duration the way people write it in config files and messages:
/// `0s`, `250ms`, `1.5s`, `60s`.
///
/// Whole seconds stay in seconds (`300s`, not `5m`) so that a message quotes
/// the same number the user wrote in `gantry.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let sub = d.subsec_nanos();
        if sub == 0 {
            return write!(f, "{}s", d.as_secs());
        }
        if d < Duration::from_secs(1) {
            // Pick the largest unit that shows the value exactly.
            if d.subsec_millis() * 1_000_000 == sub {
                return write!(f, "{}ms", d.subsec_millis());
            }
            if d.subsec_micros() * 1_000 == sub {
                return write!(f, "{}µs", d.subsec_micros());
            }
            return write!(f, "{sub}ns");
        }
        // Above a second, millisecond precision is plenty for humans.
        let millis = d.subsec_millis();
        let mut frac = format!("{millis:03}");
        while frac.ends_with('0') {
            frac.pop();
        }
        if frac.is_empty() {
            write!(f, "{}s", d.as_secs())
        } else {
            write!(f, "{}.{frac}s", d.as_secs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Time::from_millis(5);
        assert_eq!(t + Duration::from_millis(5), Time::from_millis(10));
        assert_eq!(Time::from_millis(3) - t, Duration::ZERO);
        assert_eq!(t - Time::from_millis(2), Duration::from_millis(3));
        assert_eq!(Time::MAX + Duration::from_secs(1), Time::MAX);
        assert_eq!(Time::from_secs(2).as_millis(), 2000);
    }

    #[test]
    fn human_durations() {
        let h = |d| HumanDuration(d).to_string();
        assert_eq!(h(Duration::ZERO), "0s");
        assert_eq!(h(Duration::from_millis(250)), "250ms");
        assert_eq!(h(Duration::from_millis(1500)), "1.5s");
        assert_eq!(h(Duration::from_millis(1250)), "1.25s");
        assert_eq!(h(Duration::from_secs(60)), "60s");
        assert_eq!(h(Duration::from_micros(20)), "20µs");
        assert_eq!(h(Duration::from_nanos(7)), "7ns");
    }
}

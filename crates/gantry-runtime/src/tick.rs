//! A sub-millisecond periodic tick for the event loop: a timerfd registered with tokio's reactor, armed only while something needs it.
//!
//! tokio's timers have a 1 ms granularity (`interval(500 µs)` fires in bursts; notes §C),
//! so a readiness poll driven by them finds a listener 0.5 ms late on average. The listen
//! watch (driver.rs) polls every 250 µs while a service it waits for is young: a
//! sock_diag dump costs ~21 µs, so that is ~8 % of a core, paid only while a loopback tcp
//! readiness probe is pending — and then only for the first seconds of a start.

use std::io;
use std::os::fd::{AsFd as _, AsRawFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

struct Tfd(TimerFd);

impl AsRawFd for Tfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

#[allow(unsafe_code)]
fn register(tfd: Tfd) -> io::Result<AsyncFd<Tfd>> {
    // SAFETY: `Tfd` owns the timerfd (an `OwnedFd` inside nix's `TimerFd`), which stays
    // open and unchanged until the `AsyncFd` (its only owner) is dropped, and
    // `as_raw_fd` always returns that same descriptor.
    unsafe { AsyncFd::register_with_interest(tfd, tokio::io::Interest::READABLE) }
        .map_err(|e| io::Error::other(e.to_string()))
}

/// A periodic timer with any period (CLOCK_MONOTONIC), disarmed until [`FastTick::set`].
pub struct FastTick {
    fd: AsyncFd<Tfd>,
    period: Option<Duration>,
}

impl FastTick {
    /// Creates a disarmed timer; needs a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<FastTick> {
        let tfd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(FastTick {
            fd: register(Tfd(tfd))?,
            period: None,
        })
    }

    /// Arms the timer with `period` (first expiry one period from now), re-arms it when
    /// the period changed, or disarms it with `None`. Unchanged periods cost nothing.
    pub fn set(&mut self, period: Option<Duration>) -> io::Result<()> {
        if period == self.period {
            return Ok(());
        }
        match period {
            Some(p) if !p.is_zero() => self.fd.get_ref().0.set(
                Expiration::Interval(TimeSpec::from_duration(p)),
                TimerSetTimeFlags::empty(),
            )?,
            _ => self.fd.get_ref().0.unset()?,
        }
        self.period = period;
        Ok(())
    }

    /// The current period (`None`: disarmed).
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// Waits for the next expiry (expiries missed meanwhile collapse into one).
    /// Never resolves while disarmed.
    pub async fn tick(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut count = [0u8; 8];
            match nix::unistd::read(self.fd.get_ref().0.as_fd(), &mut count) {
                Ok(_) => return Ok(()),
                Err(Errno::EAGAIN) => guard.clear_ready(),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn ticks_at_sub_millisecond_periods_and_stops_when_disarmed() {
        let mut t = FastTick::new().expect("timerfd");
        // Taken before arming: the 20th expiry is then at least 4 ms after it, however
        // late this thread runs (taken after, a preemption in between shortened it; CI
        // saw that).
        let start = std::time::Instant::now();
        t.set(Some(Duration::from_micros(200))).expect("arm");
        for _ in 0..20 {
            t.tick().await.expect("tick");
        }
        // 20 ticks of 200 µs: at least 4 ms must have passed (a lower bound, not a timing
        // assertion on speed).
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(4), "{elapsed:?}");
        t.set(None).expect("disarm");
        assert_eq!(t.period(), None);
        let waited = tokio::time::timeout(Duration::from_millis(20), t.tick()).await;
        assert!(waited.is_err(), "a disarmed timer ticked");
    }
}

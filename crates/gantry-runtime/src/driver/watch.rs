//! The listen watch: pending loopback tcp probes answered from one sock_diag LISTEN dump per tick instead of a connect each.

use super::{Driver, Msg};
use crate::probe;
use gantry_engine::{ProbeRole, UnitId};
use std::time::Duration;
use tokio::time::Instant;

/// Loopback tcp readiness without a connect per service per millisecond: pending tcp
/// startup/readiness probes on a loopback address wait here, and one sock_diag LISTEN
/// dump per tick, filtered to the held ports (listen/, ~21 µs for every port at once; every 250 µs in the first
/// seconds of a start) decides for all of them. A listener bound to the probe's address
/// (or its family's wildcard) whose accept queue has room passes the probe at once —
/// the kernel completes the handshake of any connect to it; a match that depends on
/// `IPV6_V6ONLY` gets one real connect (tcp_loopback_now). A probe still held after
/// [`HOLD_MAX`] (or its timeout) runs as an ordinary connect, so a service that never
/// listens gets its genuine "connection refused" failures a few times a second.
pub(super) struct ListenWatch {
    scanner: crate::listen::ListenScanner,
    /// Every 250 µs while a held probe's service started less than [`FAST_FOR`] ago,
    /// every 2 ms after that; disarmed while nothing is held.
    pub(super) tick: crate::tick::FastTick,
    listeners: Vec<std::net::SocketAddr>,
    /// The ports of `listeners`, in the same order (`listen::of_port_in`).
    index: Vec<u16>,
    /// When `listeners` was read (None: never, or the last read failed).
    scanned_at: Option<Instant>,
    /// What the last dump took: the tick waits at least three times that, so dumps take at
    /// most a quarter of the loop however many listeners there are (a dump of 5,000
    /// listeners every 250 µs was a third of a 5,000-service boot's CPU).
    cost: Duration,
    held: Vec<Held>,
    /// The held probes' ports, the filter of the next dump (kept for its allocation).
    ports: Vec<u16>,
    /// `listeners` holds the IPv6 listeners too (else IPv4 only).
    with_v6: bool,
}

/// "ADDR is listening and accepting connections", a probe's pass: written out by hand for
/// an IPv4 address (a thousand running services pass one a second, and the formatting
/// machinery was a tenth of gantry's idle CPU).
fn pass_message(l: std::net::SocketAddr) -> String {
    const TAIL: &str = " is listening and accepting connections";
    match l {
        std::net::SocketAddr::V4(a) => {
            let mut s = String::with_capacity(21 + TAIL.len());
            let num = |s: &mut String, n: u16| {
                let mut digits = [0u8; 5];
                let mut i = digits.len();
                let mut n = n;
                loop {
                    i -= 1;
                    digits[i] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                s.extend(digits[i..].iter().map(|&d| d as char));
            };
            for (i, o) in a.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                num(&mut s, o.into());
            }
            s.push(':');
            num(&mut s, a.port());
            s.push_str(TAIL);
            s
        }
        v6 => format!("{v6}{TAIL}"),
    }
}

#[derive(Clone, Copy)]
struct Held {
    unit: UnitId,
    role: ProbeRole,
    seq: u64,
    timeout: Duration,
    until: Instant,
}

/// How old the LISTEN table may be that answers a running service's probe, at most.
const RUNNING_SCAN_AGE: Duration = Duration::from_millis(250);
/// How long a held probe waits for a listener before it connects anyway.
const HOLD_MAX: Duration = Duration::from_millis(100);
/// Listener scans every [`FAST_PERIOD`] during the first seconds of a start...
const FAST_FOR: Duration = Duration::from_secs(2);
const FAST_PERIOD: Duration = Duration::from_micros(250);
/// ... and every [`SLOW_PERIOD`] for a service that takes longer.
const SLOW_PERIOD: Duration = Duration::from_millis(2);
/// ... and every [`STORM_PERIOD`] while spawns are in flight on the pool.
const STORM_PERIOD: Duration = Duration::from_millis(1);

impl ListenWatch {
    /// `None` when sock_diag or the timerfd is not available (every probe connects).
    pub(super) fn new() -> Option<ListenWatch> {
        match (
            crate::listen::ListenScanner::new(),
            crate::tick::FastTick::new(),
        ) {
            (Ok(scanner), Ok(tick)) => Some(ListenWatch {
                scanner,
                tick,
                listeners: Vec::new(),
                index: Vec::new(),
                scanned_at: None,
                cost: Duration::ZERO,
                held: Vec::new(),
                ports: Vec::new(),
                with_v6: false,
            }),
            _ => None,
        }
    }
}

impl ListenWatch {
    /// `index` after `listeners` changed.
    fn reindex(&mut self) {
        self.index.clear();
        self.index
            .extend(self.listeners.iter().map(std::net::SocketAddr::port));
    }
}

impl Driver {
    pub(super) fn probe(&mut self, unit: UnitId, role: ProbeRole, seq: u64, timeout: Duration) {
        // Probes of running services (liveness, and readiness once up) are not held:
        // they run once a period, and a service that stops listening must fail them at
        // once.
        if role != ProbeRole::Liveness
            && self.host.engine().state_of(unit) == Some(gantry_engine::State::Starting)
            && !self.svcs[unit.0].listen_targets(role).is_empty()
            && let Some(w) = &mut self.listen
        {
            w.held.push(Held {
                unit,
                role,
                seq,
                timeout,
                until: Instant::now() + timeout.min(HOLD_MAX),
            });
            return;
        }
        // A running service's loopback probe, answered from a LISTEN table at most a
        // quarter of its period old (at most RUNNING_SCAN_AGE): one sock_diag dump serves
        // every probe due within it, where a connect each costs ~17 µs of kernel time and
        // a dump of 1,000 listeners ~150 µs (1,000 services probed every second: 20 dumps a
        // second at a twentieth were a third of gantry's idle CPU). The table is read when
        // the probe is due, so a service that stopped listening fails it (through the
        // connect below, which says why) at most a quarter period later than a connect
        // would: within the period the probe runs at anyway.
        let svc = &self.svcs[unit.0];
        let targets = svc.listen_targets(role);
        let max_age = svc
            .role(role)
            .map_or(Duration::ZERO, |p| p.probe.period.0 / 4)
            .min(RUNNING_SCAN_AGE);
        if !targets.is_empty()
            && let Some(w) = &mut self.listen
        {
            let now = Instant::now();
            if w.scanned_at.is_none_or(|t| now.duration_since(t) > max_age) {
                // IPv4 first; the IPv6 listeners only once a target needs them.
                w.scanned_at = w
                    .scanner
                    .scan_v4_accepting(&mut w.listeners)
                    .is_ok()
                    .then_some(now);
                w.reindex();
                w.with_v6 = false;
            }
            let find = |w: &ListenWatch| {
                targets.iter().find_map(|t| {
                    let on_port = crate::listen::of_port_in(&w.index, &w.listeners, t.port());
                    crate::listen::certainly_accepts(on_port, *t)
                })
            };
            let mut hit = w.scanned_at.and_then(|_| find(w));
            if hit.is_none() && w.scanned_at.is_some() && !w.with_v6 {
                w.with_v6 = w.scanner.add_v6_accepting(&mut w.listeners).is_ok();
                w.reindex();
                hit = find(w);
            }
            if let Some(l) = hit {
                self.answered.push_back(Msg::Probe {
                    unit,
                    role,
                    seq,
                    outcome: probe::ProbeOutcome {
                        ok: true,
                        message: pass_message(l),
                        duration: Duration::ZERO,
                    },
                });
                return;
            }
        }
        // A single loopback target: one connect right here (see tcp_loopback_now), no task,
        // no epoll registration, no future moved to the heap. Still a real connect, so a
        // service that stopped listening fails it at once. At 1,000 services probed every
        // second this was most of gantry's own idle CPU. The answer is handled in the loop's
        // next turn like any probe's, after the batch being acted on.
        if let [target] = self.svcs[unit.0].listen_targets(role)
            && let Some(outcome) = probe::tcp_loopback_now(*target)
        {
            self.answered.push_back(Msg::Probe {
                unit,
                role,
                seq,
                outcome,
            });
            return;
        }
        self.run_probe(unit, role, seq, timeout);
    }

    /// Arms the listen watch's timer for what is held now (or disarms it).
    pub(super) fn arm_listen_tick(&mut self) {
        let Some(w) = &mut self.listen else { return };
        let want = (!w.held.is_empty()).then(|| {
            let young = w.held.iter().any(|h| {
                self.svcs[h.unit.0]
                    .spawned_at
                    .is_some_and(|t| t.elapsed() < FAST_FOR)
            });
            // While a wave is being spawned the CPUs belong to the children starting
            // (each start is CPU-bound for a while); scans every millisecond then.
            let period = if self.pool_spawns > 0 {
                STORM_PERIOD
            } else if young {
                FAST_PERIOD
            } else {
                SLOW_PERIOD
            };
            period.max(w.cost * 3)
        });
        if w.tick.set(want).is_err() {
            // Cannot happen with a valid timerfd; fall back to plain connects.
            let held = std::mem::take(&mut w.held);
            self.listen = None;
            for h in held {
                self.run_probe(h.unit, h.role, h.seq, h.timeout);
            }
        }
    }

    /// One sock_diag dump; releases the held probes whose port now has a listener (or
    /// whose hold is over) to a real connect.
    pub(super) fn listen_tick(&mut self) {
        let Some(w) = &mut self.listen else { return };
        let mut release = Vec::new();
        let mut listening = Vec::new();
        let mut passed = Vec::new();
        let began = Instant::now();
        // Only the held probes' ports: the kernel leaves out the listeners of the services
        // already up (a thousand of them made every dump of a boot ~150 µs).
        w.ports.clear();
        for h in &w.held {
            w.ports.extend(
                self.svcs[h.unit.0]
                    .listen_targets(h.role)
                    .iter()
                    .map(|t| t.port()),
            );
        }
        match w.scanner.scan_ports(&w.ports, &mut w.listeners) {
            Ok(()) => {
                let now = Instant::now();
                w.cost = now.duration_since(began);
                w.reindex();
                // A partial table: a running service's probe reads a whole one.
                w.scanned_at = None;
                let (svcs, listeners, index) = (&self.svcs, &w.listeners, &w.index);
                w.held.retain(|h| {
                    let targets = svcs[h.unit.0].listen_targets(h.role);
                    // A listener bound to the target's address (or its family's wildcard)
                    // with room in its accept queue takes a connect for certain: that is
                    // the probe's pass, without the ~0.1 ms loopback handshake.
                    let on_port = |t: &std::net::SocketAddr| {
                        crate::listen::of_port_in(index, listeners, t.port())
                    };
                    if let Some(l) = targets
                        .iter()
                        .find_map(|t| crate::listen::certainly_accepts(on_port(t), *t))
                    {
                        passed.push((*h, l));
                        return false;
                    }
                    if let Some(t) = targets
                        .iter()
                        .find(|t| crate::listen::accepts(on_port(t), **t))
                    {
                        listening.push((*h, *t));
                        return false;
                    }
                    if now >= h.until {
                        release.push(*h);
                        return false;
                    }
                    true
                });
            }
            Err(e) => {
                // Not expected once the socket opened; fall back to connects for good.
                release = std::mem::take(&mut w.held);
                self.listen = None;
                self.out.gantry_line(&format!(
                    "note: listener scan failed ({e}); tcp probes connect every time from now on"
                ));
            }
        }
        for (h, listener) in passed {
            self.message(Msg::Probe {
                unit: h.unit,
                role: h.role,
                seq: h.seq,
                outcome: probe::ProbeOutcome {
                    ok: true,
                    message: pass_message(listener),
                    duration: Duration::ZERO,
                },
            });
        }
        for (h, target) in listening {
            // Something listens: one connect, right here (see tcp_loopback_now).
            match probe::tcp_loopback_now(target) {
                Some(outcome) => self.message(Msg::Probe {
                    unit: h.unit,
                    role: h.role,
                    seq: h.seq,
                    outcome,
                }),
                None => self.run_probe(h.unit, h.role, h.seq, h.timeout),
            }
        }
        for h in release {
            self.run_probe(h.unit, h.role, h.seq, h.timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pass_message_reads_as_the_address_would_print() {
        for a in [
            "127.0.0.1:8080",
            "0.0.0.0:1",
            "255.255.255.255:65535",
            "10.0.0.7:0",
            "[::1]:443",
        ] {
            let addr: std::net::SocketAddr = a.parse().unwrap();
            assert_eq!(
                super::pass_message(addr),
                format!("{addr} is listening and accepting connections")
            );
        }
    }
}

//! Unit configuration as the engine consumes it: the validated plan, already resolved to indices and durations.

use std::fmt;
use std::time::Duration;

use crate::rng::SplitMix64;

/// Index of a unit in the `Vec<UnitConfig>` given to `Engine::new`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitId(pub usize);

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What kind of thing a unit supervises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnitKind {
    /// A long-running process.
    Process,
    /// A one-shot process; success is exit code 0.
    Task,
    /// Something gantry does not start (a managed database, another host): only probed.
    External,
}

/// How much the stack cares about a unit; a `Critical` failure aborts the boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Critical,
    High,
    Medium,
    Low,
}

/// What a dependent waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The dependency has a live process (or is already ready/completed).
    /// An external unit has no process, so it counts as started once ready.
    Started,
    /// The dependency passed its readiness gate (or runs without one). A
    /// task that completed also counts: it did more than become ready.
    Ready,
    /// The dependency is a task that exited 0 (`Engine::new` refuses this
    /// condition on anything else, since it could never be met).
    Completed,
}

/// One edge of the dependency graph, stored on the dependent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dep {
    pub unit: UnitId,
    pub condition: Condition,
    /// `false` makes it a soft dependency: it orders the start but a failed,
    /// skipped or stopped dependency does not hold the dependent back.
    pub required: bool,
}

impl Dep {
    /// A required dependency.
    pub const fn hard(unit: UnitId, condition: Condition) -> Dep {
        Dep {
            unit,
            condition,
            required: true,
        }
    }

    /// A soft dependency: ordering only.
    pub const fn soft(unit: UnitId, condition: Condition) -> Dep {
        Dep {
            unit,
            condition,
            required: false,
        }
    }
}

/// What to do when a ready process exits on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    Never,
    /// Restart after a non-zero exit code or a death by signal.
    OnFailure,
    Always,
}

/// Retries of a start sequence, and the backoff curve reused by restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// Every attempt counts, the first included: `attempts = 1` means no retry.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Full jitter: the delay is uniform in `[0, cap]`.
    pub jitter: bool,
}

impl RetryPolicy {
    /// The delay cap after `failed` failed attempts (`failed >= 1`):
    /// `min(max_backoff, backoff * 2^(failed-1))`.
    ///
    /// Overflow saturates to `max_backoff`, because a retry count of 40 must
    /// not panic the supervisor.
    pub fn cap(&self, failed: u32) -> Duration {
        let exponent = failed.max(1) - 1;
        // Exact in u128 nanoseconds: a zero backoff stays zero however many
        // failures there were, and only a real overflow saturates.
        let base = self.backoff.as_nanos();
        let grown = if base == 0 {
            0
        } else if exponent < base.leading_zeros() {
            base << exponent
        } else {
            u128::MAX
        };
        if grown >= self.max_backoff.as_nanos() {
            return self.max_backoff;
        }
        // Below max_backoff, so it fits in a Duration.
        let secs = u64::try_from(grown / 1_000_000_000).unwrap_or(u64::MAX);
        let nanos = u32::try_from(grown % 1_000_000_000).unwrap_or(0);
        Duration::new(secs, nanos)
    }

    /// The delay before the next attempt after `failed` failed attempts:
    /// the cap itself, or uniform in `[0, cap]` with jitter.
    pub fn delay(&self, failed: u32, rng: &mut SplitMix64) -> Duration {
        let cap = self.cap(failed);
        if self.jitter {
            rng.duration_up_to(cap)
        } else {
            cap
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            jitter: true,
        }
    }
}

/// Restart-loop guard: more than `burst` automatic restarts within `interval`
/// fail the unit. A zero `interval` disables the guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StartLimit {
    pub burst: u32,
    pub interval: Duration,
}

impl Default for StartLimit {
    fn default() -> StartLimit {
        StartLimit {
            burst: 5,
            interval: Duration::from_secs(10),
        }
    }
}

/// Start breaker: after `failures` consecutive failed start attempts, stop
/// trying for `cooldown`, then allow exactly one half-open attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BreakerConfig {
    pub failures: u32,
    pub cooldown: Duration,
}

/// Which gate a probe guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeRole {
    /// Runs first after spawn; readiness and liveness wait until it passes.
    Startup,
    /// Gates `Ready`; keeps running at its `period` while the unit is up, where
    /// `failure_threshold` failures make it `Unready` (not restarted) and
    /// `success_threshold` passes make it ready again.
    Readiness,
    /// Watches a ready unit; `failure_threshold` failures restart it.
    Liveness,
}

impl ProbeRole {
    /// All roles, in the order they run.
    pub const ALL: [ProbeRole; 3] = [
        ProbeRole::Startup,
        ProbeRole::Readiness,
        ProbeRole::Liveness,
    ];

    pub(crate) const fn index(self) -> usize {
        match self {
            ProbeRole::Startup => 0,
            ProbeRole::Readiness => 1,
            ProbeRole::Liveness => 2,
        }
    }
}

impl fmt::Display for ProbeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeRole::Startup => "startup",
            ProbeRole::Readiness => "readiness",
            ProbeRole::Liveness => "liveness",
        })
    }
}

/// Who decides when a probe runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeMode {
    /// The engine schedules runs (exec/http/tcp/store probes).
    Polled { min_interval: Duration },
    /// The shell reports results whenever they happen (log regex, sd_notify);
    /// the engine never asks to run it.
    Pushed,
    /// Pushed, with a watchdog (systemd's `WatchdogSec`): the shell reports
    /// keep-alive passes (sd_notify `WATCHDOG=1`) and each `period` that goes
    /// by without one is a failure, counted against `failure_threshold`.
    Watchdog,
}

/// One probe of a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeConfig {
    pub mode: ProbeMode,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    /// Consecutive passes needed; 0 is treated as 1.
    pub success_threshold: u32,
    /// Consecutive failures that restart a live unit (liveness) or make an up
    /// unit unready (readiness); 0 is treated as 1.
    pub failure_threshold: u32,
}

impl ProbeConfig {
    /// A polled probe with the given steady `period` and fast early probing.
    pub fn polled(period: Duration) -> ProbeConfig {
        ProbeConfig {
            mode: ProbeMode::Polled {
                min_interval: Duration::from_millis(1),
            },
            period,
            ..ProbeConfig::default()
        }
    }

    /// A pushed probe (log line, sd_notify).
    pub fn pushed() -> ProbeConfig {
        ProbeConfig {
            mode: ProbeMode::Pushed,
            ..ProbeConfig::default()
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig {
            mode: ProbeMode::Polled {
                min_interval: Duration::from_millis(1),
            },
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }
}

/// Everything the engine needs to know about one unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitConfig {
    pub name: String,
    pub kind: UnitKind,
    pub priority: Priority,
    pub deps: Vec<Dep>,
    /// 0-based layer index; all 0 when no layers are used.
    pub layer: usize,
    pub startup: Option<ProbeConfig>,
    pub readiness: Option<ProbeConfig>,
    pub liveness: Option<ProbeConfig>,
    pub restart: RestartPolicy,
    pub retry: RetryPolicy,
    /// Measured from Spawn (from the start of probing for external units).
    pub start_timeout: Option<Duration>,
    pub stop_timeout: Duration,
    pub has_cleanup: bool,
    pub start_limit: StartLimit,
    pub breaker: Option<BreakerConfig>,
    /// A process without a startup or readiness probe counts as started (and
    /// running) only once it is still alive this long after its spawn; zero:
    /// at once. Units with a probe never wait for it.
    pub start_grace: Duration,
    /// A unit that was up (ready or running) at least this long before it
    /// crashed is restarted at once; quicker crashes back off (`retry`).
    pub healthy_after: Duration,
}

impl UnitConfig {
    /// A unit with conservative defaults; the plan crate overrides every field.
    pub fn new(name: impl Into<String>, kind: UnitKind) -> UnitConfig {
        UnitConfig {
            name: name.into(),
            kind,
            priority: Priority::High,
            deps: Vec::new(),
            layer: 0,
            startup: None,
            readiness: None,
            liveness: None,
            restart: match kind {
                UnitKind::Process => RestartPolicy::OnFailure,
                UnitKind::Task | UnitKind::External => RestartPolicy::Never,
            },
            retry: RetryPolicy::default(),
            start_timeout: Some(Duration::from_secs(60)),
            stop_timeout: Duration::from_secs(10),
            has_cleanup: false,
            start_limit: StartLimit::default(),
            breaker: None,
            start_grace: Duration::ZERO,
            healthy_after: Duration::from_secs(1),
        }
    }

    /// The probe configured for `role`, if any.
    pub fn probe(&self, role: ProbeRole) -> Option<&ProbeConfig> {
        match role {
            ProbeRole::Startup => self.startup.as_ref(),
            ProbeRole::Readiness => self.readiness.as_ref(),
            ProbeRole::Liveness => self.liveness.as_ref(),
        }
    }
}

/// Engine-wide options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct EngineOptions {
    /// Non-critical failures yield `Outcome::Degraded` instead of NO-GO.
    pub allow_degraded: bool,
    /// Seed of the jitter PRNG: the same seed and inputs replay the same run.
    pub seed: u64,
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnitKind::Process => "process",
            UnitKind::Task => "task",
            UnitKind::External => "external",
        })
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            attempts: 10,
            backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_millis(max_ms),
            jitter: false,
        }
    }

    #[test]
    fn cap_doubles_then_saturates() {
        let p = policy(100, 1000);
        let caps: Vec<u128> = (1..=6).map(|n| p.cap(n).as_millis()).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        // Huge exponents saturate instead of overflowing.
        assert_eq!(p.cap(u32::MAX), Duration::from_millis(1000));
        assert_eq!(p.cap(0), Duration::from_millis(100));
        // Regression: a zero backoff used to jump to max_backoff once the
        // doubling factor overflowed u32.
        assert_eq!(policy(0, 1000).cap(33), Duration::ZERO);
        assert_eq!(
            policy(1, u64::MAX).cap(200),
            Duration::from_millis(u64::MAX)
        );
    }

    #[test]
    fn no_jitter_means_exact_cap() {
        let mut rng = SplitMix64::new(1);
        assert_eq!(
            policy(100, 1000).delay(3, &mut rng),
            Duration::from_millis(400)
        );
    }
}

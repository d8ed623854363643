//! The engine's boundary: the closed `Event` enum it is fed and the `Action`s the shell must carry out.

use std::fmt;
use std::time::Duration;

use crate::config::{ProbeRole, UnitId};
use crate::time::Time;

/// Incarnation number of a unit: bumped at every spawn, so that events from
/// an old incarnation can be told apart and ignored.
pub type Gen = u64;

/// How a process ended, as the shell observed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process of this incarnation (the service itself
    /// when `signal` is SIGKILL, else one of its children) under its memory limit, in
    /// bytes: the shell read it from the service's cgroup. Only the reason text uses it.
    pub oom_kill: Option<u64>,
}

impl ExitStatus {
    /// A normal exit with `code`.
    pub const fn code(code: i32) -> ExitStatus {
        ExitStatus {
            code: Some(code),
            signal: None,
            oom_kill: None,
        }
    }

    /// A death by `signal`.
    pub const fn signal(signal: i32) -> ExitStatus {
        ExitStatus {
            code: None,
            signal: Some(signal),
            oom_kill: None,
        }
    }

    /// Exit code 0 and no signal.
    pub const fn success(&self) -> bool {
        matches!((self.code, self.signal), (Some(0), None))
    }
}

/// SIGKILL, the OOM killer's signal.
const SIGKILL: i32 = 9;

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal, self.oom_kill) {
            (_, Some(SIGKILL), Some(limit)) => {
                return write!(
                    f,
                    "killed by the kernel's OOM killer (memory_max {})",
                    crate::format_size(limit)
                );
            }
            (_, Some(signal), _) => write!(f, "killed by signal {signal}")?,
            (Some(code), None, _) => write!(f, "exit code {code}")?,
            (None, None, _) => f.write_str("unknown exit status")?,
        }
        if let Some(limit) = self.oom_kill {
            write!(
                f,
                "; the kernel's OOM killer killed one of its processes (memory_max {})",
                crate::format_size(limit)
            )?;
        }
        Ok(())
    }
}

/// Requests from people (CLI, API, Ctrl-C).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Stop everything in reverse layer order, reverse dependency order within a layer, then finish.
    Shutdown,
    /// Second Ctrl-C: SIGKILL everything now, skip cleanups, then finish.
    Kill,
    /// Bring a unit (and the required dependencies it needs) up.
    Start(UnitId),
    /// Stop a unit and what hard-depends on it (dependents first).
    Stop(UnitId),
    /// Restart a unit; what hard-depends on it is stopped first and started
    /// again once the unit is ready.
    Restart(UnitId),
    /// Disable a unit (`gantry disable`): stop it and what hard-depends on it, and keep it
    /// down until `Enable`. `why` is what status shows (`disabled by cli:bob: maintenance`).
    Disable { unit: UnitId, why: String },
    /// Clear a unit's disable and bring it up with its required dependencies, each
    /// through its gate; dependents skipped because of it come back too.
    Enable(UnitId),
    /// The unit's process is frozen for inspection: probe results are ignored (no restart,
    /// no readiness change) until `Release`.
    Quarantine(UnitId),
    /// The unit's process is thawed: probes count again.
    Release(UnitId),
}

/// Everything that can happen to the engine, besides time passing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Spawned {
        unit: UnitId,
        r#gen: Gen,
        pid: u32,
    },
    /// The process could not be started at all (command not found, ...):
    /// counts as a failed attempt.
    SpawnFailed {
        unit: UnitId,
        r#gen: Gen,
        error: String,
    },
    Exited {
        unit: UnitId,
        r#gen: Gen,
        status: ExitStatus,
    },
    /// `seq` echoes `Action::RunProbe::seq`; a stale `seq` is ignored. Pushed
    /// probes send `seq = 0`, accepted whenever that probe is active.
    ProbeResult {
        unit: UnitId,
        role: ProbeRole,
        seq: u64,
        ok: bool,
        message: String,
    },
    CleanupDone {
        unit: UnitId,
        ok: bool,
        message: String,
    },
    /// The starting incarnation `gen` asks for more time (sd_notify
    /// `EXTEND_TIMEOUT_USEC`): its start deadline becomes
    /// `max(deadline, now + by)`. Ignored once the unit is ready (or stopping,
    /// or between attempts), for an older generation, and for a unit without
    /// `start_timeout`.
    ExtendStartTimeout {
        unit: UnitId,
        r#gen: Gen,
        by: Duration,
    },
    /// The incarnation `gen` reports itself hung (sd_notify
    /// `WATCHDOG=trigger`): a liveness failure that restarts it at once,
    /// without waiting for `failure_threshold`. Ignored unless its liveness
    /// probe is active (the unit is up and has one), and for an older
    /// generation.
    LivenessFailed {
        unit: UnitId,
        r#gen: Gen,
        message: String,
    },
    Command(Command),
}

/// Which signal to deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopSignal {
    /// The unit's configured stop signal (SIGTERM by default).
    Graceful,
    /// SIGKILL.
    Kill,
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopSignal::Graceful => "graceful",
            StopSignal::Kill => "kill",
        })
    }
}

/// The public state of a unit, as shown to people and dependents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Waiting for dependencies, its layer, or the boot.
    Pending,
    /// An attempt is in progress or the unit is backing off between attempts.
    Starting,
    /// Passed its readiness gate.
    Ready,
    /// A task that exited 0.
    Completed,
    /// Up, without a readiness probe.
    Running,
    /// Up, but its readiness probe (which keeps running while it is up) failed
    /// `failure_threshold` times in a row: not restarted, its dependents keep
    /// running, and gates on its readiness hold until it passes again.
    Unready,
    /// Up but its liveness probe is failing below the threshold, or backing
    /// off before a restart after having been up.
    Degraded,
    Failed,
    /// Never started: a required dependency failed, or the boot was aborted.
    Skipped,
    Stopping,
    Stopped,
}

impl State {
    /// Ready, running, completed, failed, skipped or stopped: nothing more will
    /// happen to it during the boot on its own.
    pub const fn is_settled(self) -> bool {
        matches!(
            self,
            State::Ready
                | State::Running
                | State::Unready
                | State::Degraded
                | State::Completed
                | State::Failed
                | State::Skipped
                | State::Stopped
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Pending => "pending",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Completed => "completed",
            State::Running => "running",
            State::Unready => "unready",
            State::Degraded => "degraded",
            State::Failed => "failed",
            State::Skipped => "skipped",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
        })
    }
}

/// A public state change, for the timeline, logs and the API.
///
/// `from == to` happens for a failed attempt or a restart decision that keeps
/// the public state (`starting -> starting`), so that every retry is visible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub unit: UnitId,
    pub at: Time,
    pub from: State,
    pub to: State,
    pub reason: Option<String>,
}

/// The GO/NO-GO verdict of the boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Go,
    /// Only non-critical units failed and degraded mode is allowed.
    Degraded {
        failed: Vec<UnitId>,
    },
    NoGo {
        unit: UnitId,
        reason: String,
    },
}

impl Outcome {
    /// `Go` or `Degraded`.
    pub const fn is_up(&self) -> bool {
        !matches!(self, Outcome::NoGo { .. })
    }
}

/// What the shell must do. Drain with `Engine::poll_action` after every call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a process; answer with `Spawned` or `SpawnFailed`, later `Exited`.
    Spawn {
        unit: UnitId,
        r#gen: Gen,
        attempt: u32,
    },
    /// Run a polled probe; answer with exactly one `ProbeResult` carrying
    /// `seq` (cut a hung probe at `timeout` and report `ok = false`).
    RunProbe {
        unit: UnitId,
        role: ProbeRole,
        seq: u64,
        timeout: Duration,
    },
    /// Deliver a signal to incarnation `gen` (to its process group).
    Signal {
        unit: UnitId,
        r#gen: Gen,
        signal: StopSignal,
    },
    /// Run the unit's cleanup command; answer with `CleanupDone`.
    RunCleanup {
        unit: UnitId,
    },
    Transition(Notice),
    /// Emitted once.
    BootDecided(Outcome),
    /// Emitted once, after shutdown completed: 0 normally, 1 after NO-GO or
    /// when the stop came while a critical unit was failed.
    Finished {
        exit_code: i32,
    },
}

#[cfg(test)]
mod tests {
    use super::ExitStatus;

    #[test]
    fn an_oom_kill_is_named_with_the_limit() {
        let oom = |mut st: ExitStatus| {
            st.oom_kill = Some(64 << 20);
            st.to_string()
        };
        assert_eq!(ExitStatus::signal(9).to_string(), "killed by signal 9");
        assert_eq!(
            oom(ExitStatus::signal(9)),
            "killed by the kernel's OOM killer (memory_max 64MiB)"
        );
        assert_eq!(
            oom(ExitStatus::code(137)),
            "exit code 137; the kernel's OOM killer killed one of its processes (memory_max 64MiB)"
        );
        assert!(!ExitStatus::signal(9).success() && ExitStatus::code(0).success());
    }
}

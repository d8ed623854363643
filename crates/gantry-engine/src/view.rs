//! Read-only snapshots of a unit for the shell, the API and tests.

use crate::breaker::BreakerState;
use crate::config::{Priority, UnitConfig, UnitId, UnitKind};
use crate::io::{Gen, State};
use crate::time::Time;

/// A borrowed view of one unit; cheap to build, so `Engine::units` can list
/// 10,000 of them without cloning strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitView<'a> {
    pub id: UnitId,
    pub name: &'a str,
    pub kind: UnitKind,
    pub priority: Priority,
    pub layer: usize,
    pub state: State,
    /// Incarnation of the latest spawn (0 before the first one).
    pub r#gen: Gen,
    /// Attempt number within the current start sequence (1 = first try).
    pub attempt: u32,
    /// Restarts so far, automatic and commanded.
    pub restarts: u32,
    /// Of `restarts`, those a command asked for (an operator, a rolling restart, a rollout):
    /// planned work, which alerts do not count as a crash loop.
    pub commanded_restarts: u32,
    pub pid: Option<u32>,
    /// When the current incarnation's process was confirmed (or probing of an
    /// external unit began).
    pub started_at: Option<Time>,
    /// When it last became ready, running or completed.
    pub ready_at: Option<Time>,
    pub last_error: Option<&'a str>,
    /// Reason of the latest state change.
    pub reason: Option<&'a str>,
    /// When a backoff or breaker cooldown ends.
    pub retry_at: Option<Time>,
    /// When the current attempt's `start_timeout` fires, extensions included.
    pub start_deadline: Option<Time>,
    pub breaker: Option<BreakerState>,
    /// Consecutive liveness failures (non-zero means degraded).
    pub liveness_failures: u32,
    /// Times its readiness was lost while it was up (it turned `unready`).
    pub readiness_losses: u32,
    pub config: &'a UnitConfig,
}

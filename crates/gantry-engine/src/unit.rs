//! The runtime record of one unit: its private lifecycle (`Life`), its process slot, and how both map to the public `State`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::breaker::Breaker;
use crate::config::{Condition, Dep, ProbeRole, UnitConfig};
use crate::io::{Gen, State, StopSignal};
use crate::probe::Probe;
use crate::time::Time;

/// The private lifecycle. It is richer than the public `State`: backoff,
/// cleanup and "spawn requested but not confirmed" are distinct here because
/// the engine reacts to them differently.
///
/// Each timer kind belongs to one life (Start to Spawning/Probing, Backoff to
/// BackingOff, Stop to Stopping, startup/readiness probes to Probing, liveness
/// to Up) and is cancelled when the unit leaves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    /// Not started: waits for the boot, its layer, its dependencies, or for
    /// its previous process to be gone.
    Waiting,
    /// `Spawn` was emitted; `Spawned` has not arrived yet.
    Spawning,
    /// An attempt is live: startup/readiness probes run (process, external),
    /// or the task runs.
    Probing,
    /// Passed its gate. `ready` is false for a process without readiness probe.
    /// `lost`: its readiness probe, which keeps running while it is up, has
    /// since failed `failure_threshold` times in a row (public `unready`); it is
    /// not restarted, and gates on its readiness hold until the probe passes
    /// `success_threshold` times again.
    Up {
        ready: bool,
        lost: bool,
    },
    /// A task that exited 0.
    Completed,
    /// Between attempts (or before a restart, `after_up`).
    BackingOff {
        until: Time,
        after_up: bool,
    },
    Failed,
    Skipped,
    /// A signal was sent (or is deferred until `Spawned`); `killed` once the
    /// Kill went out.
    Stopping {
        killed: bool,
    },
    /// The process is gone; the cleanup command runs.
    CleaningUp,
    Stopped,
}

impl Life {
    /// Nothing more happens on its own during the boot.
    pub(crate) const fn is_settled(self) -> bool {
        matches!(
            self,
            Life::Up { .. } | Life::Completed | Life::Failed | Life::Skipped | Life::Stopped
        )
    }

    /// Will not come back without a command: a required dependency in one of
    /// these states skips its dependents.
    pub(crate) const fn is_dead(self) -> bool {
        matches!(self, Life::Failed | Life::Skipped | Life::Stopped)
    }

    /// Final for shutdown purposes.
    pub(crate) const fn is_final(self) -> bool {
        matches!(
            self,
            Life::Completed | Life::Failed | Life::Skipped | Life::Stopped
        )
    }
}

/// How a unit looks to the units that depend on it. Cached so that its
/// dependents' edge counters are only touched when this actually changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Facing {
    pub(crate) started: bool,
    pub(crate) ready: bool,
    pub(crate) completed: bool,
    pub(crate) dead: bool,
}

/// The cached status of one dependency edge, seen from the dependent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Edge {
    /// The condition is met, or the edge is soft and its target is dead.
    pub(crate) satisfied: bool,
    /// A required edge whose target is dead: the dependent will be skipped.
    pub(crate) dead_required: bool,
}

impl Edge {
    pub(crate) fn of(facing: Facing, dep: Dep) -> Edge {
        let met = match dep.condition {
            Condition::Started => facing.started,
            Condition::Ready => facing.ready,
            Condition::Completed => facing.completed,
        };
        Edge {
            satisfied: met || (!dep.required && facing.dead),
            dead_required: dep.required && facing.dead,
        }
    }
}

/// What the engine knows about the current incarnation's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proc {
    Down,
    /// Spawn emitted, not confirmed: the process may exist.
    Spawning,
    Alive {
        pid: u32,
    },
}

/// What the unit should be doing, as asked by the boot or by commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Goal {
    Up,
    Down,
}

#[derive(Clone, Debug)]
pub(crate) struct Unit {
    pub(crate) config: UnitConfig,
    pub(crate) life: Life,
    /// The last public state announced in a `Notice`.
    pub(crate) state: State,
    pub(crate) proc: Proc,
    /// A signal to send as soon as `Spawned` confirms the process: a stop or
    /// kill decided while the spawn was in flight.
    pub(crate) doomed: Option<StopSignal>,
    pub(crate) goal: Goal,
    /// The current incarnation must go down; it is signalled once every
    /// dependent that is also going down is gone.
    pub(crate) stop_requested: bool,
    pub(crate) stop_reason: Option<String>,
    /// After the stop completes, come back after this delay (restarts).
    pub(crate) restart_delay: Option<Duration>,
    /// After the stop completes, end as Failed with this message.
    pub(crate) pending_failure: Option<String>,
    pub(crate) r#gen: Gen,
    /// Attempts made in the current start sequence.
    pub(crate) attempt: u32,
    pub(crate) restarts: u32,
    /// The restarts a command asked for (`restarts` counts them too).
    pub(crate) commanded_restarts: u32,
    /// Times its readiness was lost while it was up.
    pub(crate) readiness_losses: u32,
    /// Consecutive quick restarts, for the restart backoff.
    pub(crate) crash_streak: u32,
    /// Times of recent automatic restarts, for the start limit.
    pub(crate) restart_times: VecDeque<Time>,
    pub(crate) up_since: Option<Time>,
    pub(crate) started_at: Option<Time>,
    /// When the current attempt began (its start deadline is measured from here).
    pub(crate) attempt_began: Time,
    /// The attempt's start deadline, when `ExtendStartTimeout` moved it later.
    pub(crate) start_extended: Option<Time>,
    pub(crate) ready_at: Option<Time>,
    pub(crate) last_error: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) breaker: Option<Breaker>,
    /// Boxed: most units have one probe of three (a unit is 0.4 KB smaller).
    pub(crate) probes: [Option<Box<Probe>>; 3],
    /// A definition handed in by a reload (`Engine::replace_config`), taken on at the
    /// unit's next start while its process is down.
    pub(crate) pending_config: Option<Box<UnitConfig>>,
    /// Within `start_grace` of its spawn (a process without probes): not
    /// started yet for its dependents.
    pub(crate) in_grace: bool,
    /// Settled at least once: counted off its layer's barrier for good.
    pub(crate) settled_once: bool,
    /// Cached `is_busy()`, so the engine keeps a count instead of scanning.
    pub(crate) busy: bool,
    /// Cached `is_blocking()`, counted in each dependency's `blocked_by`.
    pub(crate) blocking: bool,
    /// Cached `facing()`, reflected in each dependent's edges.
    pub(crate) facing: Facing,
    /// Status of each of `config.deps`, same order.
    pub(crate) edges: Vec<Edge>,
    /// Edges in `edges` that are not satisfied.
    pub(crate) unsatisfied: usize,
    /// Edges in `edges` that are required and dead.
    pub(crate) dead_required: usize,
    /// Dependents (counted per edge) that are going down and not gone yet.
    pub(crate) blocked_by: usize,
    /// Disabled by an operator (`gantry disable`): the text says by whom and why. A disabled
    /// unit stays down: no restart, no start by a command or a dependency's recovery.
    pub(crate) disabled: Option<String>,
    /// Added to a running engine and not started since (`Engine::add_units`): an enable
    /// starts it like a disabled unit, dependencies first.
    pub(crate) held: bool,
    /// Skipped because a required dependency is disabled (directly or down the chain): an
    /// operator's choice, not a boot failure, so it never makes the boot NO-GO.
    pub(crate) skipped_by_switch: bool,
    /// Quarantined (`gantry quarantine`): its process is frozen; probe results are ignored
    /// and nothing restarts it until it is released.
    pub(crate) quarantined: bool,
}

impl Unit {
    pub(crate) fn new(config: UnitConfig) -> Unit {
        let probes = probes_of(&config);
        // Nothing is up yet, so every edge starts unsatisfied.
        let edges_len = config.deps.len();
        Unit {
            breaker: config.breaker.map(Breaker::new),
            config,
            life: Life::Waiting,
            state: State::Pending,
            proc: Proc::Down,
            doomed: None,
            goal: Goal::Up,
            stop_requested: false,
            stop_reason: None,
            restart_delay: None,
            pending_failure: None,
            r#gen: 0,
            attempt: 0,
            restarts: 0,
            commanded_restarts: 0,
            readiness_losses: 0,
            crash_streak: 0,
            restart_times: VecDeque::new(),
            up_since: None,
            started_at: None,
            attempt_began: Time::ZERO,
            start_extended: None,
            ready_at: None,
            last_error: None,
            reason: None,
            probes,
            pending_config: None,
            in_grace: false,
            settled_once: false,
            busy: true,
            blocking: false,
            facing: Facing::default(),
            unsatisfied: edges_len,
            edges: vec![Edge::default(); edges_len],
            dead_required: 0,
            blocked_by: 0,
            disabled: None,
            held: false,
            skipped_by_switch: false,
            quarantined: false,
        }
    }

    pub(crate) fn probe(&self, role: ProbeRole) -> Option<&Probe> {
        self.probes[role.index()].as_deref()
    }

    pub(crate) fn probe_mut(&mut self, role: ProbeRole) -> Option<&mut Probe> {
        self.probes[role.index()].as_deref_mut()
    }

    pub(crate) fn liveness_failures(&self) -> u32 {
        self.probe(ProbeRole::Liveness).map_or(0, |p| p.failures)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        match self.proc {
            Proc::Alive { pid } => Some(pid),
            Proc::Down | Proc::Spawning => None,
        }
    }

    /// A dependent in this state holds its dependencies back: it is going
    /// down and not gone yet.
    pub(crate) fn is_blocking(&self) -> bool {
        self.stop_requested || (self.goal == Goal::Down && self.proc != Proc::Down)
    }

    /// How this unit satisfies its dependents' conditions. A unit on its way
    /// down satisfies nothing, or a bounced dependent would start again
    /// before the restart.
    pub(crate) fn facing(&self) -> Facing {
        let live = !self.stop_requested;
        let up = matches!(self.life, Life::Up { .. } | Life::Completed);
        let serving = matches!(self.life, Life::Up { lost: false, .. } | Life::Completed);
        let running =
            self.life == Life::Probing && matches!(self.proc, Proc::Alive { .. }) && !self.in_grace;
        Facing {
            started: live && (up || running),
            ready: live && serving,
            completed: live && self.life == Life::Completed,
            dead: self.life.is_dead(),
        }
    }

    /// Still needs something to happen before a shutdown can finish.
    pub(crate) fn is_busy(&self) -> bool {
        !self.life.is_final() || self.proc != Proc::Down || self.stop_requested
    }

    /// The public state this private state shows as.
    pub(crate) fn public_state(&self) -> State {
        match self.life {
            Life::Waiting => State::Pending,
            Life::Spawning | Life::Probing => State::Starting,
            Life::BackingOff { after_up: true, .. } => State::Degraded,
            Life::BackingOff {
                after_up: false, ..
            } => State::Starting,
            Life::Up { lost: true, .. } => State::Unready,
            Life::Up { .. } if self.liveness_failures() > 0 => State::Degraded,
            Life::Up { ready: true, .. } => State::Ready,
            Life::Up { ready: false, .. } => State::Running,
            Life::Completed => State::Completed,
            Life::Failed => State::Failed,
            Life::Skipped => State::Skipped,
            Life::Stopping { .. } | Life::CleaningUp => State::Stopping,
            Life::Stopped => State::Stopped,
        }
    }
}

/// A unit's probe states, fresh, for the probes its config defines.
pub(crate) fn probes_of(config: &UnitConfig) -> [Option<Box<Probe>>; 3] {
    ProbeRole::ALL.map(|role| config.probe(role).map(|p| Box::new(Probe::new(*p, role))))
}

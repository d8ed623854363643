//! The one engine host: owns the sans-IO engine inside a tokio event loop; every driver (processes, embedded components) is an executor of its actions.
//!
//! The engine decides and never reads a clock; a driver does I/O. Between them sits
//! this host, the same for both drivers:
//!
//! - **time**: the epoch ↔ engine-time mapping ([`Host::now`], [`Host::instant`], checked,
//!   so a `Duration::MAX` timeout never panics) and the next deadline;
//! - **the pump**: [`drain`] hands every pending action to the driver's
//!   [`Executor`], batch by batch, and books what the snapshots need (first spawn, start
//!   of the current start sequence);
//! - **the API side**: [`Host::request`] maps an [`ApiCommand`] onto the engine, one
//!   wording for both drivers; [`Host::snapshot`] builds the [`Snapshot`] the API serves,
//!   with one meaning of uptime and time-to-ready ([`snapshot`]);
//! - **probe figures**: the per-unit failure count and sample ring behind the metrics;
//! - **the critical chain** of the boot as it happened ([`Host::critical_chain`]).
//!
//! A new subsystem (ingress, flags, alerts) plugs in the same way the drivers do: its
//! I/O runs in the driver's loop, what it learns reaches the engine as events through
//! the host, and what it shows is one more part of the snapshot (ARCHITECTURE.md).

mod book;
mod command;
pub mod snapshot;

pub use book::{LastProbe, ProbeRing};
pub use command::{Request, Verb};
pub use snapshot::Extra;

use book::Book;
use gantry_api::model::{ApiCommand, BootPhase, Snapshot};
use gantry_engine::{Action, Engine, Event, ProbeRole, State, Time, UnitId, UnitView};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// What a driver does with the engine's actions. The driver owns its [`Host`] and
/// lends it to the pump ([`drain`]).
pub trait Executor {
    /// The host this executor drives.
    fn host(&mut self) -> &mut Host;
    /// A batch of actions is about to be carried out (e.g. to count the spawns in it).
    fn begin_batch(&mut self, _batch: &[Action]) {}
    /// Carries out one action; `Some(exit code)` once the engine is finished and the
    /// driver should return.
    fn act(&mut self, action: Action) -> Option<i32>;
}

/// The pump: carries out every pending action with `exec`, batch by batch (a batch is
/// what the engine produced in one go: a wave of spawns comes as one); the exit code
/// once the engine is finished.
pub fn drain<E: Executor + ?Sized>(exec: &mut E) -> Option<i32> {
    loop {
        let mut batch = exec.host().take_batch();
        if batch.is_empty() {
            exec.host().batch = batch;
            return None;
        }
        exec.begin_batch(&batch);
        let mut code = None;
        for action in batch.drain(..) {
            if code.is_some() {
                continue;
            }
            exec.host().book(&action);
            code = exec.act(action);
        }
        exec.host().batch = batch;
        if code.is_some() {
            return code;
        }
    }
}

/// The engine and everything both drivers keep beside it.
pub struct Host {
    engine: Engine,
    epoch: Instant,
    started_at: SystemTime,
    books: Vec<Book>,
    batch: Vec<Action>,
    /// Something the snapshot shows changed (a state, a command).
    dirty: bool,
    /// Only figures changed (probe durations, usage): published lazily.
    stats_dirty: bool,
    phase: BootPhase,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("units", &self.books.len())
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Hosts `engine`; its epoch is now until [`Host::start`] resets it.
    pub fn new(engine: Engine) -> Host {
        let n = engine.units().count();
        Host {
            engine,
            epoch: Instant::now(),
            started_at: SystemTime::now(),
            books: (0..n).map(|_| Book::default()).collect(),
            batch: Vec::new(),
            dirty: true,
            stats_dirty: false,
            phase: BootPhase::Booting,
        }
    }

    /// Starts the boot: the epoch (engine time zero) is now.
    pub fn start(&mut self) {
        self.epoch = Instant::now();
        self.started_at = SystemTime::now();
        self.engine.start(Time::ZERO);
        self.dirty = true;
    }

    /// Adds units to the running engine (a service enabled that the selection left out):
    /// stopped with `why` until started or enabled. Their books start empty.
    pub fn add_units(
        &mut self,
        configs: Vec<gantry_engine::UnitConfig>,
        why: &str,
    ) -> Result<Vec<gantry_engine::UnitId>, String> {
        let ids = self
            .engine
            .add_units(configs, why)
            .map_err(|e| e.to_string())?;
        self.books
            .resize_with(self.books.len() + ids.len(), Book::default);
        self.dirty = true;
        Ok(ids)
    }

    /// The engine, read-only: drivers feed it through the host.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// One unit's view.
    pub fn unit(&self, unit: UnitId) -> UnitView<'_> {
        self.engine.unit(unit)
    }

    /// When the boot started (wall clock), for records and the API.
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Engine time now.
    pub fn now(&self) -> Time {
        Time(self.epoch.elapsed())
    }

    /// The instant an engine time stands for; the far future when it cannot be
    /// represented (a timeout of `Duration::MAX` must not panic).
    pub fn instant(&self, t: Time) -> Instant {
        self.epoch
            .checked_add(t.as_duration())
            .unwrap_or_else(|| far_future(self.epoch))
    }

    /// When the engine next wants [`Host::timeout`], if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.engine.poll_timeout().map(|t| self.instant(t))
    }

    /// Feeds one event at the current time.
    pub fn handle(&mut self, event: Event) {
        let now = self.now();
        self.engine.handle(now, event);
    }

    /// The deadline passed.
    pub fn timeout(&mut self) {
        let now = self.now();
        self.engine.handle_timeout(now);
    }

    /// A probe answered: counted in the unit's figures, then fed to the engine.
    pub fn probe_result(
        &mut self,
        unit: UnitId,
        role: ProbeRole,
        seq: u64,
        ok: bool,
        message: String,
        duration: Duration,
    ) {
        let at = self.now();
        let probes = &mut self.books[unit.0].probes;
        probes.record(ok, duration);
        probes.remember_result(role, ok, &message, duration, at);
        self.stats_dirty = true;
        // At the time it was recorded: one clock read per result (a thousand a second at
        // 1,000 services).
        self.engine.handle(
            at,
            Event::ProbeResult {
                unit,
                role,
                seq,
                ok,
                message,
            },
        );
    }

    /// A pushed pass (a log line matched, sd_notify READY=1): no duration to count.
    pub fn pushed_pass(&mut self, unit: UnitId, role: ProbeRole, message: String) {
        let at = self.now();
        self.books[unit.0].probes.remember(LastProbe {
            role,
            ok: true,
            message: message.clone(),
            duration: Duration::ZERO,
            at,
        });
        self.stats_dirty = true;
        self.handle(Event::ProbeResult {
            unit,
            role,
            seq: 0,
            ok: true,
            message,
        });
    }

    /// The live incarnation of `unit` says it is hung (sd_notify `WATCHDOG=trigger`): a
    /// liveness failure that restarts it at once if a liveness probe watches it.
    pub fn reported_hung(&mut self, unit: UnitId, message: String) {
        let at = self.now();
        let r#gen = self.engine.unit(unit).r#gen;
        self.books[unit.0].probes.remember(LastProbe {
            role: ProbeRole::Liveness,
            ok: false,
            message: message.clone(),
            duration: Duration::ZERO,
            at,
        });
        self.stats_dirty = true;
        self.handle(Event::LivenessFailed {
            unit,
            r#gen,
            message,
        });
    }

    /// Everything the engine wants done now, in the reused buffer.
    fn take_batch(&mut self) -> Vec<Action> {
        let mut batch = std::mem::take(&mut self.batch);
        while let Some(action) = self.engine.poll_action() {
            batch.push(action);
        }
        batch
    }

    /// When the unit's latest start sequence began (its first attempt).
    pub fn sequence_start(&self, unit: UnitId) -> Option<Time> {
        self.books[unit.0].sequence_start
    }

    fn book(&mut self, action: &Action) {
        match action {
            Action::Spawn { unit, attempt, .. } => {
                let now = self.now();
                let book = &mut self.books[unit.0];
                book.first_spawn.get_or_insert(now);
                // A start sequence begins with its first attempt (a restart after a crash,
                // a commanded start); retries within it keep its beginning.
                if *attempt <= 1 || book.sequence_start.is_none() {
                    book.sequence_start = Some(now);
                }
            }
            Action::Transition(_) | Action::BootDecided(_) => self.dirty = true,
            _ => {}
        }
    }

    /// Maps an API command onto the engine (unknown services and commands during the
    /// shutdown are refused); the driver says so in its own output, then calls
    /// [`Host::apply`].
    pub fn request(&self, command: &ApiCommand) -> Result<Request, String> {
        command::resolve(&self.engine, command)
    }

    /// Hands a resolved request to the engine; the answer for the API client.
    pub fn apply(&mut self, request: &Request) -> String {
        self.dirty = true;
        if let Request::Service {
            unit,
            verb: Verb::Start | Verb::Restart,
            ..
        } = request
        {
            self.books[unit.0].acked_error = self.engine.unit(*unit).last_error.map(str::to_string);
        }
        if let Some(command) = request.engine_command() {
            self.handle(Event::Command(command));
        }
        request.reply()
    }

    /// Replaces a unit's definition (a reload; see `Engine::replace_config`): taken on
    /// at once when it has no process, else at its next start.
    pub fn replace_config(
        &mut self,
        unit: UnitId,
        config: gantry_engine::UnitConfig,
    ) -> Result<bool, String> {
        self.dirty = true;
        self.engine.replace_config(unit, config)
    }

    /// Sends an engine command (shutdown, kill, start, ...) directly.
    pub fn command(&mut self, command: gantry_engine::Command) {
        self.dirty = true;
        self.handle(Event::Command(command));
    }

    /// The boot is decided: the API phase follows.
    pub fn set_phase(&mut self, phase: BootPhase) {
        self.phase = phase;
        self.dirty = true;
    }

    /// The API phase (booting, or the decided outcome).
    pub fn phase(&self) -> &BootPhase {
        &self.phase
    }

    /// Marks the snapshot stale (a state change the driver knows of).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Marks figures stale (published lazily).
    pub fn mark_stats(&mut self) {
        self.stats_dirty = true;
    }

    /// Whether a state change awaits publishing, and whether figures do.
    pub fn stale(&self) -> (bool, bool) {
        (self.dirty, self.stats_dirty)
    }

    /// When the unit was first spawned in this boot.
    pub fn first_spawn(&self, unit: UnitId) -> Option<Time> {
        self.books[unit.0].first_spawn
    }

    /// How long the unit's latest start sequence took until it became ready (a restart
    /// counts from the restart, not from the boot's first spawn).
    pub fn time_to_ready(&self, unit: UnitId) -> Option<Duration> {
        snapshot::time_to_ready(&self.engine.unit(unit), &self.books[unit.0])
    }

    /// The probe figures of one unit.
    pub fn probes(&self, unit: UnitId) -> &ProbeRing {
        &self.books[unit.0].probes
    }

    /// The snapshot the API serves; `extra` adds what only the driver knows per unit.
    /// Clears the stale marks.
    pub fn snapshot(
        &mut self,
        file: &str,
        graph: &gantry_api::model::JsonText,
        drift_problems: u64,
        shutting_down: bool,
        mut extra: impl FnMut(&UnitView<'_>) -> Extra,
    ) -> Snapshot {
        self.dirty = false;
        self.stats_dirty = false;
        let now = self.now();
        let services = self
            .engine
            .units()
            .map(|v| {
                let e = extra(&v);
                snapshot::from_view(&v, &self.books[v.id.0], now, self.started_at, e)
            })
            .collect();
        Snapshot {
            file: file.to_string(),
            started_at: self.started_at,
            boot: self.phase.clone(),
            shutting_down: shutting_down || self.engine.is_shutting_down(),
            services,
            graph: graph.clone(),
            drift_problems,
            cluster: None,
            published_at: None,
            usage_sampled: None,
            usage_deferred: false,
        }
    }

    /// The chain of units that determined when the boot finished: from the last unit to
    /// become ready back through whichever gate released each one last — its
    /// dependencies and the barrier of the earlier layers.
    pub fn critical_chain(&self) -> Vec<UnitId> {
        let layered = self.engine.units().any(|v| v.layer > 0);
        let nodes: Vec<_> = self
            .engine
            .units()
            .map(|v| gantry_engine::chain::ChainNode {
                deps: v.config.deps.iter().map(|d| d.unit.0).collect(),
                layer: layered.then_some(v.layer),
                started: self.books[v.id.0].first_spawn.map(Time::as_millis),
                ready: v.ready_at.filter(|_| is_up(v.state)).map(Time::as_millis),
            })
            .collect();
        // The walk answers last-ready first; the chain reads first link first.
        let mut chain = gantry_engine::chain::critical_chain(&nodes);
        chain.reverse();
        chain.into_iter().map(UnitId).collect()
    }

    /// The critical chain as the GO line prints it: `db → migrate → api`.
    pub fn critical_chain_text(&self) -> String {
        let chain = self.critical_chain();
        if chain.is_empty() {
            return "(nothing started)".into();
        }
        chain
            .iter()
            .map(|&u| self.engine.unit(u).name)
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// Ready, running or completed: the unit meets its gate.
pub fn is_up(state: State) -> bool {
    matches!(state, State::Ready | State::Running | State::Completed)
}

/// Roughly thirty years after `from`: "never" for a timer.
fn far_future(from: Instant) -> Instant {
    from + Duration::from_secs(86_400 * 365 * 30)
}

/// Sleeps until `deadline`, or forever without one (a `select!` arm that never fires).
pub async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

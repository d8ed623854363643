//! The tokio task that owns the engine for an embedded boot: runs init, readiness and cleanup futures for the engine's actions and feeds their results back as events.
//!
//! The mapping, one component = one `Process` unit:
//!
//! | engine says | the driver does | and feeds back |
//! |---|---|---|
//! | `Spawn` | spawns the `init` future | `Spawned { pid: 0 }` at once |
//! | | `init` returned `Ok` | a pushed probe pass: `Readiness` (ready now), or `Startup` when a readiness function exists (the engine then polls it) |
//! | | `init` returned `Err(e)` (or panicked) | `Exited { code 1 }`; `e` is kept for the report |
//! | `RunProbe` | runs the readiness function, cut at the probe timeout | `ProbeResult { seq }` |
//! | `Signal Kill` (start timeout; cleanup overran) | aborts `init` (or the cleanup); cleans up first if `init` had succeeded | `Exited { signal 9 }` |
//! | `Signal Graceful` (shutdown, NO-GO, reinitialize) | aborts an unfinished `init`, else runs `cleanup` | `Exited { code 0 }` once it is done |
//! | timers | `tokio::time::sleep_until(poll_timeout)` | `handle_timeout` |
//!
//! Retries, backoff with jitter, the start breaker, timeouts, dependency order, skipping,
//! GO/DEGRADED/NO-GO and the reverse-order stop are all the engine's: this file only does I/O.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_api::model::{ApiCommand, BootPhase, CommandRequest, Snapshot};
use gantry_engine::{
    Action, Command, Engine, Event, ExitStatus, Gen, HumanDuration, Notice, Outcome, Priority,
    ProbeRole, State, StopSignal, Time, UnitId,
};
use gantry_host::{Executor, Extra, Host};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::component::{BoxFuture, Component};
use crate::error::BootError;
mod reinit;
mod views;

use crate::report::{
    BootOutcome, BootStatus, CleanupReport, ComponentReport, ComponentState, ComponentStatus,
    ShutdownReport, StartupReport, millis,
};

/// Requests from `Boot` handles.
pub(crate) enum Ctl {
    /// Answered once the boot is decided (a NO-GO: once its cleanups are done).
    Start(oneshot::Sender<StartupReport>),
    Reinit {
        name: String,
        reply: oneshot::Sender<Result<ComponentReport, BootError>>,
    },
    Shutdown(oneshot::Sender<ShutdownReport>),
}

/// Results of the futures the driver spawned.
enum Done {
    Init {
        unit: UnitId,
        r#gen: Gen,
        result: Result<(), String>,
    },
    Probe {
        unit: UnitId,
        role: ProbeRole,
        seq: u64,
        result: Result<(), String>,
        duration: Duration,
    },
    Cleanup {
        unit: UnitId,
        r#gen: Gen,
        result: Result<(), String>,
        duration: Duration,
    },
}

/// What survives the driver task: late `start()` / `shutdown()` calls read it.
#[derive(Debug, Default)]
pub(crate) struct Finals {
    pub(crate) startup: Option<StartupReport>,
    pub(crate) shutdown: Option<ShutdownReport>,
}

/// The channels the driver publishes on and listens to, created by the builder so that the
/// `Boot` handle (and its routers) work before the driver task exists.
pub(crate) struct Wiring {
    pub(crate) ctl: mpsc::UnboundedReceiver<Ctl>,
    pub(crate) api: mpsc::Receiver<CommandRequest>,
    pub(crate) status: watch::Sender<Arc<BootStatus>>,
    pub(crate) snapshot: watch::Sender<Arc<Snapshot>>,
    pub(crate) events: broadcast::Sender<Value>,
    pub(crate) finals: Arc<Mutex<Finals>>,
}

/// The driver's record of one component.
struct Slot {
    component: Component,
    /// The incarnation the engine last spawned.
    r#gen: Gen,
    /// The engine believes the incarnation is alive (`Spawned` fed, `Exited` not yet).
    live: bool,
    init: Option<AbortHandle>,
    probe: Option<AbortHandle>,
    /// The running cleanup and when it began.
    cleanup: Option<(AbortHandle, Time)>,
    /// `init` of the current incarnation returned `Ok`: a stop must run `cleanup`.
    initialized: bool,
    /// Duration and retries of the latest sequence that ended (ready or failed).
    settled: Option<(Duration, u32)>,
    /// Reached ready before the boot was decided: SUCCESS in the startup report.
    ready_in_boot: bool,
    cleaned_up: bool,
    /// The latest attempt's failure, in the user's words (the engine only saw an exit code).
    cause: Option<String>,
}

pub(crate) struct Driver {
    host: Host,
    slots: Vec<Slot>,
    allow_degraded: bool,
    name: String,
    graph: gantry_api::model::JsonText,
    wiring: Wiring,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    ctl_open: bool,
    api_open: bool,
    /// Our own verdict (the API phase is the host's).
    outcome: Option<BootOutcome>,
    report: Option<StartupReport>,
    start_waiters: Vec<oneshot::Sender<StartupReport>>,
    shutdown_waiters: Vec<oneshot::Sender<ShutdownReport>>,
    reinits: Vec<reinit::ReinitWait>,
    shutdown_began: Option<Time>,
    shutdown_cleanups: Vec<CleanupReport>,
    finished: bool,
}

impl Driver {
    pub(crate) fn new(
        engine: Engine,
        components: Vec<Component>,
        allow_degraded: bool,
        name: String,
        graph: gantry_api::model::JsonText,
        wiring: Wiring,
    ) -> Driver {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let slots = components
            .into_iter()
            .map(|component| Slot {
                component,
                r#gen: 0,
                live: false,
                init: None,
                probe: None,
                cleanup: None,
                initialized: false,
                settled: None,
                ready_in_boot: false,
                cleaned_up: false,
                cause: None,
            })
            .collect();
        Driver {
            host: Host::new(engine),
            slots,
            allow_degraded,
            name,
            graph,
            wiring,
            done_tx,
            done_rx,
            ctl_open: true,
            api_open: true,
            outcome: None,
            report: None,
            start_waiters: Vec::new(),
            shutdown_waiters: Vec::new(),
            reinits: Vec::new(),
            shutdown_began: None,
            shutdown_cleanups: Vec::new(),
            finished: false,
        }
    }

    /// The snapshot and status before anything ran (all pending), for a boot not started yet.
    pub(crate) fn initial_views(&mut self) -> (BootStatus, Snapshot) {
        (self.status(false), self.snapshot())
    }

    fn now(&self) -> Time {
        self.host.now()
    }

    /// Runs the boot until the shutdown is complete.
    pub(crate) async fn run(mut self) {
        self.host.start();
        loop {
            gantry_host::drain(&mut self);
            self.check_reinits();
            if self.host.stale().0 {
                self.publish();
            }
            if self.finished {
                break;
            }
            let deadline = self.host.deadline();
            tokio::select! {
                // Results first: a completion that raced a timer still counts.
                biased;
                Some(done) = self.done_rx.recv() => self.on_done(done),
                ctl = self.wiring.ctl.recv(), if self.ctl_open => match ctl {
                    Some(ctl) => self.on_ctl(ctl),
                    None => {
                        // Every `Boot` handle is gone: nobody can shut down any more, so
                        // release what was initialized now.
                        self.ctl_open = false;
                        self.begin_shutdown();
                    }
                },
                request = self.wiring.api.recv(), if self.api_open => match request {
                    Some(CommandRequest { command, reply, .. }) => {
                        let answer = self.api_command(command);
                        let _ = reply.send(answer);
                    }
                    None => self.api_open = false,
                },
                () = gantry_host::sleep_until_opt(deadline), if deadline.is_some() => self.host.timeout(),
            }
        }
    }

    // ----- Requests -----------------------------------------------------------

    fn on_ctl(&mut self, ctl: Ctl) {
        match ctl {
            Ctl::Start(reply) => match &self.report {
                Some(report) if self.report_final() => {
                    let _ = reply.send(report.clone());
                }
                _ => self.start_waiters.push(reply),
            },
            Ctl::Shutdown(reply) => {
                self.shutdown_waiters.push(reply);
                self.begin_shutdown();
            }
            Ctl::Reinit { name, reply } => self.reinit(name, reply),
        }
    }

    /// A GO/DEGRADED report is final at the decision; a NO-GO one once its cleanups ran.
    fn report_final(&self) -> bool {
        self.outcome.as_ref().is_some_and(BootOutcome::is_up) || self.finished
    }

    fn begin_shutdown(&mut self) {
        if self.shutdown_began.is_none() {
            self.shutdown_began = Some(self.now());
        }
        self.host.command(Command::Shutdown);
    }

    /// A mutation from `Boot::api_router` (token already checked by the API).
    fn api_command(&mut self, command: ApiCommand) -> Result<String, String> {
        let request = self.host.request(&command)?;
        if request == gantry_host::Request::Shutdown {
            self.begin_shutdown();
            return Ok(request.reply());
        }
        Ok(self.host.apply(&request))
    }

    // ----- Actions ------------------------------------------------------------

    fn act_on(&mut self, action: Action) {
        self.host.mark_dirty();
        match action {
            Action::Spawn { unit, r#gen, .. } => self.spawn_init(unit, r#gen),
            Action::RunProbe {
                unit,
                role,
                seq,
                timeout,
            } => self.run_probe(unit, role, seq, timeout),
            Action::Signal {
                unit,
                r#gen,
                signal,
            } => self.signal(unit, r#gen, signal),
            // Components clean up while stopping (see `signal`), so `has_cleanup` is off and
            // this never comes; answer anyway so the engine can never wait on it.
            Action::RunCleanup { unit } => {
                self.host.handle(Event::CleanupDone {
                    unit,
                    ok: true,
                    message: String::new(),
                });
            }
            Action::Transition(notice) => self.transition(notice),
            Action::BootDecided(outcome) => self.decided(outcome),
            Action::Finished { .. } => self.on_finished(),
        }
    }

    fn spawn_init(&mut self, unit: UnitId, r#gen: Gen) {
        let tx = self.done_tx.clone();
        let slot = &mut self.slots[unit.0];
        slot.r#gen = r#gen;
        slot.live = true;
        slot.initialized = false;
        let fut: BoxFuture<Result<(), String>> = match &slot.component.init {
            Some(init) => init(),
            None => Box::pin(async { Ok(()) }),
        };
        slot.init = Some(spawn_job(fut, "init", move |result| {
            let _ = tx.send(Done::Init {
                unit,
                r#gen,
                result,
            });
        }));
        // There is no process to confirm: the attempt is live as soon as its future is.
        self.host.handle(Event::Spawned {
            unit,
            r#gen,
            pid: 0,
        });
    }

    fn run_probe(&mut self, unit: UnitId, role: ProbeRole, seq: u64, timeout: Duration) {
        let slot = &mut self.slots[unit.0];
        let Some(check) = slot.component.readiness.clone() else {
            // Only readiness is polled; a request for anything else fails visibly.
            self.host.handle(Event::ProbeResult {
                unit,
                role,
                seq,
                ok: false,
                message: format!("no {role} function"),
            });
            return;
        };
        let tx = self.done_tx.clone();
        let started = Instant::now();
        let fut: BoxFuture<Result<(), String>> = Box::pin(async move {
            match tokio::time::timeout(timeout, check()).await {
                Ok(result) => result,
                Err(_) => Err(format!("timed out after {}", HumanDuration(timeout))),
            }
        });
        slot.probe = Some(spawn_job(fut, "readiness check", move |result| {
            let _ = tx.send(Done::Probe {
                unit,
                role,
                seq,
                result,
                duration: started.elapsed(),
            });
        }));
    }

    fn signal(&mut self, unit: UnitId, r#gen: Gen, signal: StopSignal) {
        let slot = &mut self.slots[unit.0];
        if slot.r#gen != r#gen || !slot.live {
            return;
        }
        if let Some(probe) = slot.probe.take() {
            probe.abort();
        }
        match signal {
            StopSignal::Graceful => {
                if slot.cleanup.is_some() {
                    return;
                }
                if let Some(init) = slot.init.take() {
                    // An unfinished init is cancelled, never cleaned up: it holds nothing
                    // complete to release.
                    init.abort();
                    self.exited(unit, ExitStatus::signal(15));
                } else if slot.initialized {
                    self.run_cleanup(unit);
                } else {
                    self.exited(unit, ExitStatus::code(0));
                }
            }
            StopSignal::Kill => {
                if let Some((cleanup, began)) = slot.cleanup.take() {
                    // The cleanup overran the stop deadline.
                    cleanup.abort();
                    let limit = HumanDuration(slot.component.cleanup_timeout);
                    let took = self.now() - began;
                    self.cleanup_finished(
                        unit,
                        Err(format!("did not finish within {limit}; cancelled")),
                        took,
                    );
                    self.exited(unit, ExitStatus::signal(9));
                    return;
                }
                // The start deadline kills; the engine has already written why, and that
                // is the attempt's cause.
                let why = self.host.engine().unit(unit).last_error.map(str::to_string);
                let slot = &mut self.slots[unit.0];
                if why.is_some() {
                    slot.cause = why;
                }
                if let Some(init) = slot.init.take() {
                    init.abort();
                    self.exited(unit, ExitStatus::signal(9));
                } else if slot.initialized {
                    // init succeeded but readiness never came: release what init acquired
                    // before the next attempt runs it again.
                    self.run_cleanup(unit);
                } else {
                    self.exited(unit, ExitStatus::signal(9));
                }
            }
        }
    }

    fn run_cleanup(&mut self, unit: UnitId) {
        let tx = self.done_tx.clone();
        let slot = &mut self.slots[unit.0];
        slot.initialized = false;
        let r#gen = slot.r#gen;
        let Some(cleanup) = slot.component.cleanup.clone() else {
            self.exited(unit, ExitStatus::code(0));
            return;
        };
        let limit = slot.component.cleanup_timeout;
        let started = Instant::now();
        let began = self.now();
        let fut: BoxFuture<Result<(), String>> = Box::pin(async move {
            match tokio::time::timeout(limit, cleanup()).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "did not finish within {}; cancelled",
                    HumanDuration(limit)
                )),
            }
        });
        let handle = spawn_job(fut, "cleanup", move |result| {
            let _ = tx.send(Done::Cleanup {
                unit,
                r#gen,
                result,
                duration: started.elapsed(),
            });
        });
        self.slots[unit.0].cleanup = Some((handle, began));
    }

    /// Records a finished cleanup for the reports.
    fn cleanup_finished(&mut self, unit: UnitId, result: Result<(), String>, duration: Duration) {
        let slot = &mut self.slots[unit.0];
        if self.shutdown_began.is_some() || self.host.engine().is_shutting_down() {
            slot.cleaned_up = true;
            self.shutdown_cleanups.push(CleanupReport {
                name: slot.component.name.clone(),
                ok: result.is_ok(),
                error: result.err(),
                duration,
            });
        }
    }

    fn exited(&mut self, unit: UnitId, status: ExitStatus) {
        let slot = &mut self.slots[unit.0];
        if !slot.live {
            return;
        }
        slot.live = false;
        let r#gen = slot.r#gen;
        self.host.handle(Event::Exited {
            unit,
            r#gen,
            status,
        });
    }

    fn on_done(&mut self, done: Done) {
        self.host.mark_dirty();
        match done {
            Done::Init {
                unit,
                r#gen,
                result,
            } => {
                let slot = &mut self.slots[unit.0];
                // Stale: the attempt was cancelled (timeout, stop) after it had finished.
                if slot.r#gen != r#gen || slot.init.take().is_none() {
                    return;
                }
                match result {
                    Ok(()) => {
                        slot.initialized = true;
                        let role = if slot.component.readiness.is_some() {
                            ProbeRole::Startup
                        } else {
                            ProbeRole::Readiness
                        };
                        self.host.handle(Event::ProbeResult {
                            unit,
                            role,
                            seq: 0,
                            ok: true,
                            message: "initialized".to_string(),
                        });
                    }
                    Err(message) => {
                        slot.cause = Some(message);
                        self.exited(unit, ExitStatus::code(1));
                    }
                }
            }
            Done::Probe {
                unit,
                role,
                seq,
                result,
                duration,
            } => {
                self.slots[unit.0].probe = None;
                let (ok, message) = match result {
                    Ok(()) => (true, "ready".to_string()),
                    Err(e) => (false, e),
                };
                // A stale `seq` is ignored by the engine itself.
                self.host
                    .probe_result(unit, role, seq, ok, message, duration);
            }
            Done::Cleanup {
                unit,
                r#gen,
                result,
                duration,
            } => {
                let slot = &mut self.slots[unit.0];
                if slot.r#gen != r#gen || slot.cleanup.take().is_none() {
                    return;
                }
                let status = if result.is_ok() {
                    ExitStatus::code(0)
                } else {
                    ExitStatus::code(1)
                };
                self.cleanup_finished(unit, result, duration);
                self.exited(unit, status);
            }
        }
    }

    fn transition(&mut self, notice: Notice) {
        let unit = notice.unit;
        let v = self.host.engine().unit(unit);
        let (attempt, last_error) = (v.attempt, v.last_error.map(str::to_string));
        let decided = self.outcome.is_some();
        let elapsed = self
            .host
            .sequence_start(unit)
            .map_or(Duration::ZERO, |s| notice.at - s);
        let slot = &mut self.slots[unit.0];
        match notice.to {
            State::Ready | State::Running => {
                slot.settled = Some((elapsed, attempt.saturating_sub(1)));
                if !decided {
                    slot.ready_in_boot = true;
                }
            }
            State::Failed => {
                slot.settled = Some((elapsed, attempt.saturating_sub(1)));
                if slot.cause.is_none() {
                    slot.cause = last_error;
                }
            }
            _ => {}
        }
        if !notice.to.is_settled() {
            for w in self.reinits.iter_mut().filter(|w| w.unit == unit) {
                w.moved = true;
            }
        }
        let _ = self.wiring.events.send(json!({
            "event": "transition",
            "service": slot.component.name,
            "from": notice.from.to_string(),
            "to": notice.to.to_string(),
            "reason": notice.reason,
            "at_ms": millis(notice.at.as_duration()),
            "attempt": attempt,
            "pid": null,
        }));
    }

    fn decided(&mut self, outcome: Outcome) {
        let now = self.now();
        let outcome = match outcome {
            Outcome::Go => BootOutcome::Go,
            Outcome::Degraded { failed } => BootOutcome::Degraded {
                failed: failed
                    .iter()
                    .map(|u| self.slots[u.0].component.name.clone())
                    .collect(),
            },
            Outcome::NoGo { unit, reason } => BootOutcome::NoGo {
                component: Some(self.slots[unit.0].component.name.clone()),
                reason: self.nogo_reason(unit, reason),
            },
        };
        let reason = match &outcome {
            BootOutcome::Go => None,
            BootOutcome::Degraded { failed } => Some(
                failed
                    .iter()
                    .filter_map(|name| self.host.engine().find(name))
                    .map(|u| self.failure_summary(u))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            BootOutcome::NoGo {
                component, reason, ..
            } => Some(format!(
                "{}: {reason}",
                component.as_deref().unwrap_or("boot")
            )),
        };
        let _ = self.wiring.events.send(json!({
            "event": "boot",
            "outcome": outcome.label(),
            "duration_ms": millis(now.as_duration()),
            "reason": reason,
        }));
        self.host.set_phase(BootPhase::Decided {
            outcome: outcome.label().to_string(),
            duration_ms: millis(now.as_duration()),
            reason,
        });
        if !outcome.is_up() {
            // The engine is already stopping everything that started, in reverse order.
            self.shutdown_began.get_or_insert(now);
        }
        self.outcome = Some(outcome);
        self.report = Some(self.startup_report(now));
        if self.report_final() {
            self.answer_start_waiters();
        }
    }

    fn answer_start_waiters(&mut self) {
        if let Some(report) = &self.report {
            for w in self.start_waiters.drain(..) {
                let _ = w.send(report.clone());
            }
            if let Ok(mut finals) = self.wiring.finals.lock() {
                finals.startup = Some(report.clone());
            }
        }
    }

    fn on_finished(&mut self) {
        let now = self.now();
        self.finished = true;
        if self.outcome.is_none() {
            // Shut down before the boot could be decided.
            self.outcome = Some(BootOutcome::NoGo {
                component: None,
                reason: "shut down before the boot was decided".to_string(),
            });
            self.host.set_phase(BootPhase::Decided {
                outcome: "no-go".to_string(),
                duration_ms: millis(now.as_duration()),
                reason: Some("shut down before the boot was decided".to_string()),
            });
        }
        if !self.outcome.as_ref().is_some_and(BootOutcome::is_up) {
            // A NO-GO report is completed now that its cleanups ran.
            self.report = Some(self.startup_report(now));
        }
        self.answer_start_waiters();
        let shutdown = ShutdownReport {
            duration: self.shutdown_began.map_or(Duration::ZERO, |t| now - t),
            cleanups: std::mem::take(&mut self.shutdown_cleanups),
        };
        if let Ok(mut finals) = self.wiring.finals.lock() {
            finals.shutdown = Some(shutdown.clone());
        }
        for w in self.shutdown_waiters.drain(..) {
            let _ = w.send(shutdown.clone());
        }
        let _ = self.wiring.events.send(json!({
            "event": "finished",
            "exit_code": self.host.engine().exit_code(),
        }));
        self.check_reinits();
        self.publish();
    }
}

impl Executor for Driver {
    fn host(&mut self) -> &mut Host {
        &mut self.host
    }

    fn act(&mut self, action: Action) -> Option<i32> {
        self.act_on(action);
        None
    }
}

/// Runs `fut` in its own task and reports its result (a panic as an error); returns the
/// handle that cancels it. A cancelled job reports nothing: the driver already moved on.
fn spawn_job<F>(fut: BoxFuture<Result<(), String>>, what: &'static str, report: F) -> AbortHandle
where
    F: FnOnce(Result<(), String>) + Send + 'static,
{
    let task = tokio::spawn(fut);
    let abort = task.abort_handle();
    tokio::spawn(async move {
        match task.await {
            Ok(result) => report(result),
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                report(Err(format!("{what} panicked: {message}")));
            }
            Err(_) => {}
        }
    });
    abort
}

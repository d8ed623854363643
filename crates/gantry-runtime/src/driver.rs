//! The event loop of `gantry up`: one tokio task owns all I/O and feeds the sans-IO engine.
//!
//! Everything that happens — a child exits, a probe answers, a line is printed, a
//! datagram arrives on a notify socket, a signal, a timer — becomes one message on
//! one channel; the loop turns it into an engine `Event` with the current time and
//! carries out the `Action`s the engine returns. The engine decides; this file only
//! does what it is told and reports back.

use crate::env::SecretValue;
use crate::logs::LogFile;
use crate::notify::NotifySocket;
use crate::output::{BoardRow, Output, OutputMode};
use crate::probe::{self, LogMatcher};
use crate::process::{self, SpawnSpec, StreamKind};
use crate::reaper::Reaper;
use crate::redact::Redactor;
use crate::store::{ServiceRecord, Store};
use gantry_api::model::{
    ApiCommand, ApiState, BootPhase, CommandRequest, ServiceSnapshot, Snapshot,
};
use gantry_engine as eng;
use gantry_engine::{Action, Engine, EngineOptions, Event, ProbeRole, Time, UnitId};
use gantry_plan::{Plan, PlanUnit};
use gantry_spec::{Kind, Probe, ProbeKind, Spec};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

/// How many lines of each service's output are kept for failure reports.
const TAIL_LINES: usize = 50;

/// Everything `gantry up` needs, already validated.
#[derive(Debug)]
pub struct UpConfig {
    pub spec: Spec,
    /// The selected plan (profile / --only / --except applied).
    pub plan: Plan,
    /// The file's path as the user gave it (for records).
    pub file: String,
    /// The directory relative paths in the file are resolved against.
    pub base_dir: PathBuf,
    pub output: OutputMode,
    /// Jitter seed; fixed in tests for reproducible runs.
    pub seed: u64,
    /// Run the pre-flight first and refuse to boot on NO-GO.
    pub preflight: bool,
    /// Resolved secrets (filled by the pre-flight).
    pub secrets: Vec<SecretValue>,
}

/// Messages from I/O tasks to the loop.
enum Msg {
    Exited {
        unit: UnitId,
        r#gen: eng::Gen,
        status: crate::reaper::ExitStatus,
    },
    Line {
        unit: UnitId,
        stream: StreamKind,
        line: String,
    },
    SpawnDone {
        unit: UnitId,
        r#gen: eng::Gen,
        result: Result<process::Spawned, process::SpawnError>,
    },
    Notify {
        unit: UnitId,
        msg: crate::notify::NotifyMessage,
    },
    Probe {
        unit: UnitId,
        role: ProbeRole,
        seq: u64,
        outcome: probe::ProbeOutcome,
    },
    Cleanup {
        unit: UnitId,
        ok: bool,
        message: String,
    },
    Revalidated(crate::preflight::Report),
    /// A line for the operator from work done off the event loop.
    Warning(String),
    Remediated {
        unit: UnitId,
        outcome: probe::ProbeOutcome,
    },
}

/// Per-service I/O state the engine does not own.
struct Svc {
    name: String,
    spawn: Result<SpawnSpec, String>,
    cleanup: Option<Vec<String>>,
    probes: [Option<Probe>; 3],
    log_matchers: [Option<LogMatcher>; 3],
    notify: Option<Arc<NotifySocket>>,
    stop_signal: nix::sys::signal::Signal,
    log: Option<LogFile>,
    tail: VecDeque<String>,
    /// (generation, pid) of the live incarnation.
    live: Option<(eng::Gen, u32)>,
    status_text: Option<String>,
    first_spawn: Option<Time>,
    /// Loopback addresses of tcp probes, per role: what the listen watch looks for.
    listen_targets: [Vec<std::net::SocketAddr>; 3],
    /// When the current incarnation was spawned.
    spawned_at: Option<Instant>,
}

/// Loopback tcp readiness without a connect per service per millisecond: pending tcp
/// startup/readiness probes on a loopback address wait here, and one sock_diag LISTEN
/// dump per tick (listen.rs, ~21 µs for every port at once; every 250 µs in the first
/// seconds of a start) decides for all of them. A listener bound to the probe's address
/// (or its family's wildcard) whose accept queue has room passes the probe at once —
/// the kernel completes the handshake of any connect to it; a match that depends on
/// `IPV6_V6ONLY` gets one real connect (tcp_loopback_now). A probe still held after
/// [`HOLD_MAX`] (or its timeout) runs as an ordinary connect, so a service that never
/// listens gets its genuine "connection refused" failures a few times a second.
struct ListenWatch {
    scanner: crate::listen::ListenScanner,
    /// Every 250 µs while a held probe's service started less than [`FAST_FOR`] ago,
    /// every 2 ms after that; disarmed while nothing is held.
    tick: crate::tick::FastTick,
    listeners: Vec<std::net::SocketAddr>,
    held: Vec<Held>,
}

#[derive(Clone, Copy)]
struct Held {
    unit: UnitId,
    role: ProbeRole,
    seq: u64,
    timeout: Duration,
    until: Instant,
}

/// How long a held probe waits for a listener before it connects anyway.
const HOLD_MAX: Duration = Duration::from_millis(100);
/// Listener scans every [`FAST_PERIOD`] during the first seconds of a start...
const FAST_FOR: Duration = Duration::from_secs(2);
const FAST_PERIOD: Duration = Duration::from_micros(250);
/// ... and every [`SLOW_PERIOD`] for a service that takes longer.
const SLOW_PERIOD: Duration = Duration::from_millis(2);
/// ... and every [`STORM_PERIOD`] while spawns are in flight on the pool.
const STORM_PERIOD: Duration = Duration::from_millis(1);

/// The loopback socket addresses a tcp probe address stands for (empty: not loopback,
/// so the listen watch cannot see it — it only sees gantry's own network namespace).
fn loopback_targets(addr: &str) -> Vec<std::net::SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return match sa.ip() {
            ip if ip.is_loopback() => vec![sa],
            // A connect to the unspecified address goes to this host.
            IpAddr::V4(ip) if ip.is_unspecified() => {
                vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), sa.port())]
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                vec![SocketAddr::new(Ipv6Addr::LOCALHOST.into(), sa.port())]
            }
            _ => Vec::new(),
        };
    }
    match addr.rsplit_once(':') {
        Some(("localhost", port)) => match port.parse::<u16>() {
            Ok(port) => vec![
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
            ],
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn role_index(role: ProbeRole) -> usize {
    match role {
        ProbeRole::Startup => 0,
        ProbeRole::Readiness => 1,
        ProbeRole::Liveness => 2,
    }
}

/// Boots the plan and supervises it until shutdown. Returns the process exit code:
/// 0 after a clean shutdown, 1 after NO-GO.
pub async fn up(mut cfg: UpConfig) -> i32 {
    let reaper = match Reaper::start() {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("error: cannot start the reaper: {e}");
            return 1;
        }
    };
    // Secrets are resolved either way (required ones fail closed); the rest of the
    // pre-flight runs unless skipped.
    let (report, secrets, envs) = if cfg.preflight {
        crate::preflight::run_for_up(&cfg.spec, &cfg.plan, &cfg.base_dir, &reaper).await
    } else {
        let (report, secrets) =
            crate::preflight::resolve_secrets(&cfg.spec, &cfg.base_dir, &reaper).await;
        (report, secrets, Default::default())
    };
    if cfg.output == OutputMode::Json {
        // One write: printed piece by piece, stdout's line buffer would pass the report
        // (several hundred bytes per service) to the kernel a kilobyte at a time.
        let mut line = report.event_json();
        line.push('\n');
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), line.as_bytes());
    } else if cfg.preflight || !report.go() {
        print!("{}", report.render());
    }
    if !report.go() {
        crate::missions::record_preflight(
            &cfg.base_dir.join(&cfg.spec.settings.state_dir),
            &report,
        );
        return 1;
    }
    cfg.secrets = secrets;
    match Driver::new(cfg, reaper, envs) {
        Ok(driver) => driver.run().await,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

struct Driver {
    /// What the continuous validation re-checks (`settings.revalidate`).
    spec: Arc<Spec>,
    base_dir: PathBuf,
    /// Masks secret values in everything that enters from outside.
    redactor: Redactor,
    engine: Engine,
    svcs: Vec<Svc>,
    out: Output,
    reaper: Arc<Reaper>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    epoch: Instant,
    store: Option<Store>,
    boot_id: Option<i64>,
    shutdown_timeout: Duration,
    plan: Plan,
    api: ApiSide,
    probe_stats: Vec<ProbeStats>,
    procstat: crate::procstat::ProcStat,
    usage: Vec<Option<crate::procstat::Usage>>,
    /// Set when something the API shows changed since the last published snapshot.
    dirty: bool,
    /// Where to open the state store once the boot is under way.
    pending_store: Option<(PathBuf, String, std::time::SystemTime)>,
    /// Only figures changed since the last snapshot (published lazily).
    stats_dirty: bool,
    published_at: Instant,
    /// Problems the last revalidation found.
    drift: usize,
    /// Services whose `remediate` command already ran (it runs once).
    remediated: Vec<bool>,
    /// Start-up-only pages released (once, after the boot; trim.rs).
    trimmed: bool,
    /// `None` when sock_diag is not available (then every probe connects).
    listen: Option<ListenWatch>,
    /// Services with an open "boot" mission (resolved when they become ready).
    boot_missions: std::collections::HashSet<String>,
    /// Reused buffer of the engine's actions, and how many spawns it still holds.
    action_buf: Vec<Action>,
    spawns_left: usize,
    /// Spawns handed to the blocking pool whose result has not come back yet.
    pool_spawns: usize,
}

/// The driver's end of the API: what it publishes and what it is asked to do.
struct ApiSide {
    /// Taken when the server starts (the router is built then, after the first spawns).
    state: Option<(ApiState, String)>,
    token_file: PathBuf,
    addr: String,
    addr_file: PathBuf,
    snapshot: watch::Sender<Arc<Snapshot>>,
    events: broadcast::Sender<serde_json::Value>,
    commands: mpsc::Receiver<CommandRequest>,
    file: String,
    started_at: std::time::SystemTime,
    graph: Arc<serde_json::Value>,
    phase: BootPhase,
    shutting_down: bool,
}

/// Probe figures per service for the metrics.
#[derive(Default)]
struct ProbeStats {
    failures: u64,
    durations: VecDeque<f64>,
}

/// How many probe durations per service the snapshot carries.
const PROBE_SAMPLES: usize = 256;

impl Driver {
    fn new(
        cfg: UpConfig,
        reaper: Arc<Reaper>,
        mut envs: crate::preflight::ServiceEnvs,
    ) -> Result<Driver, String> {
        let redactor = Redactor::new(cfg.secrets.iter().map(|s| s.value.clone()));
        let state_dir = cfg.base_dir.join(&cfg.spec.settings.state_dir);
        // Log files open at a service's first output line; the directory exists from the
        // start so that `gantry logs` can tell "no output yet" from "never booted".
        let _ = std::fs::create_dir_all(state_dir.join("logs"));
        let mut svcs = Vec::with_capacity(cfg.plan.units.len());
        // Built only when the pre-flight did not build some service's environment.
        let mut global_env = None;
        for (i, u) in cfg.plan.units.iter().enumerate() {
            let env = match envs.take(i) {
                Some(env) => Ok(env),
                None => {
                    let global = global_env
                        .get_or_insert_with(|| crate::env::global_env(&cfg.spec, &cfg.base_dir));
                    match global {
                        Ok(g) => {
                            crate::env::service_env(g, &u.service, &cfg.base_dir, &cfg.secrets)
                        }
                        Err(e) => Err(e.clone()),
                    }
                }
            };
            svcs.push(make_svc(u, env, &cfg.base_dir, &state_dir, &cfg.file)?);
        }
        let units = cfg.plan.units.iter().map(unit_config).collect();
        let engine = Engine::new(
            units,
            EngineOptions {
                allow_degraded: cfg.spec.settings.allow_degraded,
                seed: cfg.seed,
            },
        )
        .map_err(|e| format!("invalid plan: {e}"))?;
        let names: Vec<&str> = cfg.plan.units.iter().map(|u| u.name()).collect();
        let out = Output::new(cfg.output, &names);
        // The state store is opened once the first services are spawned: its file
        // creation and fsyncs are not on the boot's critical path.
        let (store, boot_id): (Option<Store>, Option<i64>) = (None, None);
        let pending_store = Some((
            state_dir.clone(),
            cfg.file.clone(),
            std::time::SystemTime::now(),
        ));
        let (tx, rx) = mpsc::unbounded_channel();
        let api = start_api(&cfg, &state_dir, &out, Some(state_dir.join("state.db")))?;
        let n = cfg.plan.units.len();
        Ok(Driver {
            spec: Arc::new(cfg.spec.clone()),
            base_dir: cfg.base_dir.clone(),
            redactor,
            api,
            probe_stats: (0..n).map(|_| ProbeStats::default()).collect(),
            procstat: crate::procstat::ProcStat::new(),
            usage: vec![None; n],
            dirty: true,
            drift: 0,
            pending_store,
            stats_dirty: false,
            published_at: Instant::now(),
            remediated: vec![false; n],
            trimmed: false,
            boot_missions: Default::default(),
            action_buf: Vec::new(),
            spawns_left: 0,
            pool_spawns: 0,
            listen: match (
                crate::listen::ListenScanner::new(),
                crate::tick::FastTick::new(),
            ) {
                (Ok(scanner), Ok(tick)) => Some(ListenWatch {
                    scanner,
                    tick,
                    listeners: Vec::new(),
                    held: Vec::new(),
                }),
                _ => None,
            },
            engine,
            svcs,
            out,
            reaper,
            tx,
            rx,
            epoch: Instant::now(),
            store,
            boot_id,
            shutdown_timeout: cfg.spec.settings.shutdown_timeout.0,
            plan: cfg.plan,
        })
    }

    fn now(&self) -> Time {
        Time(self.epoch.elapsed())
    }

    async fn run(mut self) -> i32 {
        let (mut sigint, mut sigterm, mut sighup) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            _ => {
                eprintln!("error: cannot install signal handlers");
                return 1;
            }
        };
        self.out
            .gantry_line(&format!("booting {} services", self.svcs.len()));
        for i in 0..self.svcs.len() {
            self.start_notify_listener(UnitId(i));
        }
        let now = self.now();
        self.engine.start(now);
        // The first wave is spawned before the API is built and bound: that work is
        // not on the boot's critical path.
        if let Some(code) = self.drain_actions() {
            self.flush_logs();
            return code;
        }
        self.start_api_server().await;
        let mut interrupts = 0u32;
        let mut flush_tick = tokio::time::interval(Duration::from_millis(250));
        flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Continuous validation: the pre-flight again, in the background, while up.
        let revalidate_every = self
            .spec
            .settings
            .revalidate
            .map(|d| d.0.max(Duration::from_secs(1)));
        let mut revalidate_tick = tokio::time::interval_at(
            Instant::now() + revalidate_every.unwrap_or(Duration::from_secs(3600)),
            revalidate_every.unwrap_or(Duration::from_secs(3600)),
        );
        revalidate_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut usage_tick = tokio::time::interval(Duration::from_secs(2));
        usage_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut board_tick = tokio::time::interval(Duration::from_millis(100));
        board_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut kill_at: Option<Instant> = None;
        loop {
            if let Some(code) = self.drain_actions() {
                self.flush_logs();
                return code;
            }
            if let Some((dir, file, started)) = self.pending_store.take() {
                self.open_store(&dir, &file, started);
            }
            // State changes publish at once (health answers must follow the gates);
            // figures alone (probe durations, output) at most once a second — rebuilding
            // the snapshot after every probe result was 40% of the boot's CPU.
            // A burst of messages (a wave of spawns, fifty probes passing) publishes once,
            // when the queue drains — or every 5 ms if it never does — instead of
            // rebuilding the whole snapshot after each of them.
            let settled =
                self.rx.is_empty() || self.published_at.elapsed() >= Duration::from_millis(5);
            if (self.dirty && settled)
                || (self.stats_dirty && self.published_at.elapsed() >= Duration::from_secs(1))
            {
                self.publish();
            }
            self.arm_listen_tick();
            let deadline = self.engine.poll_timeout().map(|t| self.epoch + t.0);
            tokio::select! {
                biased;
                _ = sigint.recv() => interrupts = self.interrupt(interrupts, &mut kill_at, "interrupt"),
                _ = sigterm.recv() => interrupts = self.interrupt(interrupts, &mut kill_at, "SIGTERM"),
                _ = sighup.recv() => interrupts = self.interrupt(interrupts, &mut kill_at, "SIGHUP"),
                Some(msg) = self.rx.recv() => self.message(msg),
                _ = async { self.listen.as_ref().map(|w| w.tick.tick()).expect("guarded").await }, if self.listen.as_ref().is_some_and(|w| w.tick.period().is_some()) => self.listen_tick(),
                _ = board_tick.tick(), if self.board_live() => self.redraw_board(),
                Some((cmd, reply)) = self.api.commands.recv() => {
                    let answer = self.api_command(cmd, &mut interrupts, &mut kill_at);
                    let _ = reply.send(answer);
                }
                _ = usage_tick.tick() => self.sample_usage(),
                _ = revalidate_tick.tick(), if revalidate_every.is_some() && self.engine.boot_outcome().is_some() => self.revalidate(),
                // Logs are buffered; a short tick bounds how stale `gantry logs -f` can be.
                _ = flush_tick.tick() => self.flush_logs(),
                _ = sleep_until_opt(deadline), if deadline.is_some() => {
                    let now = self.now();
                    self.engine.handle_timeout(now);
                }
                _ = sleep_until_opt(kill_at), if kill_at.is_some() => {
                    self.out.gantry_line(&format!("shutdown took longer than {}; killing what is left", gantry_spec::duration::format_duration(self.shutdown_timeout)));
                    kill_at = None;
                    let now = self.now();
                    self.engine.handle(now, Event::Command(eng::Command::Kill));
                }
            }
        }
    }

    /// Binds the API (port 0 picks a free port), records the address actually bound
    /// in state_dir/api.addr for client commands, and serves it in the background.
    async fn start_api_server(&mut self) {
        let Some((state, token)) = self.api.state.take() else {
            return;
        };
        self.api.graph = Arc::new(gantry_plan::render_json(&self.plan));
        self.api
            .snapshot
            .send_modify(|s| Arc::make_mut(s).graph = self.api.graph.clone());
        let router = gantry_api::router(state);
        match gantry_api::bind(&self.api.addr).await {
            Ok(listener) => {
                let bound = listener
                    .local_addr()
                    .unwrap_or_else(|_| self.api.addr.clone());
                self.out.gantry_line(&format!(
                    "API on {bound} (token in {})",
                    self.api.token_file.display()
                ));
                tokio::spawn(gantry_api::serve_on(
                    listener,
                    router,
                    std::future::pending(),
                ));
                // The files clients find this instance by are written off the event loop:
                // a create or truncate can wait milliseconds for a busy file-system
                // journal, and this runs while the first services are starting. The token
                // goes first, so a client that sees the address can read the token.
                let (token_file, addr_file, tx) = (
                    self.api.token_file.clone(),
                    self.api.addr_file.clone(),
                    self.tx.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    let written = write_private(&token_file, &token)
                        .and_then(|()| write_private(&addr_file, &bound));
                    if let Err(e) = written {
                        let _ = std::fs::remove_file(&addr_file);
                        let _ = tx.send(Msg::Warning(format!(
                            "warning: {e}; `gantry status` and control commands will not reach this instance"
                        )));
                    }
                });
            }
            Err(e) => {
                // The stack still runs without its API; say so instead of refusing to boot.
                let _ = std::fs::remove_file(&self.api.addr_file);
                self.out.gantry_line(&format!(
                    "warning: the API cannot listen on {}: {e}; `gantry status` and control commands will not reach this instance (set [settings] api to a free address)",
                    self.api.addr
                ));
            }
        }
    }

    /// One event of the stream: printed in `--json` mode and sent to SSE subscribers.
    fn event(&self, mut value: serde_json::Value) {
        if let Some(obj) = value.as_object_mut() {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            obj.insert("ts_ms".into(), ms.into());
        }
        if self.out.mode() == OutputMode::Json {
            self.out.raw(&value.to_string());
        }
        let _ = self.api.events.send(value);
    }

    /// Publishes the current state for the API (coalesced: once per loop turn at most).
    fn publish(&mut self) {
        self.dirty = false;
        self.stats_dirty = false;
        self.published_at = Instant::now();
        let now = self.now();
        let services = self
            .engine
            .units()
            .map(|v| {
                let svc = &self.svcs[v.id.0];
                let stats = &self.probe_stats[v.id.0];
                let ready = matches!(
                    v.state,
                    eng::State::Ready | eng::State::Running | eng::State::Completed
                );
                let usage = if v.pid.is_some() {
                    self.usage[v.id.0]
                } else {
                    None
                };
                ServiceSnapshot {
                    name: v.name.to_string(),
                    kind: v.kind.to_string(),
                    priority: format!("{:?}", v.priority).to_lowercase(),
                    state: v.state.to_string(),
                    required: v.priority != eng::Priority::Low,
                    ready,
                    pid: v.pid,
                    attempts: v.attempt,
                    restarts: v.restarts,
                    started_ms: svc.first_spawn.map(|t| t.0.as_millis() as u64),
                    ready_ms: v.ready_at.map(|t| t.0.as_millis() as u64),
                    time_to_ready_ms: match (svc.first_spawn, v.ready_at) {
                        (Some(s), Some(r)) => Some(r.0.saturating_sub(s.0).as_millis() as u64),
                        _ => None,
                    },
                    uptime_ms: v
                        .started_at
                        .filter(|_| v.pid.is_some())
                        .map(|s| now.0.saturating_sub(s.0).as_millis() as u64),
                    last_error: v.last_error.map(str::to_string),
                    status_text: svc.status_text.clone(),
                    breaker: v.breaker.map(|b| {
                        match b {
                            eng::BreakerState::Closed => "closed",
                            eng::BreakerState::Open { .. } => "open",
                            eng::BreakerState::HalfOpen => "half-open",
                        }
                        .to_string()
                    }),
                    probe_failures_total: stats.failures,
                    probe_durations: stats.durations.iter().copied().collect(),
                    cpu_seconds: usage.map(|u| u.cpu_seconds),
                    rss_bytes: usage.map(|u| u.rss_bytes),
                }
            })
            .collect();
        let snap = Snapshot {
            file: self.api.file.clone(),
            started_at: self.api.started_at,
            boot: self.api.phase.clone(),
            shutting_down: self.api.shutting_down || self.engine.is_shutting_down(),
            services,
            graph: self.api.graph.clone(),
            drift_problems: self.drift as u64,
        };
        self.api.snapshot.send_replace(Arc::new(snap));
    }

    fn api_command(
        &mut self,
        cmd: ApiCommand,
        interrupts: &mut u32,
        kill_at: &mut Option<Instant>,
    ) -> Result<String, String> {
        self.dirty = true;
        let now = self.now();
        match cmd {
            ApiCommand::Shutdown => {
                self.api.shutting_down = true;
                *interrupts = self.interrupt(*interrupts, kill_at, "API shutdown");
                Ok("shutting down".into())
            }
            ApiCommand::Start(name) => {
                let reply = format!("starting {name}");
                self.service_command(now, &name, "start", eng::Command::Start, reply)
            }
            ApiCommand::Stop(name) => {
                let reply = format!("stopping {name} and what depends on it");
                self.service_command(now, &name, "stop", eng::Command::Stop, reply)
            }
            ApiCommand::Restart(name) => {
                let reply = format!("restarting {name}; its dependents restart after it is ready");
                self.service_command(now, &name, "restart", eng::Command::Restart, reply)
            }
        }
    }

    /// Hands a start / stop / restart of one service to the engine.
    fn service_command(
        &mut self,
        now: Time,
        name: &str,
        verb: &str,
        command: fn(UnitId) -> eng::Command,
        reply: String,
    ) -> Result<String, String> {
        let id = self
            .engine
            .find(name)
            .ok_or_else(|| format!("unknown service `{name}`"))?;
        self.out
            .gantry_line(&format!("{name}: {verb} requested through the API"));
        self.engine.handle(now, Event::Command(command(id)));
        Ok(reply)
    }

    fn revalidate(&mut self) {
        let (spec, plan, base, reaper, tx) = (
            self.spec.clone(),
            self.plan.clone(),
            self.base_dir.clone(),
            self.reaper.clone(),
            self.tx.clone(),
        );
        tokio::spawn(async move {
            let (report, _) = crate::preflight::run_with(&spec, &plan, &base, &reaper, true).await;
            let _ = tx.send(Msg::Revalidated(report));
        });
    }

    /// Drift found by the continuous validation becomes missions (never a stop);
    /// checks that pass again resolve theirs.
    fn revalidated(&mut self, report: crate::preflight::Report) {
        use crate::preflight::Status;
        let problems: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        if let Some(store) = &self.store {
            for c in &report.checks {
                let check = format!("revalidate: {}", c.check);
                if c.status == Status::Fail {
                    let _ = store.open_mission(&crate::missions::NewMission {
                        service: c.service.clone(),
                        layer: None,
                        check,
                        error: c.message.clone(),
                        output: Vec::new(),
                        fix_criteria: format!("the check `{}` passes again", c.check),
                        next_step: c
                            .hint
                            .clone()
                            .unwrap_or_else(|| "run `gantry preflight` for details".into()),
                    });
                } else {
                    store.resolve_missions(&check, c.service.as_deref());
                }
            }
        }
        self.drift = problems.len();
        self.dirty = true;
        if !problems.is_empty() {
            self.out.gantry_line(&format!(
                "revalidation: {} problem(s): {} (see `gantry missions`)",
                problems.len(),
                problems
                    .iter()
                    .map(|c| format!(
                        "{}{}",
                        c.service
                            .as_deref()
                            .map(|s| format!("{s}: "))
                            .unwrap_or_default(),
                        c.message
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        self.event(serde_json::json!({ "event": "revalidated", "problems": problems.len() }));
    }

    fn open_store(&mut self, state_dir: &Path, file: &str, started: std::time::SystemTime) {
        match Store::open(state_dir) {
            Ok(s) => {
                self.boot_missions = s
                    .missions(false)
                    .iter()
                    .filter(|m| m["check"] == "boot")
                    .filter_map(|m| m["service"].as_str().map(str::to_string))
                    .collect();
                self.boot_id = s.begin_boot(&crate::logs::rfc3339_utc(started), file).ok();
                self.store = Some(s);
            }
            Err(e) => self
                .out
                .gantry_line(&format!("warning: boot history is not recorded: {e}")),
        }
    }

    fn sample_usage(&mut self) {
        // Once the boot is decided and has settled (this tick runs every 2 s), the code
        // that only start-up ran leaves the resident set (see trim.rs).
        if !self.trimmed && self.engine.boot_outcome().is_some() {
            self.trimmed = true;
            crate::trim::release_startup_pages();
        }
        let pids: Vec<u32> = self.engine.units().filter_map(|v| v.pid).collect();
        self.procstat.refresh(&pids);
        for i in 0..self.usage.len() {
            self.usage[i] = self
                .engine
                .unit(UnitId(i))
                .pid
                .and_then(|p| self.procstat.usage(p));
        }
        self.stats_dirty = true;
    }

    fn board_live(&self) -> bool {
        self.out.mode() == OutputMode::Tty && self.engine.boot_outcome().is_none()
    }

    fn redraw_board(&self) {
        let now = self.now();
        let rows: Vec<BoardRow> = self
            .engine
            .units()
            .map(|v| {
                let svc = &self.svcs[v.id.0];
                let since = svc.first_spawn.unwrap_or(now);
                let end = v
                    .ready_at
                    .filter(|_| v.state != eng::State::Starting)
                    .unwrap_or(now);
                BoardRow {
                    name: v.name.to_string(),
                    state: v.state.to_string(),
                    elapsed: end.0.saturating_sub(since.0),
                    attempt: v.attempt,
                    note: svc
                        .status_text
                        .clone()
                        .or_else(|| v.reason.map(str::to_string)),
                }
            })
            .collect();
        self.out.board(&rows);
    }

    fn interrupt(&mut self, count: u32, kill_at: &mut Option<Instant>, what: &str) -> u32 {
        let now = self.now();
        if count == 0 {
            self.out.gantry_line(&format!(
                "{what}: stopping in reverse dependency order (again to kill at once)"
            ));
            *kill_at = Some(Instant::now() + self.shutdown_timeout);
            self.engine
                .handle(now, Event::Command(eng::Command::Shutdown));
        } else {
            self.out
                .gantry_line(&format!("{what} again: killing everything now"));
            self.engine.handle(now, Event::Command(eng::Command::Kill));
        }
        count + 1
    }

    fn message(&mut self, msg: Msg) {
        let now = self.now();
        self.stats_dirty = true;
        match msg {
            Msg::SpawnDone {
                unit,
                r#gen,
                result,
            } => {
                self.pool_spawns = self.pool_spawns.saturating_sub(1);
                self.spawn_done(unit, r#gen, result)
            }
            Msg::Exited {
                unit,
                r#gen,
                status,
            } => {
                let svc = &mut self.svcs[unit.0];
                if svc.live.is_some_and(|(g, _)| g == r#gen) {
                    svc.live = None;
                }
                self.engine.handle(
                    now,
                    Event::Exited {
                        unit,
                        r#gen,
                        status: eng::ExitStatus {
                            code: status.code,
                            signal: status.signal,
                        },
                    },
                );
            }
            Msg::Line { unit, stream, line } => {
                let line = self.redactor.redact_owned(line);
                let svc = &mut self.svcs[unit.0];
                if let Some(log) = &mut svc.log {
                    let _ = log.write_line(stream, &line);
                }
                if svc.tail.len() == TAIL_LINES {
                    svc.tail.pop_front();
                }
                svc.tail.push_back(line.clone());
                if self.out.mode() != OutputMode::Json {
                    self.out.service_line(&svc.name, unit.0, stream, &line);
                }
                let name = svc.name.clone();
                self.event(serde_json::json!({ "event": "output", "service": name, "stream": stream.as_str(), "line": line }));
                let svc = &self.svcs[unit.0];
                let matched: Vec<ProbeRole> = eng::ProbeRole::ALL
                    .into_iter()
                    .filter(|r| {
                        svc.log_matchers[role_index(*r)]
                            .as_ref()
                            .is_some_and(|m| m.matches(&line))
                    })
                    .collect();
                for role in matched {
                    self.engine.handle(
                        now,
                        Event::ProbeResult {
                            unit,
                            role,
                            seq: 0,
                            ok: true,
                            message: format!("log line matched: {line}"),
                        },
                    );
                }
            }
            Msg::Notify { unit, msg } => {
                // EXTEND_TIMEOUT_USEC: the start may take this much longer from now
                // (the engine ignores it unless the current incarnation is starting).
                if let Some(usec) = msg.extend_timeout_usec {
                    let r#gen = self.engine.unit(unit).r#gen;
                    let by = Duration::from_micros(usec);
                    self.engine
                        .handle(now, Event::ExtendStartTimeout { unit, r#gen, by });
                }
                let svc = &mut self.svcs[unit.0];
                if let Some(status) = &msg.status {
                    svc.status_text = Some(status.clone());
                }
                let notify_roles: Vec<ProbeRole> = eng::ProbeRole::ALL
                    .into_iter()
                    .filter(|r| {
                        matches!(
                            svc.probes[role_index(*r)].as_ref().map(|p| &p.kind),
                            Some(ProbeKind::Notify)
                        )
                    })
                    .collect();
                for role in notify_roles {
                    let pass = match role {
                        ProbeRole::Liveness => msg.watchdog || msg.ready,
                        _ => msg.ready,
                    };
                    if pass {
                        self.engine.handle(
                            now,
                            Event::ProbeResult {
                                unit,
                                role,
                                seq: 0,
                                ok: true,
                                message: "sd_notify READY=1".into(),
                            },
                        );
                    }
                }
            }
            Msg::Probe {
                unit,
                role,
                seq,
                outcome,
            } => {
                let mut outcome = outcome;
                outcome.message = self.redactor.redact_owned(outcome.message);
                let stats = &mut self.probe_stats[unit.0];
                if !outcome.ok {
                    stats.failures += 1;
                }
                if stats.durations.len() == PROBE_SAMPLES {
                    stats.durations.pop_front();
                }
                stats.durations.push_back(outcome.duration.as_secs_f64());
                self.engine.handle(
                    now,
                    Event::ProbeResult {
                        unit,
                        role,
                        seq,
                        ok: outcome.ok,
                        message: outcome.message,
                    },
                )
            }
            Msg::Revalidated(report) => self.revalidated(report),
            Msg::Warning(text) => self.out.gantry_line(&text),
            Msg::Remediated { unit, outcome } => self.remediated(unit, outcome),
            Msg::Cleanup { unit, ok, message } => {
                let message = self.redactor.redact_owned(message);
                self.engine
                    .handle(now, Event::CleanupDone { unit, ok, message })
            }
        }
    }

    /// Carries out everything the engine asked for; the exit code once it is finished.
    fn drain_actions(&mut self) -> Option<i32> {
        loop {
            let mut batch = std::mem::take(&mut self.action_buf);
            batch.extend(std::iter::from_fn(|| self.engine.poll_action()));
            if batch.is_empty() {
                self.action_buf = batch;
                return None;
            }
            self.spawns_left = batch
                .iter()
                .filter(|a| matches!(a, Action::Spawn { .. }))
                .count();
            let mut code = None;
            for action in batch.drain(..) {
                if code.is_none() {
                    code = self.act(action);
                }
            }
            self.action_buf = batch;
            if code.is_some() {
                return code;
            }
        }
    }

    /// Carries out one action; returns the exit code when the engine is finished.
    fn act(&mut self, action: Action) -> Option<i32> {
        match action {
            Action::Spawn {
                unit,
                r#gen,
                attempt,
            } => self.spawn(unit, r#gen, attempt),
            Action::RunProbe {
                unit,
                role,
                seq,
                timeout,
            } => self.probe(unit, role, seq, timeout),
            Action::Signal {
                unit,
                r#gen,
                signal,
            } => {
                let svc = &self.svcs[unit.0];
                if let Some((g, pid)) = svc.live
                    && g == r#gen
                {
                    let sig = match signal {
                        eng::StopSignal::Graceful => svc.stop_signal,
                        eng::StopSignal::Kill => nix::sys::signal::Signal::SIGKILL,
                    };
                    let _ = process::signal_group(pid, sig);
                }
            }
            Action::RunCleanup { unit } => self.cleanup(unit),
            Action::Transition(n) => {
                self.dirty = true;
                self.transition(n);
                if self.board_live() {
                    self.redraw_board();
                }
            }
            Action::BootDecided(outcome) => self.boot_decided(outcome),
            Action::Finished { exit_code } => {
                self.out
                    .gantry_line(&format!("all services stopped (exit {exit_code})"));
                self.event(serde_json::json!({ "event": "finished", "exit_code": exit_code }));
                self.publish();
                return Some(exit_code);
            }
        }
        None
    }

    fn spawn(&mut self, unit: UnitId, r#gen: eng::Gen, attempt: u32) {
        self.spawns_left = self.spawns_left.saturating_sub(1);
        let now = self.now();
        let svc = &mut self.svcs[unit.0];
        svc.first_spawn.get_or_insert(now);
        svc.spawned_at = Some(Instant::now());
        let spec = match &svc.spawn {
            Ok(s) => s.clone(),
            Err(e) => {
                let error = self.redactor.redact_owned(e.clone());
                self.engine
                    .handle(now, Event::SpawnFailed { unit, r#gen, error });
                return;
            }
        };
        let mut spec = spec;
        if let Some(n) = &svc.notify {
            spec.notify_socket = Some(n.env_value());
        }
        if attempt > 1 {
            self.out
                .gantry_line(&format!("{}: attempt {attempt}", svc.name));
        }
        // posix_spawn blocks its thread until the child has exec'd, and on this machine
        // most of that wait is the scheduler waking an idle CPU for the child (~0.45 ms):
        // a wave of spawns runs on a few blocking-pool threads at once (the runtime caps
        // them; up.rs), so the waits overlap instead of adding up. The engine already
        // treats a spawn as pending until `Spawned` arrives.
        // The last spawn of a batch runs right here (for a lone spawn — a chain's next
        // link — a pool thread's wake-up would only add latency); the others go to the
        // pool first, so they run alongside it.
        if self.spawns_left == 0 {
            let result = process::spawn(&spec, &self.reaper);
            self.spawn_done(unit, r#gen, result);
            return;
        }
        self.pool_spawns += 1;
        let reaper = self.reaper.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = process::spawn(&spec, &reaper);
            let _ = tx.send(Msg::SpawnDone {
                unit,
                r#gen,
                result,
            });
        });
    }

    fn spawn_done(
        &mut self,
        unit: UnitId,
        r#gen: eng::Gen,
        result: Result<process::Spawned, process::SpawnError>,
    ) {
        let now = self.now();
        let svc = &mut self.svcs[unit.0];
        match result {
            Ok(spawned) => {
                svc.live = Some((r#gen, spawned.pid));
                let pid = spawned.pid;
                let tx = self.tx.clone();
                let (mut out, mut err, mut exit) = (spawned.stdout, spawned.stderr, spawned.exit);
                // One task per process reads both streams and the exit, and reports the
                // exit only after the output has drained (EOF on both pipes, or a short
                // grace for a daemon that keeps them open): the last lines — usually the
                // ones that explain a failure — reach the log, the tail and the mission.
                tokio::spawn(async move {
                    let (mut out_open, mut err_open) = (true, true);
                    let mut status = None;
                    let grace = tokio::time::sleep(Duration::from_secs(3600));
                    tokio::pin!(grace);
                    loop {
                        tokio::select! {
                            line = out.next_line(), if out_open => match line {
                                Ok(Some(line)) => { let _ = tx.send(Msg::Line { unit, stream: StreamKind::Out, line }); }
                                _ => out_open = false,
                            },
                            line = err.next_line(), if err_open => match line {
                                Ok(Some(line)) => { let _ = tx.send(Msg::Line { unit, stream: StreamKind::Err, line }); }
                                _ => err_open = false,
                            },
                            st = &mut exit, if status.is_none() => {
                                status = Some(st.unwrap_or(crate::reaper::ExitStatus { code: None, signal: Some(9) }));
                                grace.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(200));
                            }
                            _ = &mut grace, if status.is_some() => break,
                        }
                        if status.is_some() && !out_open && !err_open {
                            break;
                        }
                    }
                    if let Some(status) = status {
                        let _ = tx.send(Msg::Exited {
                            unit,
                            r#gen,
                            status,
                        });
                    }
                });
                self.engine.handle(now, Event::Spawned { unit, r#gen, pid });
            }
            Err(e) => {
                let error = self.redactor.redact_owned(e.to_string());
                self.engine
                    .handle(now, Event::SpawnFailed { unit, r#gen, error });
            }
        }
    }

    fn probe(&mut self, unit: UnitId, role: ProbeRole, seq: u64, timeout: Duration) {
        // Liveness probes of running services stay plain connects: they run once a
        // period, and a service that stops listening must fail them at once.
        if role != ProbeRole::Liveness
            && !self.svcs[unit.0].listen_targets[role_index(role)].is_empty()
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
        self.run_probe(unit, role, seq, timeout);
    }

    /// Arms the listen watch's timer for what is held now (or disarms it).
    fn arm_listen_tick(&mut self) {
        let Some(w) = &mut self.listen else { return };
        let want = (!w.held.is_empty()).then(|| {
            let young = w.held.iter().any(|h| {
                self.svcs[h.unit.0]
                    .spawned_at
                    .is_some_and(|t| t.elapsed() < FAST_FOR)
            });
            // While a wave is being spawned the CPUs belong to the children starting
            // (each start is CPU-bound for a while); scans every millisecond then.
            if self.pool_spawns > 0 {
                STORM_PERIOD
            } else if young {
                FAST_PERIOD
            } else {
                SLOW_PERIOD
            }
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
    fn listen_tick(&mut self) {
        let Some(w) = &mut self.listen else { return };
        let mut release = Vec::new();
        let mut listening = Vec::new();
        let mut passed = Vec::new();
        match w.scanner.scan_accepting(&mut w.listeners) {
            Ok(()) => {
                let now = Instant::now();
                let (svcs, listeners) = (&self.svcs, &w.listeners);
                w.held.retain(|h| {
                    let targets = &svcs[h.unit.0].listen_targets[role_index(h.role)];
                    // A listener bound to the target's address (or its family's wildcard)
                    // with room in its accept queue takes a connect for certain: that is
                    // the probe's pass, without the ~0.1 ms loopback handshake.
                    if let Some(l) = targets
                        .iter()
                        .find_map(|t| crate::listen::certainly_accepts(listeners, *t))
                    {
                        passed.push((*h, l));
                        return false;
                    }
                    if let Some(t) = targets
                        .iter()
                        .find(|t| crate::listen::accepts(listeners, **t))
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
                    message: format!("{listener} is listening and accepting connections"),
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

    fn run_probe(&mut self, unit: UnitId, role: ProbeRole, seq: u64, timeout: Duration) {
        let svc = &self.svcs[unit.0];
        let Some(p) = svc.probes[role_index(role)].clone() else {
            return;
        };
        let tx = self.tx.clone();
        let reaper = self.reaper.clone();
        // Only exec probes need the service's environment; copying it for every tcp or
        // http probe run was a measurable share of the boot's allocations.
        let (env, cwd) = match (&p.kind, &svc.spawn) {
            (ProbeKind::Exec(_), Ok(s)) => (s.env.clone(), s.cwd.clone()),
            (ProbeKind::Exec(_), Err(_)) => (std::env::vars().collect(), None),
            _ => (Vec::new(), None),
        };
        let base_dir = self.base_dir.clone();
        tokio::spawn(async move {
            let outcome = match &p.kind {
                ProbeKind::Tcp(addr) => probe::tcp(addr, timeout).await,
                ProbeKind::Http {
                    url,
                    expect_status,
                    expect_body,
                } => probe::http(url, *expect_status, expect_body.clone(), timeout).await,
                ProbeKind::Exec(argv) => {
                    probe::exec(argv.clone(), env, cwd, timeout, &reaper).await
                }
                other => crate::stores::check(other, timeout, &base_dir).await,
            };
            let _ = tx.send(Msg::Probe {
                unit,
                role,
                seq,
                outcome,
            });
        });
    }

    fn cleanup(&mut self, unit: UnitId) {
        let svc = &self.svcs[unit.0];
        let tx = self.tx.clone();
        let Some(argv) = svc.cleanup.clone() else {
            let _ = tx.send(Msg::Cleanup {
                unit,
                ok: true,
                message: String::new(),
            });
            return;
        };
        let (env, cwd) = match &svc.spawn {
            Ok(s) => (s.env.clone(), s.cwd.clone()),
            Err(_) => (std::env::vars().collect(), None),
        };
        let timeout = self
            .engine
            .unit(unit)
            .config
            .stop_timeout
            .max(Duration::from_secs(1));
        let reaper = self.reaper.clone();
        self.out
            .gantry_line(&format!("{}: running cleanup", svc.name));
        tokio::spawn(async move {
            let outcome = probe::exec(argv, env, cwd, timeout, &reaper).await;
            let _ = tx.send(Msg::Cleanup {
                unit,
                ok: outcome.ok,
                message: outcome.message,
            });
        });
    }

    /// Runs a failed service's `remediate` command, once.
    fn remediate(&mut self, unit: UnitId) {
        let u = &self.plan.units[unit.0].service;
        let Some(argv) = u.remediate.clone() else {
            return;
        };
        if std::mem::replace(&mut self.remediated[unit.0], true) || self.engine.is_shutting_down() {
            return;
        }
        let svc = &self.svcs[unit.0];
        let (env, cwd) = match &svc.spawn {
            Ok(s) => (s.env.clone(), s.cwd.clone()),
            Err(_) => (std::env::vars().collect(), None),
        };
        self.out.gantry_line(&format!(
            "{}: running remediate `{}`",
            svc.name,
            argv.join(" ")
        ));
        let (tx, reaper) = (self.tx.clone(), self.reaper.clone());
        tokio::spawn(async move {
            let outcome = probe::exec(argv, env, cwd, Duration::from_secs(60), &reaper).await;
            let _ = tx.send(Msg::Remediated { unit, outcome });
        });
    }

    /// Records what the remediation did and, when it succeeded, checks the service again
    /// by starting it: reaching ready resolves its mission.
    fn remediated(&mut self, unit: UnitId, outcome: probe::ProbeOutcome) {
        let name = self.svcs[unit.0].name.clone();
        let message = self.redactor.redact_owned(outcome.message);
        let text = if outcome.ok {
            format!("remediation succeeded ({message})")
        } else {
            format!("remediation failed ({message})")
        };
        self.out.gantry_line(&format!("{name}: {text}"));
        if let Some(store) = &self.store {
            store.note_remediation("boot", &name, &text);
        }
        self.event(serde_json::json!({ "event": "remediated", "service": name, "ok": outcome.ok, "message": message }));
        if outcome.ok && !self.engine.is_shutting_down() {
            let now = self.now();
            self.engine
                .handle(now, Event::Command(eng::Command::Start(unit)));
        }
    }

    fn transition(&mut self, n: eng::Notice) {
        if n.to == eng::State::Failed {
            // Open the mission first, so the remediation outcome has a record to land in.
            self.open_boot_mission(n.unit);
            self.remediate(n.unit);
        }
        if matches!(
            n.to,
            eng::State::Ready | eng::State::Running | eng::State::Completed
        ) && let Some(store) = &self.store
            // Only services known to have an open mission touch the database: a write
            // transaction per ready service sat between a gate and the next spawn.
            && self.boot_missions.remove(&self.svcs[n.unit.0].name)
        {
            // The mission's fix criterion holds now.
            store.resolve_missions("boot", Some(&self.svcs[n.unit.0].name));
        }
        let svc = &self.svcs[n.unit.0];
        let view = self.engine.unit(n.unit);
        self.event(serde_json::json!({
                "event": "transition",
                "service": svc.name,
                "from": n.from.to_string(),
                "to": n.to.to_string(),
                "reason": n.reason,
                "at_ms": n.at.0.as_millis() as u64,
                "attempt": view.attempt,
                "pid": view.pid,
        }));
        if self.out.mode() == OutputMode::Json {
            return;
        }
        let mut text = format!("{}: {}", svc.name, n.to);
        match n.to {
            eng::State::Ready | eng::State::Completed | eng::State::Running => {
                if let Some(start) = svc.first_spawn {
                    text.push_str(&format!(" in {}", human(n.at.0.saturating_sub(start.0))));
                }
            }
            eng::State::Starting if view.attempt > 1 => {
                text.push_str(&format!(" (attempt {})", view.attempt))
            }
            _ => {}
        }
        if let Some(r) = &n.reason {
            text.push_str(&format!(" — {r}"));
        }
        self.out.gantry_line(&text);
    }

    fn boot_decided(&mut self, outcome: eng::Outcome) {
        self.dirty = true;
        self.out.end_board();
        let now = self.now();
        let (ok, verdict, label, reason) = match &outcome {
            eng::Outcome::Go => (
                true,
                format!(
                    "GO: ready in {} — critical path: {}",
                    human(now.0),
                    self.actual_critical_path()
                ),
                "go",
                None,
            ),
            eng::Outcome::Degraded { failed } => {
                let names: Vec<String> = failed.iter().map(|u| self.failure_summary(*u)).collect();
                (
                    true,
                    format!("DEGRADED after {}: {}", human(now.0), names.join("; ")),
                    "degraded",
                    Some(names.join("; ")),
                )
            }
            eng::Outcome::NoGo { unit, reason } => {
                let svc = &self.svcs[unit.0];
                let mut text = format!("NO-GO: {} failed: {reason}", svc.name);
                if !svc.tail.is_empty() {
                    text.push_str(&format!("\n  last output of {}:", svc.name));
                    for l in svc.tail.iter().skip(svc.tail.len().saturating_sub(10)) {
                        text.push_str(&format!("\n    {l}"));
                    }
                }
                text.push_str("\n  stopping everything that started, in reverse order");
                (
                    false,
                    text,
                    "no-go",
                    Some(format!("{}: {reason}", svc.name)),
                )
            }
        };
        self.event(serde_json::json!({ "event": "boot", "outcome": label, "duration_ms": now.0.as_millis() as u64, "reason": reason }));
        self.api.phase = BootPhase::Decided {
            outcome: label.to_string(),
            duration_ms: now.0.as_millis() as u64,
            reason: reason.clone(),
        };
        self.out.verdict(ok, &verdict);
        // Every failed service already opened its mission when it failed.
        self.record_boot(label, now.0, reason.as_deref());
    }

    /// A failed service becomes a mission: what failed, its last output, what must pass.
    fn open_boot_mission(&mut self, unit: UnitId) {
        let Some(store) = &self.store else { return };
        self.boot_missions.insert(self.svcs[unit.0].name.clone());
        let v = self.engine.unit(unit);
        let svc = &self.svcs[unit.0];
        let layer = self.plan.layers.get(self.plan.units[unit.0].layer).cloned();
        let gate = if self.plan.units[unit.0].service.kind.is_oneshot() {
            "completes (exit 0)"
        } else {
            "becomes ready"
        };
        let _ = store.open_mission(&crate::missions::NewMission {
            service: Some(svc.name.clone()),
            layer,
            check: "boot".into(),
            error: v.last_error.or(v.reason).unwrap_or("failed").to_string(),
            output: svc.tail.iter().cloned().collect(),
            fix_criteria: format!("{} {gate} in a later boot", svc.name),
            next_step: format!(
                "read `gantry logs {}`, fix the cause, then `gantry up` again",
                svc.name
            ),
        });
    }

    fn failure_summary(&self, unit: UnitId) -> String {
        let v = self.engine.unit(unit);
        format!(
            "{} {} ({})",
            v.name,
            v.state,
            v.last_error.or(v.reason).unwrap_or("no reason recorded")
        )
    }

    /// The chain of services that determined when the boot finished: from the
    /// last service to become ready, back through the dependency that was ready last.
    fn actual_critical_path(&self) -> String {
        let ready = |u: usize| self.engine.unit(UnitId(u)).ready_at;
        let Some(mut cur) = (0..self.plan.units.len())
            .filter(|&u| ready(u).is_some())
            .max_by_key(|&u| ready(u))
        else {
            return "(nothing started)".into();
        };
        let mut path = vec![cur];
        while let Some(prev) = self.plan.units[cur]
            .deps
            .iter()
            .map(|d| d.unit)
            .filter(|&d| ready(d).is_some())
            .max_by_key(|&d| ready(d))
        {
            if path.contains(&prev) {
                break;
            }
            path.push(prev);
            cur = prev;
        }
        path.iter()
            .rev()
            .map(|&u| self.plan.units[u].name())
            .collect::<Vec<_>>()
            .join(" → ")
    }

    fn record_boot(&mut self, outcome: &str, duration: Duration, reason: Option<&str>) {
        let (Some(store), Some(boot)) = (&mut self.store, self.boot_id) else {
            return;
        };
        let records: Vec<ServiceRecord> = self
            .engine
            .units()
            .map(|v| ServiceRecord {
                name: v.name.to_string(),
                state: v.state.to_string(),
                priority: format!("{:?}", v.priority).to_lowercase(),
                started_ms: self.svcs[v.id.0]
                    .first_spawn
                    .map(|t| t.0.as_millis() as u64),
                ready_ms: v.ready_at.map(|t| t.0.as_millis() as u64),
                attempts: v.attempt,
                error: v.last_error.map(str::to_string),
            })
            .collect();
        if let Err(e) = store.finish_boot(boot, outcome, duration, reason, &records) {
            self.out.gantry_line(&format!(
                "warning: could not record the boot in {}: {e}",
                store.path().display()
            ));
        }
    }

    fn start_notify_listener(&mut self, unit: UnitId) {
        let Some(sock) = self.svcs[unit.0].notify.clone() else {
            return;
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Ok(msg) = sock.recv().await {
                if tx.send(Msg::Notify { unit, msg }).is_err() {
                    break;
                }
            }
        });
    }

    fn flush_logs(&mut self) {
        for svc in &mut self.svcs {
            if let Some(log) = &mut svc.log {
                let _ = log.flush();
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn make_svc(
    u: &PlanUnit,
    env: Result<Vec<(String, String)>, String>,
    base: &Path,
    state_dir: &Path,
    file: &str,
) -> Result<Svc, String> {
    let s = &u.service;
    let cwd = base.join(s.working_dir.as_deref().unwrap_or("."));
    let spawn = (|| -> Result<SpawnSpec, String> {
        let env = env?;
        let argv = if s.kind == Kind::Migrate {
            // A migrate service is gantry's own migrator run as a one-shot task, so it
            // gets the same gates, retries, logs and records as any other service.
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the gantry binary: {e}"))?;
            let file =
                std::fs::canonicalize(file).map_err(|e| format!("cannot resolve {file}: {e}"))?;
            vec![
                exe.display().to_string(),
                "-f".into(),
                file.display().to_string(),
                "migrate".into(),
                "up".into(),
                "--service".into(),
                s.name.value.clone(),
            ]
        } else {
            s.command
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default()
        };
        let Some((program, args)) = argv.split_first() else {
            return Err("no command".into());
        };
        Ok(SpawnSpec {
            program: program.clone(),
            args: args.to_vec(),
            env,
            cwd: Some(cwd.clone()),
            notify_socket: None,
        })
    })();
    let probes = [s.startup.clone(), s.readiness.clone(), s.liveness.clone()];
    let listen_targets = probes.clone().map(|p| match p.map(|p| p.kind) {
        Some(ProbeKind::Tcp(addr)) => loopback_targets(&addr),
        _ => Vec::new(),
    });
    let log_matchers = probes.clone().map(|p| match p.map(|p| p.kind) {
        Some(ProbeKind::Log(re)) => Some(LogMatcher::from(re)),
        _ => None,
    });
    let notify = if probes
        .iter()
        .flatten()
        .any(|p| matches!(p.kind, ProbeKind::Notify))
    {
        Some(Arc::new(NotifySocket::bind(&s.name.value).map_err(
            |e| format!("{}: cannot create the sd_notify socket: {e}", s.name.value),
        )?))
    } else {
        None
    };
    let stop_signal = s
        .stop_signal
        .value
        .parse()
        .unwrap_or(nix::sys::signal::Signal::SIGTERM);
    let log = if s.kind == Kind::External {
        None
    } else {
        LogFile::lazy(state_dir, &s.name.value).ok()
    };
    Ok(Svc {
        name: s.name.value.clone(),
        spawn,
        cleanup: s.cleanup.clone(),
        probes,
        log_matchers,
        notify,
        stop_signal,
        log,
        tail: VecDeque::with_capacity(TAIL_LINES),
        live: None,
        status_text: None,
        first_spawn: None,
        listen_targets,
        spawned_at: None,
    })
}

/// Maps a validated plan unit onto the engine's configuration (the translation lives in
/// gantry-plan: `PlanUnit::engine_config`).
pub fn unit_config(u: &PlanUnit) -> eng::UnitConfig {
    u.engine_config()
}

/// Creates the token file (mode 0600), the channels and the HTTP server task.
fn start_api(
    cfg: &UpConfig,
    state_dir: &Path,
    out: &Output,
    store_path: Option<PathBuf>,
) -> Result<ApiSide, String> {
    let token = new_token()?;
    // The graph is rendered when the API starts, after the first wave of spawns.
    let graph = Arc::new(serde_json::Value::Null);
    let started_at = std::time::SystemTime::now();
    let initial = Snapshot {
        file: cfg.file.clone(),
        started_at,
        boot: BootPhase::Booting,
        shutting_down: false,
        services: Vec::new(),
        graph: graph.clone(),
        drift_problems: 0,
    };
    let (snap_tx, snap_rx) = watch::channel(Arc::new(initial));
    let (events_tx, _) = broadcast::channel(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let history: gantry_api::model::History = Arc::new(move || {
        store_path
            .as_ref()
            .and_then(|p| p.parent().and_then(Store::open_existing))
            .map(|s| s.history())
            .unwrap_or_default()
    });
    let missions_dir = state_dir.to_path_buf();
    let missions: gantry_api::model::Missions = Arc::new(move || {
        Store::open_existing(&missions_dir)
            .map(|s| s.missions(false))
            .unwrap_or_default()
    });
    let state = ApiState {
        missions,
        snapshot: snap_rx,
        events: events_tx.clone(),
        commands: cmd_tx,
        token: Arc::new(token.clone()),
        history,
    };
    let mut addr = cfg.spec.settings.api.clone();
    // A relative unix socket path is relative to the stack file, like every other path.
    if let Some(path) = addr.strip_prefix("unix:")
        && Path::new(path).is_relative()
    {
        addr = format!("unix:{}", cfg.base_dir.join(path).display());
    }
    let _ = out;
    Ok(ApiSide {
        state: Some((state, token)),
        token_file: state_dir.join("api.token"),
        addr,
        addr_file: state_dir.join("api.addr"),
        snapshot: snap_tx,
        events: events_tx,
        commands: cmd_rx,
        file: cfg.file.clone(),
        started_at,
        graph,
        phase: BootPhase::Booting,
        shutting_down: false,
    })
}

/// 32 random bytes from the kernel, hex encoded.
fn new_token() -> Result<String, String> {
    use std::io::Read as _;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom for the API token: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a file readable by its owner only (created with mode 0600, never widened).
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // An existing file keeps its old mode on open; tighten it explicitly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

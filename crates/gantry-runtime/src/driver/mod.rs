//! The event loop of `gantry up`: one tokio task owns all I/O and executes what the engine, through the host, asks for.
//!
//! Everything that happens — a child exits, a probe answers, a line is printed, a
//! datagram arrives on a notify socket, a signal, a timer — becomes one message on
//! one channel; the loop turns it into an engine `Event` through the host
//! (gantry-host: time, the pump, commands, snapshots) and carries out the `Action`s
//! the engine returns ([`exec`]). The engine decides; these files only do what they
//! are told and report back. [`svc`] holds what the driver keeps per service,
//! [`watch`] the listener scan that answers loopback tcp probes, [`inbound`] what
//! services send back (output, exits, sd_notify), [`api`] the API side, [`records`]
//! what a transition or the verdict leaves behind.

mod alert_feed;
mod alerts;
mod api;
mod audit;
mod bluegreen;
mod build;
mod cluster;
mod exec;
mod flag_env;
mod flags;
mod flags_watch;
mod inbound;
mod incidents;
mod ingress;
mod output;
mod quarantine;
mod records;
mod releases;
mod reload;
mod retention;
mod rollback;
mod rolling;
mod rollout;
mod rollout_file;
mod rollout_resume;
mod rollout_start;
mod rollout_status;
mod rotate;
mod runbook;
mod svc;
mod switches;
mod take_on;
mod upkeep;
mod watch;

use crate::env::SecretValue;
use crate::output::{BoardRow, Output, OutputMode};
use crate::probe;
use crate::process;
use crate::reaper::Reaper;
use crate::redact::Redactor;
use api::ApiSide;
use gantry_engine as eng;
use gantry_engine::{Engine, EngineOptions, Event, ProbeRole, UnitId};
use gantry_host::Host;
use gantry_plan::Plan;
use gantry_spec::Spec;
use gantry_state::StateDir;
use gantry_state::secure::{InstanceLock, LockError};
use gantry_state::store::Store;
use output::Out;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use svc::Svc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use watch::ListenWatch;

pub use flags::UNIX_API_NOTE;
pub use reload::{INVALID, LoadFn, Reloader};

/// How many lines of each service's output are kept for failure reports.
const TAIL_LINES: usize = 50;
/// How many queued messages one turn of the event loop takes at most (see `event_loop`).
const MESSAGE_BURST: usize = 64;

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
    /// A stop-signal watcher the caller started before loading the file; kept until the
    /// event loop's handlers take over (one is started here when `None`).
    pub guard: Option<crate::interrupt::PhaseGuard>,
    /// Loads the file again for `gantry reload` and SIGHUP (same path and selection);
    /// without it a reload is refused.
    pub reload: Option<Reloader>,
}

/// Messages from I/O tasks to the loop.
enum Msg {
    /// A webhook or exec notification was delivered, or why not (alerts.rs).
    AlertDelivered {
        id: u64,
        result: Result<(), String>,
    },
    /// The ingress drained an instance of a rolling restart (rolling.rs).
    Drained {
        unit: UnitId,
    },
    /// The ingress drained a rollout's canary (rollout.rs).
    CanaryDrained {
        unit: UnitId,
    },
    /// A blue/green rollout's pre-promotion check ended, or its green set drained (bluegreen.rs).
    BlueGreen(bluegreen::Note),
    /// The stack file loaded again for a reload (reload.rs), or why not.
    Reloaded(Box<Result<reload::Loaded, String>>),
    /// The stack file loaded again to take on a service the selection left out (take_on.rs).
    TakenOn {
        take: Box<take_on::TakeOn>,
        result: Box<Result<reload::Loaded, String>>,
    },
    /// The stack file loaded for a rollout of its current definition (rollout_file.rs).
    RolloutLoaded {
        job: Box<rollout_file::FileRollout>,
        result: Box<Result<reload::Loaded, String>>,
    },
    /// The certificates of the TLS probes (alert_feed.rs): endpoint, notAfter (Unix s).
    ProbeCerts(Vec<(String, i64)>),
    /// A runbook's `run` step ended (runbook.rs): its audit row and its outcome.
    RunbookRan {
        audit: Option<i64>,
        result: Result<String, String>,
    },
    /// A secret re-resolved for `gantry rotate` (rotate.rs): its value, or why not.
    Rotated {
        name: String,
        result: Result<SecretValue, String>,
    },
    SpawnDone {
        unit: UnitId,
        r#gen: eng::Gen,
        result: Result<process::SpawnedFds, process::SpawnError>,
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
    /// A spawn to try again (gantry was out of descriptors).
    RetrySpawn {
        unit: UnitId,
        r#gen: eng::Gen,
    },
    /// A probe to run again (gantry was out of descriptors when it ran).
    RetryProbe {
        unit: UnitId,
        role: ProbeRole,
        seq: u64,
        timeout: Duration,
    },
    Cleanup {
        unit: UnitId,
        ok: bool,
        message: String,
    },
    Revalidated(crate::preflight::Report, Vec<SecretValue>),
    /// A line for the operator from work done off the event loop.
    Warning(String),
    Remediated {
        unit: UnitId,
        outcome: probe::ProbeOutcome,
    },
    /// The flags file changed and was read again (flags_watch.rs).
    FlagsFile(Box<flags_watch::FileRead>),
    /// A pruning pass of the state store's history ended (retention.rs).
    Pruned(Result<gantry_state::retention::Pruned, String>),
    /// Remove a service's cgroups again (processes left in them were still dying).
    RemoveGroups {
        unit: UnitId,
        tries: u32,
    },
    /// The leader's renewal task (`[cluster]`, cluster.rs): standbys, trouble, a lost lease.
    Cluster(gantry_cluster::Report),
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
    // The state dir is private and this instance its only user: refused when others may
    // write it; a second `up` learns who runs the stack before it touches anything.
    let state = StateDir::new(cfg.base_dir.join(&cfg.spec.settings.state_dir));
    if let Err(e) = gantry_state::secure::prepare(&state) {
        eprintln!("NO-GO: {e}");
        return 1;
    }
    let lock = match InstanceLock::acquire(&state) {
        Ok(lock) => lock,
        Err(LockError::Running(running)) => {
            eprintln!(
                "error: {running} (state dir {})\n  hint: `gantry status` shows it, `gantry down` stops it",
                state.root().display()
            );
            return 1;
        }
        Err(LockError::Io(e)) => {
            eprintln!("error: {e}\n  hint: check the state dir's permissions");
            return 1;
        }
    };
    // A standby's view a killed instance left behind is not this one's.
    let _ = std::fs::remove_file(state.cluster_standby());
    // The event loop's handlers exist from here on (a signal is kept for it), and until
    // the loop runs a thread of its own honours them: nothing has started yet.
    let mut signals = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(a), Ok(b), Ok(c)) => Signals {
            int: a,
            term: b,
            hup: c,
        },
        _ => {
            eprintln!("error: cannot install signal handlers");
            return 1;
        }
    };
    let guard = cfg
        .guard
        .take()
        .or_else(crate::interrupt::PhaseGuard::start);
    // How this machine enforces the services' limits, found once (gantry's own groups
    // are made here, and removed when the limiter is dropped or closed).
    let limiter = crate::resource::Limiter::detect(&cfg.plan);
    // Secrets are resolved either way (required ones fail closed); the rest of the
    // pre-flight runs unless skipped.
    let (report, secrets, envs) = if cfg.preflight {
        crate::preflight::run_for_up(&cfg.spec, &cfg.plan, &cfg.base_dir, &reaper, &limiter).await
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
    } else {
        // Without the pre-flight, a limit that is not enforced is still said once.
        for (service, enforced, message, _) in limiter.report() {
            if !enforced {
                eprintln!("warning: {service}: limits: {message}");
            }
        }
    }
    if !report.go() {
        crate::preflight::record_preflight(
            &cfg.base_dir.join(&cfg.spec.settings.state_dir),
            &report,
        );
        return 1;
    }
    cfg.secrets = secrets;
    // Printed and, on a NO-GO, recorded: not kept for the life of the stack (a line or
    // two per service).
    drop(report);
    drop(guard);
    // `[cluster]`: the pre-flight passed; lead and boot, or stand by until the lease is ours.
    let leadership = match &cfg.spec.cluster {
        Some(c) => {
            let ccfg = cluster::config(c, state.root());
            match cluster::elect(&ccfg, cfg.output, &mut signals, &state).await {
                cluster::Elected::Lead(l) => Some((ccfg, *l)),
                cluster::Elected::Stopped => return 0,
                cluster::Elected::Failed => return 1,
            }
        }
        None => None,
    };
    match Driver::new(cfg, reaper, envs, lock, limiter, leadership) {
        Ok(driver) => driver.run(signals).await,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// The stop signals the event loop answers (installed before the pre-flight).
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

struct Driver {
    /// What the continuous validation re-checks (`settings.revalidate`).
    spec: Arc<Spec>,
    base_dir: PathBuf,
    /// Masks secret values in everything that enters from outside.
    redactor: Redactor,
    /// The secrets as resolved now (rotate.rs replaces one on `gantry rotate`).
    secrets: Vec<SecretValue>,
    /// Every value the redactor masks: the current ones and those rotated away.
    masked: Vec<String>,
    /// Secrets revalidation found changed at their source (told once until rotated).
    stale_secrets: std::collections::HashSet<String>,
    /// The engine and its time, pump, commands and snapshots.
    host: Host,
    svcs: Vec<Svc>,
    out: Output,
    reaper: Arc<Reaper>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Probe results answered on the loop itself (from a LISTEN table or one loopback
    /// connect): handled in the next turn, in the channel's place, without a trip through it
    /// (a thousand a second at 1,000 services; the channel's block allocations were a tenth
    /// of the idle CPU).
    answered: std::collections::VecDeque<Msg>,
    /// Service output and exits (output.rs): served after everything else.
    /// The reader of every service's output pipes.
    hub: output::Hub,
    out_rx: mpsc::UnboundedReceiver<Out>,
    store: Option<Store>,
    /// `[alerts]`: the evaluator and the notifier (alerts.rs).
    alerts: Option<alerts::AlertSide>,
    boot_id: Option<i64>,
    shutdown_timeout: Duration,
    plan: Plan,
    api: ApiSide,
    procstat: crate::procstat::ProcStat,
    usage: Vec<Option<crate::procstat::Usage>>,
    /// When `usage` was sampled (None: never).
    usage_sampled: Option<std::time::Instant>,
    /// Services whose log wrote since its file was closed: the flush tick visits only these.
    busy_logs: Vec<UnitId>,
    /// Where to open the state store once the boot is under way.
    pending_store: Option<(PathBuf, String, std::time::SystemTime)>,
    published_at: Instant,
    /// What the last snapshot took to build and publish: the next one waits at least
    /// nine times as long, so publishing stays under a tenth of the loop's time however
    /// many services there are (5,000 exits each rebuilding 5,000 entries took 18 s).
    publish_cost: Duration,
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
    /// How many spawns the batch being carried out still holds.
    spawns_left: usize,
    /// Spawns handed to the blocking pool whose result has not come back yet.
    pool_spawns: usize,
    /// Shutdown requests so far (the second one kills), and when the first one's
    /// `shutdown_timeout` runs out.
    interrupts: u32,
    kill_at: Option<Instant>,
    /// When gantry last said it was out of descriptors.
    fd_warned: Option<Instant>,
    /// Held while this instance runs the stack (released when gantry exits, even killed).
    lock: InstanceLock,
    /// The state dir (the store, logs).
    state_dir: PathBuf,
    /// A pruning pass of the history is under way (retention.rs).
    pruning: bool,
    /// The services' cgroups (or rlimits): `memory_max`, `cpu_max`, OOM kills.
    limiter: crate::resource::Limiter,
    /// The proxy in front of the stack, when the file has `[ingress]`.
    ingress: Option<ingress::IngressSide>,
    /// A rolling restart of a replicated service in progress.
    rolling: Option<rolling::Rolling>,
    /// The canary rollout in progress, or the last one (rollout.rs).
    rollout: Option<rollout::Active>,
    /// The green instances blue/green rollouts added (reused by the next one; bluegreen.rs).
    greens: Vec<UnitId>,
    /// Loads the stack file again (reload.rs).
    reloader: Option<Reloader>,
    /// Set while a reload is under way: who waits for its answer.
    reload_waiters: Option<Vec<reload::Waiter>>,
    /// Audit rows of the reloads under way, completed when the reload ends.
    reload_audits: Vec<i64>,
    /// Services disabled by an operator (kept in the state store across runs), by name.
    switches: switches::Switches,
    /// Feature flags: definitions, overrides, kill switches (flags.rs).
    flags: flags::FlagsSide,
    /// `GANTRY_OFREP_URL` and `GANTRY_OFREP_TOKEN` for every service (empty when the API
    /// has no address a client can reach over HTTP before it binds: a unix socket, port 0).
    ofrep_env: Vec<(String, String)>,
    /// `GANTRY_FLAG_<NAME>` as the services' environments hold it (flag_env.rs).
    flag_env: flag_env::FlagEnv,
    /// Services enabled though this run's selection left them out (take_on.rs): selected
    /// too by every later load of the file.
    taken_on: Vec<String>,
    /// The alert feeders' cached inputs (alert_feed.rs).
    alert_feed: alert_feed::Feed,
    /// The runbook under way and the last runs (runbook.rs).
    runbooks: runbook::Runbooks,
    /// The open incident (incidents.rs).
    incidents: incidents::Incidents,
    /// `[cluster]`: this instance leads; the lease's renewal and fenced writes (cluster.rs).
    cluster: Option<cluster::ClusterSide>,
}

impl Driver {
    /// Runs the event loop to its end, then removes the groups the limits made.
    async fn run(mut self, signals: Signals) -> i32 {
        let mut code = self.event_loop(signals).await;
        if let Some(lost) = self.cluster_finish().await {
            code = lost;
        }
        if let Some(ing) = self.ingress.take() {
            // Closed since the shutdown began; in-flight requests finish, then the thread ends.
            let _ = tokio::task::spawn_blocking(move || ing.handle.shutdown()).await;
        }
        self.limiter.close().await;
        code
    }

    async fn event_loop(&mut self, signals: Signals) -> i32 {
        let Signals {
            int: mut sigint,
            term: mut sigterm,
            hup: mut sighup,
        } = signals;
        self.out
            .gantry_line(&format!("booting {} services", self.svcs.len()));
        for i in 0..self.svcs.len() {
            self.start_notify_listener(UnitId(i));
        }
        self.host.start();
        // Kill switches left on by a stored override hold from the first request.
        self.apply_kill_switches();
        // The flags file is watched from here on (its reads come back as messages).
        if let Err(e) = self.flags.watch(self.tx.clone()) {
            self.out.gantry_line(&e);
        }
        // The first wave is spawned before the API is built and bound: that work is
        // not on the boot's critical path.
        if let Some(code) = gantry_host::drain(self) {
            self.last_alerts().await;
            self.flush_logs();
            return code;
        }
        self.start_api_server().await;
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
        let mut alert_tick = tokio::time::interval(Duration::from_secs(1));
        alert_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut usage_tick = tokio::time::interval(Duration::from_secs(2));
        usage_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut usage_ticks = 0usize;
        // History beyond `[settings] retention`: pruned once the boot is decided, then hourly.
        let mut retention_tick =
            tokio::time::interval_at(Instant::now() + retention::EVERY, retention::EVERY);
        retention_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut board_tick = tokio::time::interval(Duration::from_millis(100));
        board_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A leader whose lease ran out stops before it acts on anything else.
            self.check_lease();
            if let Some(code) = gantry_host::drain(self) {
                self.last_alerts().await;
                self.flush_logs();
                return code;
            }
            if let Some(ing) = &mut self.ingress {
                // Instances and the gate follow the engine at once, not at the next snapshot.
                ing.sync(self.host.engine());
            }
            self.roll();
            self.rollout_tick();
            self.runbook_tick();
            self.open_pending_store();
            // State changes publish at once (health answers must follow the gates);
            // figures alone (probe durations, output) when a reader asks for them, or for
            // the alert rules at most once a second per 250 services — rebuilding the
            // snapshot after every probe result was 40% of the boot's CPU, and every 4 s a
            // twelfth of the idle CPU at 1,000 services.
            // A burst of messages (a wave of spawns, fifty probes passing) publishes once,
            // when the queue drains — or every 5 ms if it never does — instead of
            // rebuilding the whole snapshot after each of them.
            let spaced = self.published_at + self.publish_gap();
            let settled = (self.rx.is_empty() && self.answered.is_empty()
                || self.published_at.elapsed() >= Duration::from_millis(5))
                && Instant::now() >= spaced;
            let (dirty, stats_dirty) = self.host.stale();
            // Figures alone are published on this timer only for the alert rules (which
            // read the snapshot); readers ask for them (gantry_api::figures).
            if (dirty && settled)
                || (stats_dirty
                    && self.alerts_enabled()
                    && self.published_at.elapsed() >= self.stats_gap())
            {
                self.publish();
            }
            // A change left unpublished for spacing is published when the gap is over,
            // even if nothing else happens by then.
            let publish_due =
                (self.host.stale().0 && self.rx.is_empty() && self.answered.is_empty())
                    .then(|| self.published_at + self.publish_gap());
            self.arm_listen_tick();
            let deadline = self.host.deadline();
            let rollout_due = self.rollout_due();
            let flag_deadline = self.flags.deadline();
            let runbook_due = self.runbook_due();
            let lease_end = self.lease_deadline();
            tokio::select! {
                biased;
                // First: a leader paused past its lease wakes up here and stops before any
                // other branch acts.
                _ = gantry_host::sleep_until_opt(lease_end), if lease_end.is_some() => self.check_lease(),
                _ = sigint.recv() => self.interrupt("interrupt"),
                _ = sigterm.recv() => self.interrupt("SIGTERM"),
                // SIGHUP reloads the stack file (before the loop runs, the pre-flight's
                // guard treats it as a stop: nothing has started then).
                _ = sighup.recv() => self.reload("SIGHUP", None),
                // Commands before results: a flood of anything cannot delay `gantry stop`.
                Some(request) = self.api.commands.recv() => self.command(request),
                // Results answered on the loop, in bursts like the channel's below.
                _ = std::future::ready(()), if !self.answered.is_empty() => {
                    for _ in 0..MESSAGE_BURST {
                        match self.answered.pop_front() {
                            Some(msg) => self.message(msg),
                            None => break,
                        }
                    }
                }
                Some(msg) = self.rx.recv() => {
                    self.message(msg);
                    // A burst (a beat's probe results, a wave's spawns) is taken in one
                    // turn of the loop instead of one turn each — the turn's own work was
                    // most of the idle CPU at 1,000 services; bounded, so signals and
                    // commands still come first within a few dozen results.
                    for _ in 1..MESSAGE_BURST {
                        match self.rx.try_recv() {
                            Ok(msg) => self.message(msg),
                            Err(_) => break,
                        }
                    }
                }
                _ = async { self.listen.as_ref().map(|w| w.tick.tick()).expect("guarded").await }, if self.listen.as_ref().is_some_and(|w| w.tick.period().is_some()) => self.listen_tick(),
                _ = board_tick.tick(), if self.board_live() => self.redraw_board(),
                _ = usage_tick.tick() => {
                    self.trim_once();
                    // One /proc scan reads every process's stat (~27 ms at 1,000
                    // services): taken when a reader of the figures asks (the branch
                    // below), and on this timer only for an alert rule that watches them.
                    usage_ticks += 1;
                    if self.usage_on_timer() && usage_ticks >= (self.svcs.len() / 100).max(1) {
                        usage_ticks = 0;
                        self.sample_usage();
                    }
                }
                // A reader found the figures too old (gantry_api::figures): usage sampled
                // if it is (not during the boot: `up --detach` polls the status, and a scan
                // of 1,000 services is ~27 ms of the loop), and published at once, since the
                // reader waits for them.
                _ = self.api.figures.wanted() => {
                    if self.host.engine().boot_outcome().is_some()
                        && self.api.figures.usage_stale(self.usage_sampled)
                    {
                        self.sample_usage();
                    }
                    self.publish();
                }
                _ = revalidate_tick.tick(), if revalidate_every.is_some() && self.host.engine().boot_outcome().is_some() => self.revalidate(),
                _ = retention_tick.tick() => self.prune_history(),
                _ = alert_tick.tick(), if self.alerts_enabled() => self.evaluate_alerts(),
                // Logs are buffered; a short tick bounds how stale `gantry logs -f` can be.
                _ = flush_tick.tick(), if !self.busy_logs.is_empty() => self.flush_logs(),
                _ = gantry_host::sleep_until_opt(deadline), if deadline.is_some() => self.host.timeout(),
                _ = gantry_host::sleep_until_opt(publish_due), if publish_due.is_some() => {}
                // A runbook's wait step looks again (its state or its timeout).
                _ = gantry_host::sleep_until_opt(runbook_due), if runbook_due.is_some() => {}
                // An override with an expiry reverts by itself (audited as `flag.expire`).
                _ = gantry_host::sleep_until_opt(flag_deadline), if flag_deadline.is_some() => self.expire_flags(),
                _ = gantry_host::sleep_until_opt(self.kill_at), if self.kill_at.is_some() => {
                    self.out.gantry_line(&format!("shutdown took longer than {}; killing what is left", gantry_spec::duration::format_duration(self.shutdown_timeout)));
                    self.kill_at = None;
                    self.host.command(eng::Command::Kill);
                }
                // A rollout's analysis: after signals, commands and probes, never before them.
                _ = gantry_host::sleep_until_opt(rollout_due), if rollout_due.is_some() => self.rollout_analyse(),
                // Last: service output (and exits, which follow their output). A service
                // that floods gantry delays only its own lines (output.rs).
                Some(out) = self.out_rx.recv() => self.output(out),
            }
        }
    }

    /// Whether anyone reads the event stream (`--json` output or an SSE client).
    fn wants_events(&self) -> bool {
        self.out.mode() == OutputMode::Json || self.api.events.receiver_count() > 0
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
        if value["event"] == "transition"
            && let (Some(svc), Some(from), Some(to)) = (
                value["service"].as_str(),
                value["from"].as_str(),
                value["to"].as_str(),
            )
        {
            self.incident_note("transition", &format!("{svc}: {from} -> {to}"));
        }
        if self.out.mode() == OutputMode::Json {
            self.out.raw(&value.to_string());
        }
        let _ = self.api.events.send(value);
    }

    /// A shutdown request (signal or API): the first stops in order, a second kills.
    fn interrupt(&mut self, what: &str) {
        if self.interrupts == 0 {
            // A leader resigns at once: a standby boots while this stack stops.
            self.cluster_resign();
            self.out.gantry_line(&format!(
                "{what}: stopping in reverse order (layers, then dependencies) (press Ctrl-C again to kill at once)"
            ));
            self.kill_at = Instant::now().checked_add(self.shutdown_timeout);
            self.host.command(eng::Command::Shutdown);
        } else {
            self.out
                .gantry_line(&format!("{what} again: killing everything now"));
            self.host.command(eng::Command::Kill);
        }
        self.interrupts += 1;
    }

    fn message(&mut self, msg: Msg) {
        self.host.mark_stats();
        match msg {
            Msg::AlertDelivered { id, result } => self.alert_delivered(id, result),
            Msg::SpawnDone {
                unit,
                r#gen,
                result,
            } => {
                self.pool_spawns = self.pool_spawns.saturating_sub(1);
                self.spawn_done(unit, r#gen, result)
            }
            Msg::Notify { unit, msg } => self.notified(unit, msg),
            Msg::Probe {
                unit,
                role,
                seq,
                outcome,
            } => {
                let message = self.redactor.redact_owned(outcome.message);
                self.host
                    .probe_result(unit, role, seq, outcome.ok, message, outcome.duration);
            }
            Msg::RetryProbe {
                unit,
                role,
                seq,
                timeout,
            } => {
                self.short_of_descriptors();
                self.run_probe(unit, role, seq, timeout);
            }
            Msg::RetrySpawn { unit, r#gen } => {
                self.short_of_descriptors();
                // Only while the engine still waits for this incarnation's spawn.
                let v = self.host.unit(unit);
                if v.r#gen == r#gen && v.state == eng::State::Starting && v.pid.is_none() {
                    self.spawns_left = 0;
                    self.spawn(unit, r#gen, v.attempt);
                }
            }
            Msg::Revalidated(report, values) => {
                self.secrets_changed(&values);
                self.revalidated(report);
            }
            Msg::Rotated { name, result } => self.rotated(&name, result),
            Msg::Drained { unit } => self.drained(unit),
            Msg::CanaryDrained { unit } => self.canary_drained(unit),
            Msg::BlueGreen(note) => self.green_note(note),
            Msg::Reloaded(result) => self.reloaded(*result),
            Msg::TakenOn { take, result } => self.taken_on(*take, *result),
            Msg::RunbookRan { audit, result } => self.runbook_ran(audit, result),
            Msg::ProbeCerts(found) => self.probe_certs(found),
            Msg::RolloutLoaded { job, result } => self.rollout_loaded(*job, *result),
            Msg::Warning(text) => self.out.gantry_line(&text),
            Msg::Remediated { unit, outcome } => self.remediated(unit, outcome),
            Msg::Pruned(result) => self.pruned(result),
            Msg::Cluster(report) => self.cluster_report(report),
            Msg::FlagsFile(read) => self.flags_file_read(*read),
            Msg::RemoveGroups { unit, tries } => {
                if !self.limiter.remove(unit.0) {
                    self.remove_groups_later(unit, tries + 1);
                }
            }
            Msg::Cleanup { unit, ok, message } => {
                let message = self.redactor.redact_owned(message);
                self.host.handle(Event::CleanupDone { unit, ok, message })
            }
        }
    }

    /// The live incarnation of `unit` exited: whether the OOM killer struck it (its memory
    /// limit), and its cgroups emptied and removed, now or shortly.
    fn groups_after_exit(&mut self, unit: UnitId) -> Option<u64> {
        let ended = self.limiter.exited(unit.0);
        self.quarantine_ended(unit);
        if ended.removal_pending {
            self.remove_groups_later(unit, 1);
        }
        ended.oom_kill
    }

    /// Tries again to remove `unit`'s groups in 10 ms, at most 200 times (2 s); what is
    /// left then goes when gantry exits.
    fn remove_groups_later(&self, unit: UnitId, tries: u32) {
        if tries > 200 {
            return;
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ = tx.send(Msg::RemoveGroups { unit, tries });
        });
    }

    /// Says (at most every 10 s) that gantry ran out of descriptors and retried.
    fn short_of_descriptors(&mut self) {
        if self
            .fd_warned
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        self.fd_warned = Some(Instant::now());
        self.out.gantry_line(
            "warning: gantry ran out of file descriptors; probes and spawns are retried instead of failing services (raise `ulimit -n`)",
        );
    }
}

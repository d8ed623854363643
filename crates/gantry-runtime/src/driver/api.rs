//! The driver's side of the HTTP API: the server started after the first wave (a `host:0` socket bound before the first spawn, so services get its port in `GANTRY_OFREP_URL`), the snapshots it publishes, the commands it answers, the token and address files.

use super::{Driver, Msg, UpConfig};
use gantry_api::model::{ApiCommand, ApiState, BootPhase, Caller, CommandRequest, Snapshot};
use gantry_host::{Extra, Request};
use gantry_state::StateDir;
use gantry_state::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

/// The driver's end of the API: what it publishes and what it is asked to do.
pub(super) struct ApiSide {
    /// Taken when the server starts (the router is built then, after the first spawns).
    pub(super) state: Option<(ApiState, String)>,
    token_file: PathBuf,
    read_token_file: PathBuf,
    addr: String,
    /// `host:0`: the socket bound before the first spawn, so that services get the port in
    /// `GANTRY_OFREP_URL` (None when the address names its port, or that early bind failed:
    /// the server's own bind says why).
    prebound: Option<std::net::TcpListener>,
    addr_file: PathBuf,
    pub(super) snapshot: watch::Sender<Arc<Snapshot>>,
    pub(super) events: broadcast::Sender<serde_json::Value>,
    pub(super) commands: mpsc::Receiver<CommandRequest>,
    file: String,
    pub(super) graph: gantry_api::model::JsonText,
    shutting_down: bool,
    /// Readers of the figures ask for a fresh snapshot through it (upkeep.rs).
    pub(super) figures: gantry_api::figures::FigureFeed,
}

impl ApiSide {
    /// The stack file as the user named it.
    pub(super) fn file(&self) -> &str {
        &self.file
    }

    /// The address services reach the API on: the one bound for `host:0`, else the file's.
    pub(super) fn service_addr(&self) -> String {
        self.prebound
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map_or_else(|| self.addr.clone(), |a| a.to_string())
    }
}

/// Binds `addr` at once when it is a TCP address with port 0 (a bind is one system call, no
/// disk): the port is then known before the first service starts.
fn prebind(addr: &str) -> Option<std::net::TcpListener> {
    let parsed = addr.parse::<std::net::SocketAddr>().ok()?;
    if parsed.port() != 0 {
        return None;
    }
    let listener = std::net::TcpListener::bind(parsed).ok()?;
    listener.set_nonblocking(true).ok()?;
    Some(listener)
}

impl Driver {
    /// Binds the API (port 0 picks a free port), records the address actually bound
    /// in state_dir/api.addr for client commands, and serves it in the background.
    pub(super) async fn start_api_server(&mut self) {
        let Some((state, token)) = self.api.state.take() else {
            return;
        };
        self.api.graph = gantry_plan::render_json(&self.plan).into();
        self.api
            .snapshot
            .send_modify(|s| Arc::make_mut(s).graph = self.api.graph.clone());
        let read_token = state.read_token.to_string();
        let router = gantry_api::router(state);
        let listener = match self.api.prebound.take() {
            Some(l) => tokio::net::TcpListener::from_std(l).map(gantry_api::ApiListener::Tcp),
            None => gantry_api::bind(&self.api.addr).await,
        };
        match listener {
            Ok(listener) => {
                let bound = listener
                    .local_addr()
                    .unwrap_or_else(|_| self.api.addr.clone());
                self.out.gantry_line(&format!(
                    "API on {bound} (token in {})",
                    self.api.token_file.display()
                ));
                // API clients may hold at most a quarter of gantry's descriptors: the rest
                // stay for spawns, pipes, probes and logs.
                let fds =
                    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                        .map_or(1024, |(soft, _)| soft);
                let limits = gantry_api::Limits {
                    max_connections: usize::try_from(fds / 4).unwrap_or(256).clamp(8, 256),
                    ..gantry_api::Limits::default()
                };
                tokio::spawn(gantry_api::serve_with(
                    listener,
                    router,
                    std::future::pending(),
                    limits,
                ));
                // The files clients find this instance by are written off the event loop:
                // a create or truncate can wait milliseconds for a busy file-system
                // journal, and this runs while the first services are starting. The token
                // goes first, so a client that sees the address can read the token.
                let read_token_file = self.api.read_token_file.clone();
                let (token_file, addr_file, tx) = (
                    self.api.token_file.clone(),
                    self.api.addr_file.clone(),
                    self.tx.clone(),
                );
                let note_api = self.lock.set_api_later(&bound);
                tokio::task::spawn_blocking(move || {
                    note_api();
                    let written = write_private(&token_file, &token)
                        .and_then(|()| write_private(&read_token_file, &read_token))
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

    /// Publishes the current state for the API (coalesced: once per loop turn at most).
    /// The least time between two snapshots: nine times what the last one cost (nothing
    /// at 50 services, ~20 ms at 5,000), at most 100 ms.
    /// See [`stats_gap`].
    pub(super) fn stats_gap(&self) -> Duration {
        stats_gap(self.svcs.len())
    }

    pub(super) fn publish_gap(&self) -> Duration {
        self.publish_cost
            .saturating_mul(9)
            .min(Duration::from_millis(100))
    }

    pub(super) fn publish(&mut self) {
        let started = Instant::now();
        let mut switched = self.switch_views();
        let (svcs, usage, procstat) = (&self.svcs, &self.usage, &self.procstat);
        let mut snap = self.host.snapshot(
            &self.api.file,
            &self.api.graph,
            self.drift as u64,
            self.api.shutting_down,
            |v| {
                let usage = if v.pid.is_some() { usage[v.id.0] } else { None };
                // Host pids, as `ps` and `ss -ltnp` show them: inside gantry's PID namespace
                // a pid is known once a usage sample has mapped it (whenever a reader finds
                // the last sample too old, gantry_api::figures); until then none is shown
                // rather than a wrong one.
                let pid = v.pid.and_then(|p| {
                    procstat
                        .host_pid(p)
                        .or((!procstat.in_namespace()).then_some(p))
                });
                Extra {
                    pid,
                    status_text: svcs[v.id.0].status_text.clone(),
                    cpu_seconds: usage.map(|u| u.cpu_seconds),
                    rss_bytes: usage.map(|u| u.rss_bytes),
                    output_dropped_lines: svcs[v.id.0].dropped,
                    switch: switched.get_mut(v.id.0).and_then(Option::take),
                    ..Extra::default()
                }
            },
        );
        snap.cluster = self.cluster.as_ref().map(|c| c.view.clone());
        snap.usage_sampled = self.usage_sampled;
        // During the boot a reader is not worth a `/proc` scan on the loop (mod.rs).
        snap.usage_deferred = self.host.engine().boot_outcome().is_none();
        snap.published_at = Some(std::time::Instant::now());
        // The previous snapshot is freed here too (unless a reader still holds it).
        drop(self.api.snapshot.send_replace(Arc::new(snap)));
        self.published_at = Instant::now();
        self.publish_cost = self.published_at - started;
    }

    /// A mutation from the API (token already checked): the shutdown as if signalled,
    /// service commands through the host.
    pub(super) fn api_command(
        &mut self,
        cmd: ApiCommand,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<String, String> {
        self.host.mark_dirty();
        if matches!(
            cmd,
            ApiCommand::SetFlag { .. }
                | ApiCommand::UnsetFlag { .. }
                | ApiCommand::IngressMode { .. }
        ) {
            return self.flag_command(cmd, caller, reason);
        }
        if let ApiCommand::Rotate(name) = &cmd {
            return self.rotate(name);
        }
        match &cmd {
            ApiCommand::Rollout { service, body } => {
                return self.rollout_start(service, body, None);
            }
            ApiCommand::RolloutControl { service, action } => {
                return self.rollout_control(service, action);
            }
            ApiCommand::RolloutStatus(service) => return self.rollout_status(service),
            ApiCommand::Runbooks => return self.runbooks_json(),
            ApiCommand::IncidentOpen { .. }
            | ApiCommand::IncidentAck(_)
            | ApiCommand::IncidentResolve(_) => {
                return self.incident_command(&cmd, caller);
            }
            ApiCommand::RunRunbook { name, dry_run } => {
                return self.runbook_command(name, *dry_run, caller, reason);
            }
            ApiCommand::Releases(service) => return self.releases_json(service),
            // Answered once the file is loaded (audit.rs starts it).
            ApiCommand::Rollback { service, .. } => {
                return Err(format!(
                    "cannot roll {service} back from here: ask through the API (`gantry rollback {service}`)"
                ));
            }
            _ => {}
        }
        if let ApiCommand::Disable(_) | ApiCommand::Enable(_) = &cmd {
            return self.switch_command(&cmd, caller, reason);
        }
        if let ApiCommand::Quarantine(_) | ApiCommand::Release(_) = &cmd {
            return self.quarantine_command(&cmd, caller, reason);
        }
        if let ApiCommand::Restart(name) = &cmd
            && self.plan.replica_group(name).is_some()
        {
            return self.rolling_restart(name);
        }
        // Start or stop of a replicated service: every instance.
        if let ApiCommand::Start(name) | ApiCommand::Stop(name) = &cmd
            && let Some(group) = self.plan.replica_group(name)
        {
            let names: Vec<String> = group
                .units
                .iter()
                .map(|&i| self.plan.units[i].name().to_string())
                .collect();
            let mut replies = Vec::with_capacity(names.len());
            for unit in names {
                let one = match &cmd {
                    ApiCommand::Start(_) => ApiCommand::Start(unit),
                    _ => ApiCommand::Stop(unit),
                };
                let request = self.host.request(&one)?;
                replies.push(self.host.apply(&request));
            }
            return Ok(replies.join("; "));
        }
        let request = self.host.request(&cmd)?;
        if let Request::Service { name, verb, .. } = &request {
            let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
            self.out.gantry_line(&format!(
                "{name}: {} requested through the API by {}{why}",
                verb.word(),
                caller.actor
            ));
        } else {
            self.api.shutting_down = true;
            self.interrupt("API shutdown");
            return Ok(request.reply());
        }
        Ok(self.host.apply(&request))
    }
}

/// How old figures alone (probe durations, output counts) may be when published: a second,
/// and a second more per 250 services (4 s at 1,000). A reader finding the snapshot older
/// gets a new one (`gantry_api::figures`); on a timer they are published only for the alert
/// rules, which read the snapshot.
pub(super) fn stats_gap(services: usize) -> Duration {
    Duration::from_secs(1 + (services / 250) as u64)
}

/// Creates the token file (mode 0600), the channels and the HTTP server task.
pub(super) fn start_api(cfg: &UpConfig, state_dir: &StateDir) -> Result<ApiSide, String> {
    let token = new_token()?;
    let read_token = new_token()?;
    let named_tokens = match &cfg.spec.settings.api_tokens {
        Some(file) => load_named_tokens(&cfg.base_dir.join(file))?,
        None => Vec::new(),
    };
    // The graph is rendered when the API starts, after the first wave of spawns.
    let graph = gantry_api::model::JsonText::default();
    let started_at = std::time::SystemTime::now();
    let initial = Snapshot {
        file: cfg.file.clone(),
        started_at,
        boot: BootPhase::Booting,
        shutting_down: false,
        services: Vec::new(),
        graph: graph.clone(),
        drift_problems: 0,
        cluster: None,
        published_at: None,
        usage_sampled: None,
        usage_deferred: false,
    };
    let (snap_tx, snap_rx) = watch::channel(Arc::new(initial));
    let figures = gantry_api::figures::FigureFeed::new(
        super::upkeep::usage_max_age(cfg.plan.units.len()),
        stats_gap(cfg.plan.units.len()),
    );
    let (events_tx, _) = broadcast::channel(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let history_dir = state_dir.root().to_path_buf();
    let history: gantry_api::model::History = Arc::new(move || {
        Store::open_existing(&history_dir)
            // No store yet: no boot recorded. A damaged one: an error, not an empty list.
            .map_or(Ok(Vec::new()), |s| s.history())
    });
    let missions_dir = state_dir.root().to_path_buf();
    let missions: gantry_api::model::Missions = Arc::new(move || {
        Store::open_existing(&missions_dir).map_or(Ok(Vec::new()), |s| s.missions(false))
    });
    let audit_dir = state_dir.root().to_path_buf();
    let audit: gantry_api::model::Audit = Arc::new(move |since, limit| {
        Store::open_existing(&audit_dir).map_or(Ok(Vec::new()), |s| s.audit(since, limit))
    });
    let incidents_dir = state_dir.root().to_path_buf();
    let incidents: gantry_api::model::Incidents = Arc::new(move |id| {
        let Some(store) = Store::open_existing(&incidents_dir) else {
            // No store yet: no incident was ever opened.
            return Ok(id.is_none().then(|| serde_json::json!({ "incidents": [] })));
        };
        match id {
            None => store
                .incidents()
                .map(|list| Some(serde_json::json!({ "incidents": list }))),
            Some(id) => store.incident(id).map(|found| {
                found.map(|mut incident| {
                    incident["postmortem"] = gantry_state::incidents::postmortem(&incident).into();
                    incident
                })
            }),
        }
    });
    let logs_dir = state_dir.clone();
    let logs: gantry_api::model::Logs = Arc::new(move |service, n| {
        // At most the last 1 MiB of the file is read, whatever its size.
        let entries = gantry_state::logfmt::read::tail(&logs_dir.log_file(service), n, 1 << 20)
            .map_err(|e| format!("cannot read the log of {service}: {e}"))?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let at = (e.ts != i64::MIN).then(|| {
                    gantry_time::rfc3339_utc(
                        std::time::UNIX_EPOCH
                            + std::time::Duration::from_millis(e.ts.max(0) as u64),
                    )
                });
                serde_json::json!({ "at": at, "stream": e.stream.as_str(), "line": e.text })
            })
            .collect())
    });
    let state = ApiState {
        missions,
        incidents,
        logs,
        sessions: Arc::default(),
        snapshot: snap_rx,
        events: events_tx.clone(),
        commands: cmd_tx,
        token: Arc::new(token.clone()),
        read_token: Arc::new(read_token.clone()),
        named_tokens: Arc::new(named_tokens),
        audit,
        history,
        protect_reads: beyond_loopback(&cfg.spec.settings.api),
        ingress: None,
        // Replaced by the driver's flag channel (flags.rs) before the server starts.
        flags: watch::channel(Arc::new(gantry_api::model::FlagsView::default())).1,
        flag_stats: Arc::default(),
        figures: figures.clone(),
    };
    let mut addr = cfg.spec.settings.api.clone();
    // A relative unix socket path is relative to the stack file, like every other path.
    if let Some(path) = addr.strip_prefix("unix:")
        && Path::new(path).is_relative()
    {
        addr = format!("unix:{}", cfg.base_dir.join(path).display());
    }
    Ok(ApiSide {
        state: Some((state, token)),
        token_file: state_dir.api_token(),
        read_token_file: state_dir.api_read_token(),
        prebound: prebind(&addr),
        addr,
        addr_file: state_dir.api_addr(),
        snapshot: snap_tx,
        events: events_tx,
        commands: cmd_rx,
        file: cfg.file.clone(),
        graph,
        shutting_down: false,
        figures,
    })
}

/// Whether the API address can be reached from other machines: anything but a loopback
/// IP, `localhost` or a Unix socket (mode 0600). Then reads that carry service output
/// need the token too.
fn beyond_loopback(addr: &str) -> bool {
    if addr.starts_with("unix:") {
        return false;
    }
    let host = match addr.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    !(host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()))
}

/// Reads the named-tokens file. It holds digests, not tokens, but whoever can write it can add
/// an operator: like an ssh key, it must be the user's own with mode 0600 (or stricter).
fn load_named_tokens(path: &Path) -> Result<Vec<gantry_api::model::NamedToken>, String> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        format!("settings.api_tokens: cannot read {shown}: {e}\n  hint: create it (one `NAME ROLE SHA256HEX` line per token, mode 0600) or remove the key")
    })?;
    if !meta.is_file() {
        return Err(format!(
            "settings.api_tokens: {shown} is not a regular file"
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(format!(
            "settings.api_tokens: {shown} has mode {mode:o} or another owner; it must be yours with mode 0600\n  hint: chmod 600 {shown}"
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("settings.api_tokens: cannot read {shown}: {e}"))?;
    gantry_api::auth::parse_tokens(&text)
        .map_err(|problems| format!("settings.api_tokens: {shown}:\n  {}", problems.join("\n  ")))
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
    use std::os::unix::fs::PermissionsExt as _;
    // Written beside it and renamed over it: a client that sees the file reads the whole
    // token, never an empty or half-written one (seen: an OFREP client read an empty token).
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    // 0600 and never through a symlink planted in the state dir (secure.rs).
    let mut f = gantry_state::secure::open_private(&tmp, false)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    // An existing file keeps its old mode on open; tighten it explicitly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

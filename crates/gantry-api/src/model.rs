//! The contract between the driver and the API: the snapshot the driver publishes, the events it broadcasts, the commands it accepts.

use serde::Serialize;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Where the boot stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum BootPhase {
    /// Services are still starting; nothing is decided.
    Booting,
    /// The boot is decided: outcome is "go", "degraded" or "no-go".
    Decided {
        outcome: String,
        duration_ms: u64,
        reason: Option<String>,
    },
}

/// One service as the API shows it. Published by the driver after every change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSnapshot {
    pub name: String,
    /// process | task | external
    pub kind: String,
    /// critical | high | medium | low
    pub priority: String,
    /// pending | starting | ready | completed | running | unready | degraded | failed | skipped | stopping | stopped
    pub state: String,
    /// Counts for /health/ready: a required service must be ready (or completed) for the stack to be ready.
    /// Required = every service except those with priority "low".
    pub required: bool,
    /// ready, running or completed: the service meets its readiness gate.
    pub ready: bool,
    pub pid: Option<u32>,
    /// Start attempts in the current boot (1 = first try).
    pub attempts: u32,
    pub restarts: u32,
    /// Milliseconds since the boot started when the service was first spawned / became ready.
    pub started_ms: Option<u64>,
    pub ready_ms: Option<u64>,
    /// Time from its first spawn to ready, in milliseconds.
    pub time_to_ready_ms: Option<u64>,
    /// Milliseconds the current incarnation has been up.
    pub uptime_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Latest sd_notify STATUS= text.
    pub status_text: Option<String>,
    /// closed | open | half-open, when a start breaker is configured.
    pub breaker: Option<String>,
    pub probe_failures_total: u64,
    /// Times the service turned `unready` while up (its readiness probe, which keeps
    /// running after the boot, failed `failure_threshold` times in a row).
    pub readiness_lost_total: u64,
    /// Probe durations since gantry started, as a histogram (fixed size per service).
    pub probes: ProbeHistogram,
    pub cpu_seconds: Option<f64>,
    pub rss_bytes: Option<u64>,
    /// Output lines dropped because the service wrote faster than gantry could log them.
    pub output_dropped_lines_total: u64,
    /// The latest probe run (polled or pushed) and what it answered.
    pub last_probe: Option<ProbeSample>,
    /// An operator's switch on the service: `disabled` (or `quarantined`), none when it runs normally.
    pub switch: Option<String>,
    /// Who switched it, since when and why: `disabled by cli:bob since 2026-12-06T01:00:00Z: maintenance`.
    pub switch_detail: Option<String>,
}

/// One probe run as `/health?verbose` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeSample {
    /// startup | readiness | liveness
    pub role: String,
    pub ok: bool,
    /// What the probe said (secrets masked).
    pub message: String,
    /// How long it took, in milliseconds (0 for pushed results: a log line, sd_notify).
    pub duration_ms: f64,
    /// When it answered.
    pub at: SystemTime,
}

/// A JSON document that never changes while an instance runs, kept as its compact text:
/// the plan's graph as a `serde_json::Value` tree was about 600 bytes a service of
/// resident memory (maps of owned keys), the text a fraction of that, and `/api/v1/graph`
/// sends the text as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// The document's compact text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JsonText {
    fn default() -> JsonText {
        JsonText(Arc::from("null"))
    }
}

impl From<serde_json::Value> for JsonText {
    fn from(v: serde_json::Value) -> JsonText {
        JsonText(Arc::from(v.to_string()))
    }
}

impl Serialize for JsonText {
    /// As the document itself (not as a string); parsed again, which only a whole
    /// snapshot's serialization (tests, debugging) does.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_str::<serde_json::Value>(&self.0) {
            Ok(v) => v.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

/// Everything the read endpoints need, published through a `watch` channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The stack file the instance runs.
    pub file: String,
    pub started_at: SystemTime,
    pub boot: BootPhase,
    /// True once a shutdown was requested.
    pub shutting_down: bool,
    pub services: Vec<ServiceSnapshot>,
    /// The plan as `gantry graph --format json` prints it (shared: it never changes
    /// while an instance runs, and every published snapshot carries it).
    pub graph: JsonText,
    /// Problems the last continuous validation (`settings.revalidate`) found; 0 before any.
    pub drift_problems: u64,
    /// `[cluster]`: this instance's place in the leader election (None without one).
    pub cluster: Option<ClusterView>,
    /// When this snapshot was built (None: the initial one). Readers of the figures ask
    /// for a new one when it is too old ([`crate::figures::FigureFeed`]).
    #[serde(skip)]
    pub published_at: Option<std::time::Instant>,
    /// When the services' CPU and memory figures were sampled (None: never).
    #[serde(skip)]
    pub usage_sampled: Option<std::time::Instant>,
    /// No usage sample is taken for a reader now (the boot is under way: a `/proc` scan of
    /// 1,000 services would delay it ~27 ms); readers take the figures as they are.
    #[serde(skip)]
    pub usage_deferred: bool,
}

/// The leader election as this instance sees it (`[cluster]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterView {
    /// The election's name (`[cluster] cluster`).
    pub cluster: String,
    /// This instance's name.
    pub name: String,
    /// `leader` while it holds the lease, `stepping-down` after it resigned or lost it.
    pub role: String,
    /// Who holds the lease.
    pub leader: String,
    /// The lease's term: a fencing token, one higher at every new holder.
    pub term: i64,
    /// The other instances waiting to take over (seen within two leases).
    pub standbys: Vec<String>,
}

/// A mutation requested through the API; the driver answers on the oneshot.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiCommand {
    Start(String),
    Stop(String),
    Restart(String),
    /// Re-resolve a secret from its source and restart its consumers (`gantry rotate`).
    Rotate(String),
    /// Load the stack file again and restart what changed (`gantry reload`, SIGHUP).
    Reload,
    Shutdown,
    /// Start a canary rollout of a replicated, routed service (`gantry rollout NAME`); the
    /// body as sent (set_env, command, steps, interval, thresholds, sticky), reason removed.
    Rollout {
        service: String,
        body: serde_json::Value,
    },
    /// `promote`, `pause`, `resume` or `abort` of the service's rollout.
    RolloutControl {
        service: String,
        action: String,
    },
    /// The service's rollout as JSON (a read: not audited).
    RolloutStatus(String),
    /// The service's numbered releases as JSON (a read: not audited).
    Releases(String),
    /// Roll the running service back to an earlier recorded release (`gantry rollback NAME`):
    /// release `to`, or the previous stable one.
    Rollback {
        service: String,
        to: Option<i64>,
    },
    /// Stop a service and keep it stopped (across restarts of gantry) until enabled (`gantry disable`).
    Disable(String),
    /// Clear a disable and start the service with its dependencies (`gantry enable`).
    Enable(String),
    /// Freeze the service's process tree for inspection, out of the ingress, restarts and
    /// probes (`gantry quarantine`).
    Quarantine(String),
    /// Thaw a quarantined service: probes resume, back in the ingress once ready (`gantry release`).
    Release(String),
    /// Overrides a flag's value (`gantry flag set`), optionally reverting after `expires`.
    SetFlag {
        key: String,
        value: serde_json::Value,
        expires: Option<std::time::Duration>,
    },
    /// Removes a flag's override (`gantry flag unset`).
    UnsetFlag {
        key: String,
    },
    /// Sets the kill switches so that the ingress runs in `mode` (`POST /api/v1/ingress/mode`,
    /// `gantry ingress mode`): the same overrides `gantry drain|brownout|emergency on` set.
    IngressMode {
        mode: String,
        shed_percent: Option<u8>,
    },
    /// The runbooks, the run under way and the last runs, as JSON (a read: not audited).
    Runbooks,
    /// Runs a runbook (`gantry runbook run NAME`); a dry run says what each step would do (a
    /// read: not audited).
    RunRunbook {
        name: String,
        dry_run: bool,
    },
    /// Opens an incident by hand (`gantry incident open`).
    IncidentOpen {
        severity: String,
        title: String,
    },
    /// Acknowledges an incident: someone is on it (`gantry incident ack`).
    IncidentAck(i64),
    /// Resolves an incident (`gantry incident resolve`).
    IncidentResolve(i64),
}

impl ApiCommand {
    /// The action and its target as the audit log names them (`service.restart`, `api`).
    pub fn audit(&self) -> (&'static str, Option<String>) {
        match self {
            ApiCommand::Start(n) => ("service.start", Some(n.clone())),
            ApiCommand::Stop(n) => ("service.stop", Some(n.clone())),
            ApiCommand::Restart(n) => ("service.restart", Some(n.clone())),
            ApiCommand::Rotate(n) => ("secret.rotate", Some(n.clone())),
            ApiCommand::Reload => ("stack.reload", None),
            ApiCommand::Shutdown => ("stack.shutdown", None),
            ApiCommand::Rollout { service, .. } => ("rollout.start", Some(service.clone())),
            ApiCommand::RolloutControl { service, action } => (
                match action.as_str() {
                    "promote" => "rollout.promote",
                    "pause" => "rollout.pause",
                    "resume" => "rollout.resume",
                    _ => "rollout.abort",
                },
                Some(service.clone()),
            ),
            ApiCommand::RolloutStatus(n) => ("rollout.status", Some(n.clone())),
            ApiCommand::Releases(n) => ("releases.list", Some(n.clone())),
            ApiCommand::Rollback { service, .. } => ("rollback", Some(service.clone())),
            ApiCommand::Disable(n) => ("service.disable", Some(n.clone())),
            ApiCommand::Enable(n) => ("service.enable", Some(n.clone())),
            ApiCommand::Quarantine(n) => ("service.quarantine", Some(n.clone())),
            ApiCommand::Release(n) => ("service.release", Some(n.clone())),
            ApiCommand::SetFlag { key, .. } => ("flag.set", Some(key.clone())),
            ApiCommand::UnsetFlag { key } => ("flag.unset", Some(key.clone())),
            ApiCommand::IngressMode { mode, .. } => ("ingress.mode", Some(mode.clone())),
            ApiCommand::Runbooks => ("runbooks.list", None),
            ApiCommand::RunRunbook { name, .. } => ("runbook.run", Some(name.clone())),
            ApiCommand::IncidentOpen { title, .. } => ("incident.open", Some(title.clone())),
            ApiCommand::IncidentAck(id) => ("incident.ack", Some(id.to_string())),
            ApiCommand::IncidentResolve(id) => ("incident.resolve", Some(id.to_string())),
        }
    }

    /// Whether the command only reads (then it is not recorded in the audit log).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            ApiCommand::RolloutStatus(_)
                | ApiCommand::Releases(_)
                | ApiCommand::Runbooks
                | ApiCommand::RunRunbook { dry_run: true, .. }
        )
    }
}

/// What a caller may do: read (status, OFREP, events) or operate (every mutation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Read,
    Operator,
}

/// Who asked: the token's name (`operator`, `read`, `token:alice`), or for the operator
/// token the local user the CLI names (`cli:bob`), and what that token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub actor: String,
    pub role: Role,
}

impl Caller {
    /// A caller of a read that needs no token.
    pub fn anonymous() -> Caller {
        Caller {
            actor: "anonymous".to_string(),
            role: Role::Read,
        }
    }
}

/// A command, who asked for it and why, and the channel for its answer: Ok(message) or
/// Err(message, e.g. "unknown service `x`").
#[derive(Debug)]
pub struct CommandRequest {
    pub command: ApiCommand,
    pub caller: Caller,
    pub reason: Option<String>,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// A named token from the tokens file: who it is, what it may do, and the SHA-256 digest
/// of the token (the token itself is never kept).
#[derive(Clone, PartialEq, Eq)]
pub struct NamedToken {
    pub name: String,
    pub role: Role,
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for NamedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Reads the audit log, newest first: rows at or after `since` (unix milliseconds), at most `limit`.
pub type Audit =
    Arc<dyn Fn(Option<i64>, usize) -> Result<Vec<serde_json::Value>, String> + Send + Sync>;

/// One recorded boot, for `/api/v1/boots`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootRecord {
    pub id: i64,
    pub started_at: String,
    pub outcome: Option<String>,
    pub duration_ms: Option<i64>,
    pub reason: Option<String>,
}

/// Reads the boot history (the driver passes one backed by its SQLite store).
/// An error says the store is damaged (never an empty list in its place).
pub type History = Arc<dyn Fn() -> Result<Vec<BootRecord>, String> + Send + Sync>;

/// Reads the open missions (NO-GO, failures, drift), newest first, as JSON objects.
pub type Missions = Arc<dyn Fn() -> Result<Vec<serde_json::Value>, String> + Send + Sync>;

/// Reads the incidents from the store: `None` lists them all (newest first, without timelines)
/// as `{"incidents": [...]}`; `Some(id)` is that incident with its timeline and post-incident
/// draft, or `Ok(None)` when there is no such incident.
pub type Incidents =
    Arc<dyn Fn(Option<i64>) -> Result<Option<serde_json::Value>, String> + Send + Sync>;

/// Reads the last lines of a service's log file (what `gantry logs` reads), oldest first, as
/// `{"at", "stream", "line"}` objects: (service, how many).
pub type Logs = Arc<dyn Fn(&str, usize) -> Result<Vec<serde_json::Value>, String> + Send + Sync>;

/// The API's shared state.
#[derive(Clone)]
pub struct ApiState {
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// The same JSON objects `gantry up --json` prints (transition, output, boot, finished).
    pub events: broadcast::Sender<serde_json::Value>,
    pub commands: mpsc::Sender<CommandRequest>,
    /// The operator token: every mutating call must present it (or a named operator token).
    pub token: Arc<String>,
    /// The read-only token (OFREP, status readers): it reads what `protect_reads` guards.
    pub read_token: Arc<String>,
    /// Named tokens from the tokens file, so the audit log can say who.
    pub named_tokens: Arc<Vec<NamedToken>>,
    /// The audit log.
    pub audit: Audit,
    pub history: History,
    pub missions: Missions,
    pub incidents: Incidents,
    pub logs: Logs,
    /// The web page's sessions (`POST /api/v1/session`).
    pub sessions: Arc<crate::session::Sessions>,
    /// Reads that expose service output (missions, the event stream) need the token
    /// too: set when the API is reachable beyond loopback.
    pub protect_reads: bool,
    /// The ingress, when the stack has one.
    pub ingress: Option<Arc<dyn crate::IngressControl>>,
    /// The current flag set (overrides applied) and the overrides' who/why/until, published by
    /// the driver; OFREP evaluates on the API's own tasks.
    pub flags: watch::Receiver<Arc<FlagsView>>,
    /// Evaluation and unknown-key counters (bounded label sets), for `/metrics` and `gantry flags`.
    pub flag_stats: Arc<crate::ofrep::FlagStats>,
    /// Readers of the services' figures (CPU, memory, probe counts) ask the driver for a
    /// fresh snapshot through it (inactive by default: what the snapshot holds).
    pub figures: crate::figures::FigureFeed,
}

/// What the API serves about flags: the set with overrides applied, and the overrides themselves.
#[derive(Debug, Clone, Default)]
pub struct FlagsView {
    /// The effective set: definitions (gantry.toml + flags file + built-ins) with overrides.
    pub set: gantry_flags::FlagSet,
    /// The overrides in force, with who set them, why and until when.
    pub overrides: Vec<FlagOverride>,
    /// Where the definitions came from and whether the last file read was valid.
    pub source: Option<String>,
}

/// A runtime override as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagOverride {
    pub key: String,
    pub value: serde_json::Value,
    pub reason: Option<String>,
    pub actor: String,
    /// RFC 3339.
    pub set_at: String,
    /// RFC 3339, when it reverts by itself.
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

/// Probe durations bound the histogram's buckets: sub-millisecond TCP connects to
/// multi-second exec probes.
pub const PROBE_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A service's probe durations since gantry started, as `/metrics` shows them: counts per
/// bucket of [`PROBE_BUCKETS`], their number and sum. Its size does not grow with the
/// probes run (the snapshot of 1,000 services carries no lists of samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProbeHistogram {
    /// Observations per bucket (not cumulative); the last slot counts those above 10 s.
    pub buckets: [u64; PROBE_BUCKETS.len() + 1],
    /// Finite observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
    /// The latest observation, as it came (a non-finite one is not counted).
    pub last: Option<f64>,
}

impl ProbeHistogram {
    /// Counts one probe run that took `seconds`. A non-finite value (only a driver bug can
    /// make one) is remembered as the latest but kept out of the counts, where it would
    /// poison the sum forever.
    pub fn observe(&mut self, seconds: f64) {
        self.last = Some(seconds);
        if !seconds.is_finite() {
            return;
        }
        let i = PROBE_BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(PROBE_BUCKETS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += seconds;
    }

    /// The histogram of `samples`, in order.
    pub fn of(samples: &[f64]) -> ProbeHistogram {
        let mut h = ProbeHistogram::default();
        for s in samples {
            h.observe(*s);
        }
        h
    }
}

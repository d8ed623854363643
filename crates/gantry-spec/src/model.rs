//! The typed, decoded form of gantry.toml. Spans are kept where later checks point back.
//!
//! The keys users may write, their types and docs live in `keys.rs`, which also
//! produces the JSON Schema and `docs/config.md`.

use crate::source::Span;
use std::time::Duration;

pub use crate::cpu::MilliCpus;

mod alerts;
mod flags;
mod ingress;
mod rollout;
mod runbooks;
pub use alerts::{
    ALERT_RULES, ALERT_SIGNALS, AlertRuleDef, Alerts, SLO_WINDOW, SLO_WINDOW_MAX, SLO_WINDOW_MIN,
    Slo,
};
pub use flags::{FlagDef, FlagsSpec};
pub use ingress::{Ingress, Instance, Listener, ListenerTls, PortRange, Replicas, Route};
pub use rollout::{RolloutConf, RolloutStrategy};
pub use runbooks::{Runbook, RunbookAction, RunbookStep};

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Sp<T> {
        Sp { value, span }
    }
}

/// A duration written as `250ms`, `1s`, `5m`, `1h` or `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

/// The whole file.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub settings: Settings,
    /// Variables given to every service.
    pub env: Vec<EnvVar>,
    /// Files of KEY=VALUE lines given to every service (relative to the file).
    pub env_file: Vec<Sp<String>>,
    pub secrets: Vec<Secret>,
    /// Keys every service inherits unless it sets them itself.
    pub defaults: ServiceDefaults,
    pub services: Vec<Service>,
    pub layers: Option<Layers>,
    pub profiles: Vec<Profile>,
    /// `[ingress]`, when the file has one.
    pub ingress: Option<Ingress>,
    /// `[alerts]`, when the file has one.
    pub alerts: Option<Alerts>,
    /// `[slo.NAME]` tables.
    pub slos: Vec<Slo>,
    /// `[flags.NAME]` tables and `[settings] flags_file`.
    pub flags: FlagsSpec,
    /// `[runbooks.NAME]` tables.
    pub runbooks: Vec<Runbook>,
    /// `[cluster]`: hot standby through a PostgreSQL lease, when the file has one.
    pub cluster: Option<Cluster>,
}

/// `[cluster]`: the election of one leader among the instances running this file.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The postgres:// URL of the lease's database (holds a password: never printed).
    pub store: Sp<String>,
    /// This instance's name; `None`: hostname and state dir.
    pub name: Option<String>,
    /// The election's name (default `gantry`).
    pub cluster: String,
    /// The lease's time to live (default 5 s).
    pub lease: Dur,
}

/// `[cluster] lease` when unset.
pub const CLUSTER_LEASE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the embedded state store, logs and the API token live (relative to the file).
    pub state_dir: String,
    /// The health/control API address: `host:port` or `unix:PATH`.
    pub api: String,
    /// The named-tokens file (`NAME ROLE SHA256HEX` lines), as written (relative to the file).
    pub api_tokens: Option<String>,
    /// How long a whole shutdown may take before everything left is killed.
    pub shutdown_timeout: Dur,
    /// When false, any failed service is NO-GO, not only critical ones.
    pub allow_degraded: bool,
    /// Re-run the pre-flight checks this often while the stack is up.
    pub revalidate: Option<Dur>,
    /// How the per-service log files are rotated (a service may set its own).
    pub logs: LogRotation,
    /// How much history the state store keeps.
    pub retention: Retention,
}

/// `[settings] retention`: the state store keeps the newest `boots` boots and resolved
/// missions for `missions` after they were resolved; open missions are always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub boots: u64,
    pub missions: Dur,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            boots: crate::keys::RETENTION_BOOTS,
            missions: Dur(crate::keys::RETENTION_MISSIONS),
        }
    }
}

/// `[settings] logs`: a service log is rotated at `max_size` bytes and `keep` rotated
/// files are kept, so a service's logs take at most about `max_size × (keep + 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    pub max_size: u64,
    pub keep: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation {
            max_size: crate::keys::LOG_MAX_SIZE,
            keep: crate::keys::LOG_KEEP,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            state_dir: ".gantry".into(),
            api: "127.0.0.1:7070".into(),
            api_tokens: None,
            shutdown_timeout: Dur(Duration::from_secs(30)),
            allow_degraded: true,
            revalidate: None,
            logs: LogRotation::default(),
            retention: Retention::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EnvVar {
    pub name: Sp<String>,
    pub value: Sp<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    FromEnv(String),
    FromFile(String),
    FromCommand(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Secret {
    pub name: Sp<String>,
    /// Exactly one of from_env, from_file, from_command.
    pub source: Option<Sp<SecretSource>>,
    /// Missing or empty → NO-GO before any service starts (fail closed).
    pub required: bool,
    /// Only these services receive it; empty means none.
    pub services: Vec<Sp<String>>,
    /// The variable name services see (default: the secret's name).
    pub env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A long-running process (the default).
    #[default]
    Process,
    /// A one-shot command; success = exit 0.
    Task,
    /// Not started by gantry, only probed.
    External,
    /// Applies the SQL migrations in `dir` to `database` (one-shot, like a task).
    Migrate,
}

impl Kind {
    /// Runs once; "completed" (exit 0) is its success.
    pub fn is_oneshot(self) -> bool {
        matches!(self, Kind::Task | Kind::Migrate)
    }
}

/// What to do when the live schema differs from the recorded schema hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDrift {
    /// NO-GO.
    #[default]
    Fail,
    /// A mission and a warning; the boot goes on.
    Warn,
}

/// The settings of a `kind = "migrate"` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateSpec {
    /// postgres://…, mysql://… or sqlite://path (a path relative to the file).
    pub database: Sp<String>,
    /// `database` as written, before `${VAR}` interpolation: `gantry up` and the manual
    /// migrate commands interpolate it again with the secrets delivered to the service
    /// (`database = "${DATABASE_URL}"` with a `[secrets.DATABASE_URL]` listing it).
    pub database_template: String,
    /// The directory of `NNNN_name.up.sql` / `NNNN_name.down.sql` files, relative to the file.
    pub dir: String,
    pub create_database: bool,
    pub on_drift: OnDrift,
    /// How long to wait for another migrator's lock.
    pub lock_timeout: Dur,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// A failure is NO-GO; required for readiness.
    Critical,
    /// The default. A failure degrades the stack; required for readiness (`/health/ready`
    /// answers 503 while it is not ready).
    #[default]
    High,
    /// Important but optional: a failure degrades the stack; readiness does not wait for it.
    Medium,
    /// Nice to have: as `Medium`.
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Started,
    #[default]
    Ready,
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    #[default]
    Never,
    OnFailure,
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: Sp<String>,
    pub condition: Condition,
    /// false = a soft dependency: orders the start, never blocks it.
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Every attempt counts, the first included: 1 means no retry.
    pub attempts: u32,
    pub backoff: Dur,
    pub max_backoff: Dur,
    /// Full jitter: each delay is uniform in [0, backoff·2ⁿ].
    pub jitter: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 1,
            backoff: Dur(Duration::from_millis(500)),
            max_backoff: Dur(Duration::from_secs(30)),
            jitter: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartLimit {
    /// More than this many restarts within `interval` marks the service failed.
    pub burst: u32,
    pub interval: Dur,
}

impl Default for StartLimit {
    fn default() -> Self {
        StartLimit {
            burst: 5,
            interval: Dur(Duration::from_secs(10)),
        }
    }
}

/// The start breaker: after `failures` consecutive failed start attempts, no
/// attempt for `cooldown`, then one half-open trial attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartBreaker {
    pub failures: u32,
    /// Greater than zero.
    pub cooldown: Dur,
}

impl Default for StartBreaker {
    fn default() -> Self {
        StartBreaker {
            failures: 3,
            cooldown: Dur(Duration::from_secs(30)),
        }
    }
}

/// What a probe checks. Exactly one kind key per probe table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// Run a command; exit 0 passes.
    Exec(Vec<String>),
    /// GET a URL; 2xx/3xx passes unless `expect_status` is set.
    Http {
        url: String,
        expect_status: Option<u16>,
        expect_body: Option<String>,
        /// How an `https://` URL's server is verified (and the client certificate).
        tls: TlsOptions,
    },
    /// Connect to `host:port`.
    Tcp(String),
    /// A regular expression matched against the service's output lines, compiled once
    /// when the file is decoded.
    Log(LogPattern),
    /// sd_notify: the service sends READY=1 to $NOTIFY_SOCKET.
    Notify,
    Postgres(StoreProbe),
    Mysql(StoreProbe),
    Redis(StoreProbe),
    Amqp(StoreProbe),
    Nats(StoreProbe),
    Sqlite(StoreProbe),
}

impl ProbeKind {
    pub fn name(&self) -> &'static str {
        match self {
            ProbeKind::Exec(_) => "exec",
            ProbeKind::Http { .. } => "http",
            ProbeKind::Tcp(_) => "tcp",
            ProbeKind::Log(_) => "log",
            ProbeKind::Notify => "notify",
            ProbeKind::Postgres(_) => "postgres",
            ProbeKind::Mysql(_) => "mysql",
            ProbeKind::Redis(_) => "redis",
            ProbeKind::Amqp(_) => "amqp",
            ProbeKind::Nats(_) => "nats",
            ProbeKind::Sqlite(_) => "sqlite",
        }
    }
}

/// A compiled `log` probe pattern (Rust regex syntax, unanchored). Compares, hashes and
/// prints as its source text; cloning shares the compiled program.
#[derive(Clone)]
pub struct LogPattern(regex::Regex);

impl LogPattern {
    /// Compiles `pattern`; the decoder reports the error with the key's position.
    pub fn new(pattern: &str) -> Result<LogPattern, regex::Error> {
        regex::Regex::new(pattern).map(LogPattern)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The compiled expression.
    pub fn regex(&self) -> &regex::Regex {
        &self.0
    }

    /// Whether `line` contains a match.
    pub fn is_match(&self, line: &str) -> bool {
        self.0.is_match(line)
    }

    /// The compiled expression, for a consumer that keeps only that.
    pub fn into_regex(self) -> regex::Regex {
        self.0
    }
}

impl PartialEq for LogPattern {
    fn eq(&self, other: &LogPattern) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for LogPattern {}

impl std::fmt::Debug for LogPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LogPattern").field(&self.as_str()).finish()
    }
}

/// A store probe: a URL (or a path for sqlite) and options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreProbe {
    pub url: String,
    /// Add a write/read/delete round trip.
    pub rw: bool,
    /// AMQP queues that must exist.
    pub queues: Vec<String>,
    /// AMQP: each queue must have a dead-letter exchange.
    pub require_dlq: bool,
    /// NATS JetStream streams that must exist.
    pub streams: Vec<String>,
    /// How a TLS connection's server is verified (and the client certificate); whether the
    /// probe uses TLS at all is the URL's (`sslmode`, `ssl-mode`, `rediss://`, `amqps://`,
    /// `tls://`).
    pub tls: TlsOptions,
}

/// The TLS keys of a probe table. Paths are as written (relative to the file); the probe
/// resolves them when it runs, so a rotated certificate is picked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TlsOptions {
    /// PEM file of the CA certificates to trust instead of the system roots.
    pub ca_file: Option<String>,
    /// PEM client certificate chain (with `key_file`).
    pub cert_file: Option<String>,
    /// PEM private key of the client certificate (with `cert_file`).
    pub key_file: Option<String>,
    /// No verification of the server's certificate at all (`gantry check` warns).
    pub insecure_skip_verify: bool,
}

impl TlsOptions {
    /// True when any key was written.
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.insecure_skip_verify
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub kind: ProbeKind,
    pub span: Span,
    pub initial_delay: Dur,
    pub period: Dur,
    pub timeout: Dur,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// `notify` liveness only: a keep-alive (`WATCHDOG=1`) is due at least this often.
    pub watchdog: Option<Dur>,
}

/// `memory_max` and `cpu_max`: what the service's processes may use together. How they
/// are enforced (cgroup v2, cgroup v1, or an rlimit) is the runtime's choice, said in the
/// pre-flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Bytes of memory.
    pub memory_max: Option<u64>,
    /// A share of the CPUs.
    pub cpu_max: Option<MilliCpus>,
}

impl Limits {
    /// Neither limit is set.
    pub fn is_empty(&self) -> bool {
        self.memory_max.is_none() && self.cpu_max.is_none()
    }

    /// Each limit the service sets itself, else the one from `[defaults]`.
    pub fn or(self, defaults: Limits) -> Limits {
        Limits {
            memory_max: self.memory_max.or(defaults.memory_max),
            cpu_max: self.cpu_max.or(defaults.cpu_max),
        }
    }
}

impl std::fmt::Display for Limits {
    /// `memory_max 64MiB, cpu_max 0.2 CPU`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = self.memory_max {
            parts.push(format!("memory_max {}", crate::size::format_size(m)));
        }
        if let Some(c) = self.cpu_max {
            parts.push(format!("cpu_max {c}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Keys `[defaults]` may give every service.
#[derive(Debug, Clone, Default)]
pub struct ServiceDefaults {
    pub priority: Option<Priority>,
    pub restart: Option<Restart>,
    pub retry: Option<Retry>,
    pub start_timeout: Option<Dur>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<Dur>,
    pub healthy_after: Option<Dur>,
    pub start_grace: Option<Dur>,
    pub working_dir: Option<String>,
    pub start_limit: Option<StartLimit>,
    pub start_breaker: Option<StartBreaker>,
    pub limits: Limits,
    pub env: Vec<EnvVar>,
    /// Log rotation, resolved over `[settings] logs` key by key.
    pub logs: Option<LogRotation>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: Sp<String>,
    /// `[services.NAME.rollout]`: how `gantry rollout NAME` rolls a new release out.
    pub rollout: Option<Box<RolloutConf>>,
    pub kind: Kind,
    /// argv after shell-like splitting; empty for external services.
    pub command: Option<Sp<Vec<String>>>,
    pub working_dir: Option<String>,
    pub env: Vec<EnvVar>,
    pub env_file: Vec<Sp<String>>,
    pub depends_on: Vec<Dependency>,
    pub priority: Priority,
    pub readiness: Option<Box<Probe>>,
    pub liveness: Option<Box<Probe>>,
    pub startup: Option<Box<Probe>>,
    pub restart: Restart,
    pub retry: Retry,
    pub start_limit: StartLimit,
    /// None (the default): no breaker, attempts follow the retry backoff only.
    pub start_breaker: Option<StartBreaker>,
    pub start_timeout: Option<Dur>,
    pub stop_signal: Sp<String>,
    pub stop_timeout: Dur,
    /// Up this long, a crash restarts at once; quicker crashes back off.
    pub healthy_after: Dur,
    /// A process without probes counts as started once alive this long after its spawn.
    pub start_grace: Dur,
    pub cleanup: Option<Vec<String>>,
    pub layer: Option<Sp<String>>,
    /// A dry-run command for the pre-flight (e.g. `python3 -c 'import app'`).
    pub preflight: Option<Vec<String>>,
    /// TCP ports the service listens on (checked free by the pre-flight).
    pub ports: Vec<u16>,
    /// `data_dir`: where the service keeps data that must outlive its process (a database's
    /// directory). `gantry up` does not touch it; `gantry export kubernetes` makes the service
    /// a StatefulSet with a volume mounted there.
    pub data_dir: Option<Sp<String>>,
    /// `data_size`: the size of that volume in bytes (with `data_dir`; default `DATA_SIZE`).
    pub data_size: Option<u64>,
    /// A hint for the critical path before any boot was recorded.
    pub expected_start: Option<Dur>,
    /// Present for `kind = "migrate"`.
    pub migrate: Option<Box<MigrateSpec>>,
    /// Run once when the service fails; then its check runs again.
    pub remediate: Option<Vec<String>>,
    /// How its log file is rotated: its own keys, then `[defaults]`, then `[settings]`.
    pub logs: LogRotation,
    /// `memory_max` and `cpu_max` (its own, else `[defaults]`).
    pub limits: Limits,
    /// `flags_restart`: the flags whose change restarts the service (`*`: any).
    pub flags_restart: Vec<Sp<String>>,
    /// `host:port` where the ingress sends this service's traffic; with replicas it may
    /// hold `${PORT}`, which the plan replaces per instance.
    pub upstream: Option<Sp<String>>,
    /// `replicas = N`: the plan runs N instances. With it, `${PORT}` and `${REPLICA}` are
    /// kept as written in the service's strings and replaced per instance by the plan.
    pub replicas: Option<Box<Replicas>>,
    /// Set by the plan on each instance of a replicated service (never by the decoder):
    /// which service it is an instance of, its number and its port.
    pub instance: Option<Box<Instance>>,
}

impl Service {
    /// The name in the file: the service's own, or for an instance (`api.2`) the name
    /// of the service it belongs to (`api`). Secrets' `services`, profiles and routes
    /// name this.
    pub fn base_name(&self) -> &str {
        self.instance
            .as_ref()
            .map_or(self.name.value.as_str(), |i| i.service.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Layers {
    pub order: Vec<Sp<String>>,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: Sp<String>,
    /// Services selected by name (their dependencies come along).
    pub services: Vec<Sp<String>>,
    /// Services selected by priority.
    pub priorities: Vec<Priority>,
}

//! The registry of every key gantry.toml accepts: type, default and documentation.
//!
//! One table drives three things so they cannot drift apart: the decoder's
//! unknown-key warnings, the JSON Schema (`docs/gantry.schema.json`) and the key
//! reference (`docs/config.md`). A test regenerates both documents and fails when
//! the committed copies differ.

use std::time::Duration;

/// `start_timeout` when a service does not set one: a server should be ready within a minute.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// `start_timeout` for `kind = "task"` and `kind = "migrate"`: a one-shot (a migration) may
/// legitimately run for minutes.
pub const START_TIMEOUT_ONESHOT: Duration = Duration::from_secs(600);
/// The default text of `start_timeout` in the docs; a test checks it names the two constants.
/// `healthy_after` when a service does not set one: up this long, a crash restarts at once
/// (s6 and runit wait about a second too).
pub const HEALTHY_AFTER: Duration = Duration::from_secs(1);
/// `start_grace` when a service does not set one: a process without a startup or readiness
/// probe that is still alive this long after its spawn counts as started.
pub const START_GRACE: Duration = Duration::from_millis(250);
/// The default text of `start_grace`; a test checks it names the constant.
const START_GRACE_DEFAULT: &str = "\"250ms\"";
/// The default text of `healthy_after`; a test checks it names the constant.
const HEALTHY_AFTER_DEFAULT: &str = "\"1s\"";
const START_TIMEOUT_DEFAULT: &str = "\"60s\"; \"10m\" for kind = \"task\" and \"migrate\"";

/// `[settings] logs.max_size` when unset: a service log is rotated at 10 MiB.
pub const LOG_MAX_SIZE: u64 = 10 << 20;
/// The smallest `logs.max_size`: below a page, a file would rotate at almost every line.
pub const LOG_MIN_SIZE: u64 = 4 << 10;
/// `[settings] logs.keep` when unset: three rotated files per service.
pub const LOG_KEEP: u32 = 3;
/// `[settings] retention.boots` when unset: the newest 100 boots are kept.
pub const RETENTION_BOOTS: u64 = 100;
/// `[settings] retention.missions` when unset: resolved missions are kept 30 days.
pub const RETENTION_MISSIONS: Duration = Duration::from_secs(30 * 86_400);

/// `data_size` when a service with `data_dir` does not set one.
pub const DATA_SIZE: u64 = 1 << 30;
/// The default text of `data_size`; a test checks it names the constant.
pub const DATA_SIZE_DEFAULT: &str = "\"1GiB\"";
/// The smallest `data_size`: a volume below it is almost certainly a unit mistake.
pub const DATA_SIZE_MIN: u64 = 1 << 20;

/// The smallest `memory_max`: below it a service is killed before it has started, and
/// `memory_max = 256` (bytes, where MiB was meant) is caught.
pub const MEMORY_MIN: u64 = 1 << 20;

/// The shape of a value.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Duration,
    /// Bytes: an integer, or a string with a binary unit (`"512KiB"`, `"10MiB"`); at least `min`.
    Size {
        min: u64,
    },
    /// A share of the CPUs: a number (`0.5`, `2`) or a percentage string (`"50%"`).
    Cpu,
    Enum(&'static [&'static str]),
    /// A string split like a shell, or an array of strings.
    Command,
    /// One string or an array of strings.
    StrOrList,
    StrList,
    IntList {
        min: i64,
        max: i64,
    },
    Table(&'static [Key]),
    /// An array of tables of these keys (`[[ingress.routes]]`).
    TableList(&'static [Key]),
    /// A table whose keys the user chooses, each value of this shape.
    MapOf(&'static Ty, &'static str),
    DependsOn,
    Probe,
    /// Any TOML value (a flag variant's value: bool, string, number or table).
    Any,
}

#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub ty: Ty,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

const fn k(name: &'static str, ty: Ty, default: Option<&'static str>, doc: &'static str) -> Key {
    Key {
        name,
        ty,
        default,
        doc,
    }
}

pub const PRIORITIES: &[&str] = &["critical", "high", "medium", "low"];
pub const KINDS: &[&str] = &["process", "task", "external", "migrate"];
pub const RESTARTS: &[&str] = &["never", "on-failure", "always"];
pub const CONDITIONS: &[&str] = &["started", "ready", "completed"];
pub const SIGNALS: &[&str] = &[
    "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGKILL", "SIGUSR1", "SIGUSR2",
];
pub const PROBE_KINDS: &[&str] = &[
    "exec", "http", "tcp", "log", "notify", "postgres", "mysql", "redis", "amqp", "nats", "sqlite",
];

pub static LOGS: &[Key] = &[
    k(
        "max_size",
        Ty::Size { min: LOG_MIN_SIZE },
        Some("\"10MiB\""),
        "A service's log file is rotated once it reaches this size: `NAME.log` becomes `NAME.log.1`, `.1` becomes `.2`, and so on.",
    ),
    k(
        "keep",
        Ty::Int { min: 0, max: 1000 },
        Some("3"),
        "Rotated files kept per service; the oldest beyond this is deleted. 0 keeps none: the log starts over at `max_size`.",
    ),
];

pub static RETENTION: &[Key] = &[
    k(
        "boots",
        Ty::Int {
            min: 1,
            max: 1_000_000,
        },
        Some("100"),
        "The newest boots kept in the state store, each with its services' records (`gantry analyze`, the critical path's weights); older ones are deleted.",
    ),
    k(
        "missions",
        Ty::Duration,
        Some("\"30d\""),
        "Resolved missions are deleted this long after they were resolved. Open missions are never deleted.",
    ),
];

pub static SETTINGS: &[Key] = &[
    k(
        "state_dir",
        Ty::Str,
        Some("\".gantry\""),
        "Where the embedded state store (SQLite), service logs and the API token live; relative to the file.",
    ),
    k(
        "api",
        Ty::Str,
        Some("\"127.0.0.1:7070\""),
        "Address of the health and control API: `host:port` or `unix:PATH`.",
    ),
    k(
        "api_tokens",
        Ty::Str,
        None,
        "A file of named API tokens, so the audit log says who: one per line, `NAME ROLE SHA256HEX` (role `read` or `operator`; the token's SHA-256, e.g. `printf %s \"$TOKEN\" | sha256sum`). It must be mode 0600. Relative to the file.",
    ),
    k(
        "flags_file",
        Ty::Str,
        None,
        "A feature flag file in flagd's JSON format (`flags`, `variants`, `defaultVariant`, JSONLogic `targeting` with `fractional`, `$evaluators`), relative to this file. Its flags win over `[flags.NAME]` tables of the same name; `gantry check` validates it. Reloaded while gantry runs: its directory is watched, so an edit in place, a temp file renamed over it and a Kubernetes ConfigMap `..data` symlink swap are all picked up (`flags: reloaded` line, `flags_reloaded` event, overrides kept). A file that does not parse or validate, or is gone, keeps the last valid set served (never the defaults) and opens a `flags: file` mission until a valid file is back.",
    ),
    k(
        "shutdown_timeout",
        Ty::Duration,
        Some("\"30s\""),
        "Upper bound for a whole shutdown; whatever is still running after it is killed.",
    ),
    k(
        "allow_degraded",
        Ty::Bool,
        Some("true"),
        "When false, any failed service is NO-GO, not only critical ones.",
    ),
    k(
        "revalidate",
        Ty::Duration,
        None,
        "Re-run the pre-flight checks this often while the stack is up.",
    ),
    k(
        "logs",
        Ty::Table(LOGS),
        None,
        "Rotation of the per-service log files in `state_dir/logs`: `{ max_size = \"10MiB\", keep = 3 }`. A service (or `[defaults]`) may set its own.",
    ),
    k(
        "retention",
        Ty::Table(RETENTION),
        None,
        "How much history the state store keeps: `{ boots = 100, missions = \"30d\" }`; pruned after each boot and then hourly.",
    ),
];

pub static SECRET: &[Key] = &[
    k(
        "from_env",
        Ty::Str,
        None,
        "Read the value from this environment variable.",
    ),
    k(
        "from_file",
        Ty::Str,
        None,
        "Read the value from this regular file, at most 1 MiB (trailing newline removed).",
    ),
    k(
        "from_command",
        Ty::Command,
        None,
        "Run this command and use its standard output (at most 64 KiB, within 10 s).",
    ),
    k(
        "required",
        Ty::Bool,
        Some("true"),
        "Missing or empty means NO-GO before any service starts (fail closed).",
    ),
    k(
        "services",
        Ty::StrList,
        Some("[]"),
        "Only these services receive the secret, as an environment variable.",
    ),
    k(
        "env",
        Ty::Str,
        None,
        "The variable name the services see; defaults to the secret's name.",
    ),
];

pub static RETRY: &[Key] = &[
    k(
        "attempts",
        Ty::Int { min: 1, max: 1000 },
        Some("1"),
        "Every start attempt counts, the first included: 1 means no retry.",
    ),
    k(
        "backoff",
        Ty::Duration,
        Some("\"500ms\""),
        "Delay before the second attempt; doubles with each further failure.",
    ),
    k(
        "max_backoff",
        Ty::Duration,
        Some("\"30s\""),
        "Cap on the delay between attempts.",
    ),
    k(
        "jitter",
        Ty::Bool,
        Some("true"),
        "Full jitter: each delay is drawn uniformly from zero to the exponential delay.",
    ),
];

pub static START_LIMIT: &[Key] = &[
    k(
        "burst",
        Ty::Int { min: 1, max: 10000 },
        Some("5"),
        "More restarts than this within `interval` marks the service failed.",
    ),
    k(
        "interval",
        Ty::Duration,
        Some("\"10s\""),
        "The window for `burst`.",
    ),
];

pub static START_BREAKER: &[Key] = &[
    k(
        "failures",
        Ty::Int { min: 1, max: 1000 },
        Some("3"),
        "Consecutive failed start attempts that open the breaker.",
    ),
    k(
        "cooldown",
        Ty::Duration,
        Some("\"30s\""),
        "How long an open breaker holds the next attempt back; then one trial attempt closes it (success) or opens it again (failure). Must be greater than zero.",
    ),
];

pub static PROBE: &[Key] = &[
    k(
        "exec",
        Ty::Command,
        None,
        "Run a command; exit code 0 passes.",
    ),
    k(
        "http",
        Ty::Str,
        None,
        "GET this URL; 2xx and 3xx pass unless `expect_status` is set.",
    ),
    k("tcp", Ty::Str, None, "Connect to `host:port`."),
    k(
        "log",
        Ty::Str,
        None,
        "A regular expression matched against each line the service prints.",
    ),
    k(
        "notify",
        Ty::Bool,
        None,
        "sd_notify: gantry sets NOTIFY_SOCKET and waits for READY=1.",
    ),
    k(
        "postgres",
        Ty::Str,
        None,
        "Connect to this PostgreSQL URL and run `SELECT 1`.",
    ),
    k(
        "mysql",
        Ty::Str,
        None,
        "Connect to this MySQL/MariaDB URL and run `SELECT 1`.",
    ),
    k(
        "redis",
        Ty::Str,
        None,
        "Connect to this Redis URL and PING.",
    ),
    k(
        "amqp",
        Ty::Str,
        None,
        "Connect to this AMQP (RabbitMQ) URL.",
    ),
    k("nats", Ty::Str, None, "Connect to this NATS URL."),
    k(
        "sqlite",
        Ty::Str,
        None,
        "Open this SQLite file and run `PRAGMA quick_check`.",
    ),
    k(
        "watchdog",
        Ty::Duration,
        None,
        "`liveness = { notify = true }` only: a keep-alive (sd_notify `WATCHDOG=1`) is due at least this often, and each interval without one is a liveness failure; `WATCHDOG=trigger` restarts at once. The service reads the interval from `WATCHDOG_USEC` (and its pid from `WATCHDOG_PID`), like systemd's `WatchdogSec`. Without it a notify liveness probe can never fail.",
    ),
    k(
        "initial_delay",
        Ty::Duration,
        Some("\"0s\""),
        "Wait this long after the start before the first check.",
    ),
    k(
        "period",
        Ty::Duration,
        Some("\"1s\""),
        "Interval between checks once running; during boot checks start at once and back off towards it. Once running, the checks of every service with the same period run together, on multiples of it counted from gantry's start (the first within half a period to one and a half), so one wakeup serves them all.",
    ),
    k(
        "timeout",
        Ty::Duration,
        Some("\"1s\""),
        "A check taking longer fails and is cut.",
    ),
    k(
        "success_threshold",
        Ty::Int { min: 1, max: 1000 },
        Some("1"),
        "Consecutive passes needed to count as passing.",
    ),
    k(
        "failure_threshold",
        Ty::Int { min: 1, max: 1000 },
        Some("3"),
        "Consecutive failures needed to count as failing.",
    ),
    k(
        "expect_status",
        Ty::Int { min: 100, max: 599 },
        None,
        "http: the exact status code that passes.",
    ),
    k(
        "expect_body",
        Ty::Str,
        None,
        "http: a substring the response body must contain.",
    ),
    k(
        "rw",
        Ty::Bool,
        Some("false"),
        "Stores: add a write/read/delete round trip.",
    ),
    k(
        "queues",
        Ty::StrList,
        Some("[]"),
        "amqp: queues that must exist.",
    ),
    k(
        "require_dlq",
        Ty::Bool,
        Some("false"),
        "amqp: each queue must have a dead-letter exchange.",
    ),
    k(
        "streams",
        Ty::StrList,
        Some("[]"),
        "nats: JetStream streams that must exist.",
    ),
    k(
        "ca_file",
        Ty::Str,
        None,
        "TLS (https and TLS store URLs): PEM file of the CA certificates that signed the server's certificate; trusted instead of the system roots. Relative to the file.",
    ),
    k(
        "cert_file",
        Ty::Str,
        None,
        "TLS: PEM client certificate chain presented to the server (with `key_file`).",
    ),
    k(
        "key_file",
        Ty::Str,
        None,
        "TLS: PEM private key of `cert_file`.",
    ),
    k(
        "insecure_skip_verify",
        Ty::Bool,
        Some("false"),
        "TLS: accept any server certificate (no chain, name or expiry check). `gantry check` warns; prefer `ca_file`.",
    ),
];

/// The keys of a probe table that configure TLS.
pub const TLS_KEYS: &[&str] = &["ca_file", "cert_file", "key_file", "insecure_skip_verify"];

/// Keys shared by `[services.NAME]` and `[defaults]`.
macro_rules! inheritable {
    () => {
        [
            k("working_dir", Ty::Str, Some("the file's directory"), "Directory the command runs in; relative to the file."),
            k("env", Ty::MapOf(&Ty::Str, "VAR"), Some("{}"), "Environment variables for the service (merged over `[env]`)."),
            k("priority", Ty::Enum(PRIORITIES), Some("\"high\""), "critical: a failure is NO-GO. Otherwise a failure degrades the stack and skips hard dependents. critical and high services are required for readiness (/health/ready is 503 while one is not ready); medium and low are optional."),
            k("restart", Ty::Enum(RESTARTS), Some("\"never\""), "What to do when the process exits after it started."),
            k("retry", Ty::Table(RETRY), None, "Start attempts and exponential backoff."),
            k("start_breaker", Ty::Table(START_BREAKER), None, "Start breaker: after `failures` consecutive failed start attempts, hold the next attempt back for `cooldown`. Opens only when `retry.attempts` is larger than `failures`. Absent: no breaker."),
            k("start_grace", Ty::Duration, Some(START_GRACE_DEFAULT), "A process without a startup or readiness probe counts as started (running; its dependents start) only if it is still alive this long after its spawn: an exit within it is a failed start attempt (`retry`), so a critical service that dies at once is NO-GO. Services with a probe never wait for it. \"0s\": started at its spawn."),
            k("start_limit", Ty::Table(START_LIMIT), None, "Restart burst limit."),
            k("healthy_after", Ty::Duration, Some(HEALTHY_AFTER_DEFAULT), "A service up (ready, or running without a readiness probe) at least this long is healthy: when it then crashes it is restarted at once, every time. Quicker crashes are a crash loop: they wait the `retry` backoff, growing with each one, and `start_limit` ends them."),
            k("start_timeout", Ty::Duration, Some(START_TIMEOUT_DEFAULT), "Time from spawn to ready (or completed) before the attempt fails."),
            k("stop_signal", Ty::Enum(SIGNALS), Some("\"SIGTERM\""), "Signal sent to the process group to stop the service."),
            k("stop_timeout", Ty::Duration, Some("\"10s\""), "Time after the stop signal before SIGKILL."),
            k("logs", Ty::Table(LOGS), Some("`[settings] logs`"), "Rotation of this service's log file; keys left out come from `[defaults]`, then `[settings]`."),
            k("memory_max", Ty::Size { min: MEMORY_MIN }, None, "Memory the service's processes may use together; beyond it the kernel's OOM killer ends the service, and the reason says so. Enforced with a cgroup; where gantry cannot use one, the address space of each process is capped instead (RLIMIT_AS); the pre-flight says which. Absent: no limit."),
            k("cpu_max", Ty::Cpu, None, "CPU time the service's processes may use together, in CPUs: `0.5` or `\"50%\"` is half of one CPU, `2` is two. A cgroup CPU quota per 100 ms; without cgroups it is not enforced (no rlimit limits a rate), and the pre-flight warns. Absent: no limit."),
        ]
    };
}

pub static DEFAULTS: &[Key] = &inheritable!();

const SERVICE_LEN: usize = 15 + 25;
pub static SERVICE: &[Key] = &{
    let own = [
        k(
            "command",
            Ty::Command,
            None,
            "What to run: a string split like a shell (no expansion), or an array. Required unless kind = \"external\" or \"migrate\" (both ignore it).",
        ),
        k(
            "kind",
            Ty::Enum(KINDS),
            Some("\"process\""),
            "process: long-running. task: one-shot, success = exit 0. external: not started, only probed. migrate: applies the SQL migrations in `dir` to `database`, one-shot.",
        ),
        k(
            "env_file",
            Ty::StrOrList,
            Some("[]"),
            "Files of KEY=VALUE lines for this service (regular files, at most 4 MiB each).",
        ),
        k(
            "depends_on",
            Ty::DependsOn,
            Some("[]"),
            "Services that must meet a condition before this one starts.",
        ),
        k(
            "readiness",
            Ty::Probe,
            None,
            "Proves the service is ready; dependents wait for it. A polled one keeps running at its `period` while the service is up: `failure_threshold` failures in a row make it `unready` (not restarted; `/health/ready` answers 503 naming it; dependents keep running and are told), `success_threshold` passes make it ready again.",
        ),
        k(
            "liveness",
            Ty::Probe,
            None,
            "Checked while running; failure_threshold consecutive failures restart the service.",
        ),
        k(
            "startup",
            Ty::Probe,
            None,
            "Runs first; readiness and liveness wait until it passes.",
        ),
        k(
            "cleanup",
            Ty::Command,
            None,
            "A command run after the service stopped.",
        ),
        k(
            "layer",
            Ty::Str,
            None,
            "A named layer from `[layers] order`; layers are barriers.",
        ),
        k(
            "preflight",
            Ty::Command,
            None,
            "A dry-run command the pre-flight runs (e.g. `python3 -c 'import app'`).",
        ),
        k(
            "ports",
            Ty::IntList { min: 1, max: 65535 },
            Some("[]"),
            "TCP ports the service listens on; the pre-flight checks they are free.",
        ),
        k(
            "data_dir",
            Ty::Str,
            None,
            "kind = \"process\" only: the directory where the service keeps data that must outlive its process (a database's data directory), absolute or relative to the file. `gantry up` neither creates nor reads it (the service's own command makes it, as on any host). `gantry export kubernetes` makes the service a StatefulSet whose volume (one per pod, from a volumeClaimTemplate of `data_size`) is mounted there, with a headless Service; services without it stay Deployments.",
        ),
        k(
            "data_size",
            Ty::Size { min: DATA_SIZE_MIN },
            Some(DATA_SIZE_DEFAULT),
            "With `data_dir`: the size of the service's volume in `gantry export kubernetes` (its storage request, `\"1GiB\"` becomes `1Gi`).",
        ),
        k(
            "expected_start",
            Ty::Duration,
            None,
            "Expected time to ready, used for the critical path before any boot was recorded.",
        ),
        k(
            "database",
            Ty::Str,
            None,
            "kind = \"migrate\": the database URL (postgres://, mysql:// or sqlite://path); required. \
             From a secret: `database = \"${DATABASE_URL}\"` with `[secrets.DATABASE_URL]` (e.g. \
             `from_env = \"APP_DATABASE_URL\"`) listing this service in `services`; `gantry up` resolves \
             it once and hands it to the migrator, and `gantry migrate ...` run by hand resolves the \
             secret from its source. Output shows the URL with its password masked.",
        ),
        k(
            "dir",
            Ty::Str,
            Some("\"migrations\""),
            "kind = \"migrate\": the directory of NNNN_name.up.sql / NNNN_name.down.sql files, relative to the file.",
        ),
        k(
            "create_database",
            Ty::Bool,
            Some("false"),
            "kind = \"migrate\": create the database when it is missing.",
        ),
        k(
            "on_drift",
            Ty::Enum(&["fail", "warn"]),
            Some("\"fail\""),
            "kind = \"migrate\": a live schema that differs from the recorded schema hash is NO-GO (fail) or a warning with a mission (warn).",
        ),
        k(
            "lock_timeout",
            Ty::Duration,
            Some("\"60s\""),
            "kind = \"migrate\": how long to wait for another migrator's lock.",
        ),
        k(
            "remediate",
            Ty::Command,
            None,
            "A command run once when the service fails (e.g. clear a stale lock file); gantry then starts the service again and records the outcome in the mission.",
        ),
        k(
            "flags_restart",
            Ty::StrList,
            None,
            "Feature flags whose value the service reads from its environment (`GANTRY_FLAG_<NAME>`, which every service gets): when the value of one of them changes (an override set, unset or expired, the flags file reloaded), gantry restarts the service so that it reads the new value (a replicated one rolls, one instance at a time). `[\"*\"]` means any flag. Without it a service sees a changed flag in its environment only at its next start; OFREP and `state_dir/flags.json` follow changes at once.",
        ),
        k(
            "upstream",
            Ty::Str,
            None,
            "`host:port` where the ingress sends this service's traffic. With `replicas`, write `${PORT}` for each instance's port (`\"127.0.0.1:${PORT}\"`); a replicated service with `replica_ports` and no `upstream` is reached at `127.0.0.1:${PORT}`.",
        ),
        k(
            "replicas",
            Ty::Int {
                min: 1,
                max: REPLICAS_MAX,
            },
            None,
            "kind = \"process\" only: run this many instances, named `NAME.1` to `NAME.N`. Each gets `REPLICA` (1 to N) and, with `replica_ports`, `PORT` in its environment, and `${REPLICA}` / `${PORT}` in every string of the service (command, env, probes, upstream) are replaced per instance. Dependents of `NAME` wait for every instance.",
        ),
        k(
            "replica_ports",
            Ty::Str,
            None,
            "With `replicas`: the ports of the instances, `\"9100-9199\"`; instance i gets the i-th port of the range (`NAME.1` the first). The range must hold at least `replicas` ports.",
        ),
        k(
            "rollout",
            Ty::Table(ROLLOUT),
            None,
            "How `gantry rollout NAME` rolls a new release of this replicated, routed service out; each key is a default its flags override.",
        ),
    ];
    let shared = inheritable!();
    let mut all = [k("", Ty::Bool, None, ""); SERVICE_LEN];
    let mut i = 0;
    while i < own.len() {
        all[i] = own[i];
        i += 1;
    }
    let mut j = 0;
    while j < shared.len() {
        all[i + j] = shared[j];
        j += 1;
    }
    all
};

/// The keys of `[services.NAME.rollout]`.
pub static ROLLOUT: &[Key] = &[
    k(
        "strategy",
        Ty::Enum(&["canary", "blue_green"]),
        Some("\"canary\""),
        "canary: the last instance gets the new release and weighted steps of the traffic, each analysed. blue_green: as many new instances as the service has replicas start beside the running ones on their own ports, become ready (and pass `check`), take all traffic in one switch, and are analysed on their own traffic; a breach switches back to the old ones at once.",
    ),
    k(
        "steps",
        Ty::IntList { min: 1, max: 100 },
        Some("[1, 10, 50, 100]"),
        "Canary: the percentages of requests to the new release, one analysed step each, increasing.",
    ),
    k(
        "interval",
        Ty::Duration,
        Some("\"60s\""),
        "How long each step (blue/green: the traffic after the switch) is analysed.",
    ),
    k(
        "max_error_rate",
        Ty::Str,
        Some("\"1%\""),
        "The highest share of the new release's requests that may fail (5xx or no answer), a percentage (`--max-error-ratio` is the same as a share: 0.01).",
    ),
    k(
        "max_p99",
        Ty::Duration,
        None,
        "The highest p99 latency of the new release's requests. Absent: latency is not judged.",
    ),
    k(
        "min_requests",
        Ty::Int {
            min: 1,
            max: 1_000_000_000,
        },
        Some("50"),
        "Fewer requests than this in a window is \"not verified\": the step holds, it never passes.",
    ),
    k(
        "check",
        Ty::Str,
        None,
        "Blue/green: an http(s) URL each new instance must answer with a 2xx before the switch, `${PORT}` being its port (e.g. `\"http://127.0.0.1:${PORT}/smoke\"`).",
    ),
];

/// The most instances one service may ask for.
pub const REPLICAS_MAX: i64 = 1000;
/// `[ingress] retry_budget` when unset: retries may add 10 % to the requests.
pub const INGRESS_RETRY_BUDGET: f64 = 10.0;
/// `[ingress] max_body` when unset.
pub const INGRESS_MAX_BODY: u64 = 10 << 20;
/// `[ingress] max_header` when unset.
pub const INGRESS_MAX_HEADER: u64 = 64 << 10;
/// `[ingress] header_timeout` when unset: a client has this long to send its headers.
pub const INGRESS_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `[ingress] drain_timeout` when unset.
pub const INGRESS_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A route's `timeout` when unset.
pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(30);
/// A route's `connect_timeout` when unset.
pub const ROUTE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub static INGRESS_TLS: &[Key] = &[
    k(
        "cert",
        Ty::Str,
        None,
        "PEM certificate chain the listener presents; relative to the file. Needs `key`.",
    ),
    k(
        "key",
        Ty::Str,
        None,
        "PEM private key of `cert`; relative to the file.",
    ),
];

pub static LISTENER: &[Key] = &[
    k(
        "listen",
        Ty::Str,
        None,
        "`host:port` the listener binds, e.g. `\"127.0.0.1:8443\"`. Required.",
    ),
    k(
        "cert",
        Ty::Str,
        None,
        "PEM certificate chain: this listener speaks TLS. Needs `key`.",
    ),
    k("key", Ty::Str, None, "PEM private key of `cert`."),
];

pub static ROUTE: &[Key] = &[
    k(
        "path",
        Ty::Str,
        None,
        "A path prefix, starting with `/`; it matches on segment boundaries (`/api` matches `/api` and `/api/x`, not `/apix`). A route needs `path`, `host` or both.",
    ),
    k(
        "host",
        Ty::Str,
        None,
        "The request's host name (without port), compared without case.",
    ),
    k(
        "service",
        Ty::Str,
        None,
        "The service that answers; it needs `upstream`, or `replicas` with `replica_ports`. Required.",
    ),
    k(
        "strip_prefix",
        Ty::Bool,
        Some("false"),
        "Remove `path` from the request's path before it is sent upstream.",
    ),
    k(
        "timeout",
        Ty::Duration,
        Some("\"30s\""),
        "The longest an upstream may take to answer (until its response headers).",
    ),
    k(
        "connect_timeout",
        Ty::Duration,
        Some("\"2s\""),
        "The longest a connection to an upstream instance may take.",
    ),
    k(
        "shed_in_brownout",
        Ty::Bool,
        Some("false"),
        "In `brownout` mode this route answers 503.",
    ),
    k(
        "write_allow",
        Ty::StrList,
        Some("[]"),
        "Path prefixes of this route that keep accepting writes (POST, PUT, PATCH, DELETE) in `write_drain` mode.",
    ),
];

pub static INGRESS: &[Key] = &[
    k(
        "listen",
        Ty::Str,
        None,
        "`host:port` of the one plain listener, e.g. `\"127.0.0.1:8080\"` (with `tls`, it speaks TLS). Or use `listeners` for several.",
    ),
    k(
        "tls",
        Ty::Table(INGRESS_TLS),
        None,
        "TLS for `listen`: `{ cert = \"tls/cert.pem\", key = \"tls/key.pem\" }`.",
    ),
    k(
        "listeners",
        Ty::TableList(LISTENER),
        Some("[]"),
        "Several listeners: `[{ listen = \"127.0.0.1:8080\" }, { listen = \"127.0.0.1:8443\", cert = \"...\", key = \"...\" }]`.",
    ),
    k(
        "retry_budget",
        Ty::Str,
        Some("\"10%\""),
        "Retries of idempotent requests may add at most this share to the requests (`\"0%\"` turns retries off).",
    ),
    k(
        "max_body",
        Ty::Size { min: 0 },
        Some("\"10MiB\""),
        "Largest request body accepted; a larger one gets 413.",
    ),
    k(
        "max_header",
        Ty::Size { min: 1024 },
        Some("\"64KiB\""),
        "Largest request head (request line and headers) accepted; a larger one gets 431.",
    ),
    k(
        "header_timeout",
        Ty::Duration,
        Some("\"10s\""),
        "A client must send its whole request head within this time (slow clients are cut).",
    ),
    k(
        "drain_timeout",
        Ty::Duration,
        Some("\"30s\""),
        "How long in-flight requests of an instance being stopped or replaced may take to finish.",
    ),
    k(
        "maintenance_page",
        Ty::Str,
        None,
        "An HTML file served in `emergency` mode (relative to the file); absent: a built-in page.",
    ),
    k(
        "access_log",
        Ty::Bool,
        Some("true"),
        "Write an access log to `state_dir/logs/ingress.log` (JSON lines; never Authorization or cookies).",
    ),
    k(
        "listen_when_ready",
        Ty::Bool,
        Some("false"),
        "Accept connections only once the boot is GO: until then the port is reserved but refuses connections (clients and load balancers see \"connection refused\"). Off: the listeners answer 503 with `Retry-After` while the stack boots.",
    ),
    k(
        "routes",
        Ty::TableList(ROUTE),
        Some("[]"),
        "The routes, `[[ingress.routes]]`: a request goes to the route with the longest matching `path` among those whose `host` matches (a route with a host wins over one without).",
    ),
];

/// The values `type` accepts in `[flags.NAME]`.
pub const FLAG_TYPES: &[&str] = &["bool", "string", "number", "object"];
/// The values `state` accepts in `[flags.NAME]`.
pub const FLAG_STATES: &[&str] = &["enabled", "disabled"];

pub static FLAG: &[Key] = &[
    k("description", Ty::Str, None, "What the flag is for."),
    k(
        "owner",
        Ty::Str,
        None,
        "Who owns the flag (a team or a person), shown by `gantry flag list`.",
    ),
    k(
        "type",
        Ty::Enum(FLAG_TYPES),
        None,
        "The type of the flag's values; when absent, inferred from the variants (all must agree).",
    ),
    k(
        "variants",
        Ty::MapOf(&Ty::Any, "VARIANT"),
        None,
        "Variant name → value, e.g. `{ on = true, off = false }` or `{ red = \"#f00\", blue = \"#00f\" }`.",
    ),
    k(
        "default",
        Ty::Str,
        None,
        "The variant served when no override or rule applies; one of `variants`.",
    ),
    k(
        "expires",
        Ty::Str,
        None,
        "A date `YYYY-MM-DD` after which `gantry check` warns that the flag should be removed.",
    ),
    k("tags", Ty::StrList, Some("[]"), "Free tags."),
    k(
        "state",
        Ty::Enum(FLAG_STATES),
        Some("\"enabled\""),
        "`disabled` serves no value (OFREP answers reason DISABLED; clients use their code default).",
    ),
];

pub static ALERTS: &[Key] = &[
    k(
        "webhook",
        Ty::Str,
        None,
        "An http:// or https:// URL: POST every notification here as Alertmanager-compatible JSON (version 4), so receivers written for Alertmanager work; retried with backoff, kept across restarts of gantry until delivered. https verifies the receiver's certificate (system roots, or `webhook_ca`).",
    ),
    k(
        "webhook_ca",
        Ty::Str,
        None,
        "A PEM file of the CA certificates an https webhook's certificate must chain to, instead of the system roots.",
    ),
    k(
        "exec",
        Ty::Command,
        None,
        "Run this command per notification with the Alertmanager JSON on stdin and in `GANTRY_ALERT_JSON` (exit 0 = delivered; cut after 30 s). It gets no other environment: none of gantry's, no secret.",
    ),
    k(
        "log",
        Ty::Bool,
        Some("true"),
        "Print a line on gantry's output per notification.",
    ),
    k(
        "repeat_interval",
        Ty::Duration,
        Some("\"4h\""),
        "Notify a firing alert again this often.",
    ),
    k(
        "disabled",
        Ty::StrList,
        Some("[]"),
        "Built-in rules turned off: critical_service_down (P0), boot_no_go (P0), crash_loop (P1), breaker_open (P1), readiness_lost (P1), disk_low (P2), certificate_expiring (P2).",
    ),
    k(
        "rules",
        Ty::MapOf(&Ty::Table(ALERT_RULE), "NAME"),
        Some("{}"),
        "Rules of your own over gantry's signals, `[alerts.rules.NAME]`. A rule named like a built-in one overrides it: the keys you give replace the built-in's, the others stay (e.g. `[alerts.rules.readiness_lost] for = \"5m\"`, `except = [\"worker\"]`).",
    ),
];

pub static ALERT_RULE: &[Key] = &[
    k(
        "severity",
        Ty::Enum(&["P0", "P1", "P2"]),
        None,
        "P0 (respond within 5 minutes; opens an incident), P1 (15 minutes; opens an incident), P2 (1 hour).",
    ),
    k(
        "signal",
        Ty::Enum(crate::model::ALERT_SIGNALS),
        None,
        "What the rule watches, per service / route / path: service_down, service_unready, breaker_open, boot_no_go (0 or 1); service_restarts_total (restarts no command asked for), service_starting_seconds (how long a service has been starting after the boot: stuck), service_readiness_lost_total and service_probe_failures_total (a flapping probe), service_cpu_seconds_total, ingress_requests_total, ingress_failures_total (counters: give `window`); service_rss_bytes, disk_free_ratio (0-1, under the state dir), certificate_days_left (the ingress's certificates, and those of TLS probes, looked at hourly), ingress_p95_ms, ingress_p99_ms (a route's latency percentiles since gantry started), ingress_traffic_ratio (a route's requests in the last 15 minutes over the same 15 minutes a day earlier, once a day of history holds at least 100 requests there: `below = 0.5` is a traffic drop), ingress_instance_requests_total, ingress_instance_failures_total and ingress_instance_p99_ms (the same per instance of a replicated service: `ratio_of` spots one bad replica), missions_open.",
    ),
    k(
        "above",
        Ty::Any,
        None,
        "Fires while the value is above this number.",
    ),
    k(
        "below",
        Ty::Any,
        None,
        "Fires while the value is below this number.",
    ),
    k(
        "window",
        Ty::Duration,
        None,
        "For a counter: its increase over this window is judged (with `ratio_of`: the ratio of the two increases).",
    ),
    k(
        "ratio_of",
        Ty::Enum(crate::model::ALERT_SIGNALS),
        None,
        "A counter: the rule judges signal's increase / this counter's increase over `window` (e.g. ingress_failures_total over ingress_requests_total).",
    ),
    k(
        "min_volume",
        Ty::Int {
            min: 0,
            max: i64::MAX,
        },
        Some("0"),
        "With `ratio_of`: a window whose denominator grew by less is not judged (no alert on three requests).",
    ),
    k(
        "for",
        Ty::Duration,
        Some("\"0s\""),
        "The condition must hold this long before the alert fires.",
    ),
    k("service", Ty::Str, None, "Only this service's series."),
    k(
        "route",
        Ty::Str,
        None,
        "Only this ingress route's series (its path).",
    ),
    k("except", Ty::StrList, Some("[]"), "Never these services."),
    k(
        "summary",
        Ty::Str,
        None,
        "One line for people; `{service}`, `{route}`, `{path}`, `{target}` are replaced by the alert's labels.",
    ),
    k(
        "runbook",
        Ty::Str,
        None,
        "A `[runbooks.NAME]` shown with the alert; with `auto_runbook = true` it runs once per incident.",
    ),
    k(
        "labels",
        Ty::MapOf(&Ty::Str, "LABEL"),
        Some("{}"),
        "Labels added to the alert (`team = \"payments\"`), for routing in the receiver.",
    ),
    k(
        "auto_runbook",
        Ty::Bool,
        Some("false"),
        "Run `runbook` by itself when the alert fires, at most once per incident (a P0's auto-mitigation); every step is audited as `runbook:NAME` and on the incident's timeline.",
    ),
];

pub static RUNBOOK: &[Key] = &[
    k(
        "description",
        Ty::Str,
        None,
        "What the runbook is for, shown by `gantry runbook list`.",
    ),
    k(
        "steps",
        Ty::TableList(RUNBOOK_STEP),
        None,
        "The steps, in order (`[[runbooks.NAME.steps]]`), each exactly one action; a step that fails stops the runbook.",
    ),
];

pub static RUNBOOK_STEP: &[Key] = &[
    k(
        "drain",
        Ty::Str,
        None,
        "`\"on\"` or `\"off\"`: the write_drain kill switch.",
    ),
    k(
        "brownout",
        Ty::Str,
        None,
        "`\"on\"` or `\"off\"`: the brownout kill switch.",
    ),
    k(
        "emergency",
        Ty::Str,
        None,
        "`\"on\"` or `\"off\"`: the emergency kill switch.",
    ),
    k(
        "safe_mode",
        Ty::Str,
        None,
        "`\"on\"` or `\"off\"`: the safe_mode flag.",
    ),
    k(
        "flag",
        Ty::Any,
        None,
        "`{ key = \"NAME\", value = ..., expires = \"1h\" }`: a flag override.",
    ),
    k("start", Ty::Str, None, "A service to start."),
    k("stop", Ty::Str, None, "A service to stop."),
    k(
        "restart",
        Ty::Str,
        None,
        "A service to restart (a replicated one rolls).",
    ),
    k(
        "disable",
        Ty::Str,
        None,
        "A service to disable (kept stopped across restarts of gantry).",
    ),
    k("enable", Ty::Str, None, "A service to enable."),
    k(
        "quarantine",
        Ty::Str,
        None,
        "A service to freeze for inspection.",
    ),
    k("release", Ty::Str, None, "A quarantined service to thaw."),
    k(
        "rollback",
        Ty::Str,
        None,
        "A service whose rollout to abort: all traffic back to the stable release.",
    ),
    k(
        "rotate",
        Ty::Str,
        None,
        "A secret to rotate (its consumers restart).",
    ),
    k(
        "run",
        Ty::Command,
        None,
        "A command run in the stack's directory; a non-zero exit fails the step.",
    ),
    k(
        "timeout",
        Ty::Duration,
        Some("\"60s\""),
        "With `run`: how long the command may take.",
    ),
    k(
        "wait",
        Ty::Any,
        None,
        "`{ service = \"db\", state = \"ready\", timeout = \"60s\" }`: wait until the service (or, without `service`, the stack) is in that state.",
    ),
];

pub static SLO: &[Key] = &[
    k(
        "route",
        Ty::Str,
        None,
        "The path of one of the `[[ingress.routes]]`: the SLO is measured on its requests (failed = 5xx and upstream errors).",
    ),
    k(
        "availability",
        Ty::Str,
        None,
        "The objective, e.g. \"99.9%\", over `window`. gantry pages when the error budget burns at 14.4× over 1 h and 5 min (P0) or 6× over 6 h and 30 min (P1), and warns at 1× over 3 days and 6 h (P2) — the factors of a 30-day window (2 %, 5 % and 10 % of the budget spent over the long window); another window scales them (7 days: 3.36×, 1.4×, 1×), never below 1×.",
    ),
    k(
        "window",
        Ty::Duration,
        Some("\"30d\""),
        "The window the objective is over, and so its error budget (what may fail over it): between 1h and 90d. The burn-rate rules' own windows (1 h, 6 h, 3 days and their short ones) stay.",
    ),
    k(
        "min_requests",
        Ty::Int {
            min: 1,
            max: i64::MAX,
        },
        Some("100"),
        "A window with fewer requests is not judged (no alert on three requests).",
    ),
];

pub static CLUSTER: &[Key] = &[
    k(
        "store",
        Ty::Str,
        None,
        "A postgres:// URL: the database where the instances running this file elect one leader (a lease row in `gantry_cluster_lease`, timed by the database's clock). The leader boots the stack; the others run the pre-flight and wait as hot standbys. Plain TCP (no TLS yet); the password is never printed.",
    ),
    k(
        "name",
        Ty::Str,
        Some("\"HOSTNAME:STATE_DIR\""),
        "This instance's name in the election (unique per instance): shown as the leader or a standby.",
    ),
    k(
        "cluster",
        Ty::Str,
        Some("\"gantry\""),
        "The name of the election: instances with the same store and cluster name share one leader.",
    ),
    k(
        "lease",
        Ty::Duration,
        Some("\"5s\""),
        "The lease's time to live: the leader renews it every third of it and stops acting when it could not renew before it ends; a standby takes over at most this long after the leader died. Between 1s and 1h.",
    ),
];

pub static LAYERS: &[Key] = &[k(
    "order",
    Ty::StrList,
    Some("[]"),
    "Layer names, first to last. Nothing in a layer starts before every required service of the earlier layers is ready.",
)];

pub static PROFILE: &[Key] = &[
    k(
        "services",
        Ty::StrList,
        Some("[]"),
        "Services to run, with their dependencies.",
    ),
    k(
        "priorities",
        Ty::StrList,
        Some("[]"),
        "Every service with one of these priorities (e.g. [\"critical\"]).",
    ),
];

pub static TOP: &[Key] = &[
    k("settings", Ty::Table(SETTINGS), None, "Global settings."),
    k(
        "env",
        Ty::MapOf(&Ty::Str, "VAR"),
        Some("{}"),
        "Environment variables for every service.",
    ),
    k(
        "env_file",
        Ty::StrOrList,
        Some("[]"),
        "Files of KEY=VALUE lines for every service (regular files, at most 4 MiB each).",
    ),
    k(
        "secrets",
        Ty::MapOf(&Ty::Table(SECRET), "NAME"),
        Some("{}"),
        "Secrets: resolved before boot, given only to the listed services, never printed.",
    ),
    k(
        "defaults",
        Ty::Table(DEFAULTS),
        None,
        "Keys every service inherits unless it sets them.",
    ),
    k(
        "services",
        Ty::MapOf(&Ty::Table(SERVICE), "NAME"),
        Some("{}"),
        "The services of the stack.",
    ),
    k(
        "ingress",
        Ty::Table(INGRESS),
        None,
        "The ingress proxy in front of the services: listeners and routes.",
    ),
    k(
        "flags",
        Ty::MapOf(&Ty::Table(FLAG), "NAME"),
        Some("{}"),
        "Feature flags served over OpenFeature (OFREP), with an owner and an expiry. The kill switches `write_drain`, `brownout`, `emergency` and `safe_mode` always exist (define one here only as a bool flag), and so does `brownout_shed_percent` (a number, 0 to 100: the share of the other routes' requests shed in brownout). Services read flags over OFREP (`GANTRY_OFREP_URL`, `GANTRY_OFREP_TOKEN`), from `state_dir/flags.json`, or from their environment (`GANTRY_FLAG_<NAME>`; see the service key `flags_restart`). `GANTRY_OFREP_URL` is the API's address (with `[settings] api` on port 0, the port actually bound, known before the first service starts); with the API on a unix socket services get none, as OpenFeature's OFREP providers speak HTTP over TCP: they read `state_dir/flags.json` or `GANTRY_FLAG_<NAME>` instead (`gantry check` and `gantry up` say so once), or `api` names a TCP address (`127.0.0.1:0` picks a free port).",
    ),
    k(
        "alerts",
        Ty::Table(ALERTS),
        None,
        "Alerts: where notifications of the built-in rules go (webhook, exec, log), how often a firing alert is repeated, which rules are off. Gantry's own planned work does not alert: a commanded restart (`gantry restart`, a reload, a rollout's) until the service is up again (not when it fails or crashes again), a rolling restart's current instance, a rollout's canary or green instances.",
    ),
    k(
        "runbooks",
        Ty::MapOf(&Ty::Table(RUNBOOK), "NAME"),
        Some("{}"),
        "Runbooks: ordered steps over gantry's own actions (kill switches, flags, service commands, secret rotation, commands, waits), run with `gantry runbook run NAME` or by an alert rule's `auto_runbook`, every step audited.",
    ),
    k(
        "slo",
        Ty::MapOf(&Ty::Table(SLO), "NAME"),
        Some("{}"),
        "Availability objectives over ingress routes, alerted on their multi-window burn rates (needs `[alerts]` for notifications).",
    ),
    k(
        "cluster",
        Ty::Table(CLUSTER),
        None,
        "Hot standby: instances running this file elect one leader through a PostgreSQL lease; the others wait to take over.",
    ),
    k(
        "layers",
        Ty::Table(LAYERS),
        None,
        "Named layers that act as barriers.",
    ),
    k(
        "profiles",
        Ty::MapOf(&Ty::Table(PROFILE), "NAME"),
        Some("{}"),
        "Named selections of services for `gantry up --profile NAME`.",
    ),
];

/// Finds a key by name in a table's registry.
pub fn find(keys: &'static [Key], name: &str) -> Option<&'static Key> {
    keys.iter().find(|key| key.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_key_is_named_once() {
        // SERVICE is assembled into a fixed-size array; a wrong length leaves
        // placeholder entries with empty names behind.
        let mut names: Vec<&str> = SERVICE.iter().map(|k| k.name).collect();
        assert!(names.iter().all(|n| !n.is_empty()));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SERVICE.len());
    }

    #[test]
    fn healthy_after_and_start_grace_default_texts_are_the_constants() {
        use crate::duration::parse_duration;
        let text = |key| {
            find(SERVICE, key)
                .unwrap()
                .default
                .unwrap()
                .trim_matches('"')
        };
        assert_eq!(parse_duration(text("healthy_after")), Ok(HEALTHY_AFTER));
        assert_eq!(parse_duration(text("start_grace")), Ok(START_GRACE));
    }

    #[test]
    fn log_defaults_text_names_the_constants() {
        use crate::size::parse_size;
        let max_size = find(LOGS, "max_size").unwrap();
        let text = max_size.default.unwrap().trim_matches('"');
        assert_eq!(parse_size(text), Ok(LOG_MAX_SIZE));
        assert!(matches!(max_size.ty, Ty::Size { min } if min == LOG_MIN_SIZE));
        let keep = find(LOGS, "keep").unwrap();
        assert_eq!(keep.default, Some(LOG_KEEP.to_string().as_str()));
    }

    #[test]
    fn start_timeout_default_text_names_the_constants() {
        use crate::duration::parse_duration;
        let key = find(SERVICE, "start_timeout").unwrap();
        let text = key.default.unwrap();
        // The quoted durations, in order: the default, then the one-shot default.
        let quoted: Vec<_> = text
            .split('"')
            .skip(1)
            .step_by(2)
            .filter_map(|t| parse_duration(t).ok())
            .collect();
        assert_eq!(quoted, [START_TIMEOUT, START_TIMEOUT_ONESHOT], "{text}");
        assert_eq!(
            find(DEFAULTS, "start_timeout").unwrap().default,
            key.default
        );
    }
}

//! The registry of every key gantry.toml accepts: type, default and documentation.
//!
//! One table drives three things so they cannot drift apart: the decoder's
//! unknown-key warnings, the JSON Schema (`docs/gantry.schema.json`) and the key
//! reference (`docs/config.md`). A test regenerates both documents and fails when
//! the committed copies differ.

use std::time::Duration;

mod ingress;
mod ops;
mod service;

pub use ingress::*;
pub use ops::*;
pub use service::*;

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

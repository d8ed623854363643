//! The key tables of `[services.NAME]` and `[defaults]`: restart policy, probes and rollout.

use super::{
    DATA_SIZE_DEFAULT, DATA_SIZE_MIN, HEALTHY_AFTER_DEFAULT, KINDS, Key, LOGS, MEMORY_MIN,
    PRIORITIES, REPLICAS_MAX, RESTARTS, SIGNALS, START_GRACE_DEFAULT, START_TIMEOUT_DEFAULT, Ty, k,
};

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

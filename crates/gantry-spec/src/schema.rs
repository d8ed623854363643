//! Generates the JSON Schema (`docs/gantry.schema.json`) and the key reference (`docs/config.md`) from the key registry.
//!
//! Both documents are derived from [`crate::keys`] by walking its tables, so a key
//! added there shows up in the schema and the reference at once. What the registry
//! cannot say (the two forms of `depends_on`, "exactly one probe kind", the intro on
//! durations and interpolation) lives here as handwritten constants.
//!
//! Unknown keys are only warnings in gantry, so no table sets
//! `additionalProperties: false`: an editor must not flag what gantry accepts.

use crate::keys::{self, Key, Ty};
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

/// The schema's `$id`.
pub const SCHEMA_ID: &str = "https://gantry.dev/gantry.schema.json";

/// Valid service, profile, layer and secret names; the same rule as [`crate::valid_name`].
pub const NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$";

/// A duration in the canonical form: one or more number+unit pairs.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(us|ms|s|m|h|d))+$";

/// Environment variable names: anything non-empty without `=` or NUL (what the decoder accepts).
const ENV_NAME_PATTERN: &str = "^[^=\\u0000]+$";

/// The long form of one dependency, `{ condition = "...", required = false }`.
/// The decoder reads these two keys directly; they are listed here so the schema
/// and the reference describe them like any other table.
pub static DEPENDENCY: &[Key] = &[
    Key {
        name: "condition",
        ty: Ty::Enum(keys::CONDITIONS),
        default: Some("\"ready\""),
        doc: "started: the dependency was started. ready: its readiness probe passed (without a probe this means started). completed: the dependency, a task, exited 0.",
    },
    Key {
        name: "required",
        ty: Ty::Bool,
        default: Some("true"),
        doc: "false makes a soft dependency: it orders the start but never blocks it.",
    },
];

/// The tables that get a `$defs` entry, by name.
fn named_tables() -> [(&'static str, &'static [Key]); 18] {
    [
        ("Ingress", keys::INGRESS),
        ("IngressTls", keys::INGRESS_TLS),
        ("Listener", keys::LISTENER),
        ("Route", keys::ROUTE),
        ("Settings", keys::SETTINGS),
        ("Logs", keys::LOGS),
        ("Retention", keys::RETENTION),
        ("Secret", keys::SECRET),
        ("Defaults", keys::DEFAULTS),
        ("Service", keys::SERVICE),
        ("Retry", keys::RETRY),
        ("StartLimit", keys::START_LIMIT),
        ("StartBreaker", keys::START_BREAKER),
        ("Rollout", keys::ROLLOUT),
        ("Probe", keys::PROBE),
        ("Layers", keys::LAYERS),
        ("Profile", keys::PROFILE),
        ("DependencyOptions", DEPENDENCY),
    ]
}

fn same_table(a: &[Key], b: &[Key]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.name == y.name)
}

fn def_name(table: &[Key]) -> Option<&'static str> {
    named_tables()
        .into_iter()
        .find(|(_, keys)| same_table(keys, table))
        .map(|(name, _)| name)
}

/// The doc of the first registry key whose type is `target`, searching depth first from TOP.
fn doc_of_table(target: &[Key]) -> Option<&'static str> {
    fn walk(keys: &'static [Key], target: &[Key]) -> Option<&'static str> {
        for key in keys {
            let inner = match key.ty {
                Ty::Table(t) | Ty::TableList(t) => Some(t),
                Ty::MapOf(&Ty::Table(t), _) => Some(t),
                _ => None,
            };
            if let Some(t) = inner {
                if same_table(t, target) {
                    return Some(key.doc);
                }
                if let Some(d) = walk(t, target) {
                    return Some(d);
                }
            }
        }
        None
    }
    walk(keys::TOP, target)
}

fn reference(def: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{def}") })
}

/// The default as JSON, when the registry's default string is valid JSON.
fn default_json(key: &Key) -> Option<Value> {
    key.default.and_then(|d| serde_json::from_str(d).ok())
}

fn ty_schema(ty: &Ty) -> Value {
    match ty {
        Ty::Str => json!({ "type": "string" }),
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Ty::Duration => reference("Duration"),
        // `minimum` applies to the integer form, `pattern` to the string form.
        Ty::Size { min } => json!({
            "type": ["integer", "string"],
            "minimum": min,
            "pattern": crate::size::SIZE_PATTERN
        }),
        // Bounds apply to the number form (in CPUs), `pattern` to the string form.
        Ty::Cpu => json!({
            "type": ["number", "string"],
            "minimum": f64::from(crate::cpu::CPU_MIN.0) / 1000.0,
            "maximum": f64::from(crate::cpu::CPU_MAX.0) / 1000.0,
            "pattern": crate::cpu::CPU_PATTERN
        }),
        Ty::Enum(options) => json!({ "type": "string", "enum": options }),
        Ty::Command => reference("Command"),
        Ty::StrOrList => json!({
            "oneOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        }),
        Ty::StrList => json!({ "type": "array", "items": { "type": "string" } }),
        Ty::IntList { min, max } => json!({
            "type": "array",
            "items": { "type": "integer", "minimum": min, "maximum": max }
        }),
        Ty::Table(keys) => match def_name(keys) {
            Some(name) => reference(name),
            None => table_schema(keys),
        },
        Ty::TableList(keys) => json!({ "type": "array", "items": ty_schema(&Ty::Table(keys)) }),
        Ty::MapOf(inner, placeholder) => {
            let (values, names) = if *placeholder == "VAR" {
                // Environment values: the decoder takes any scalar and passes it as written.
                (
                    json!({ "type": ["string", "number", "boolean"] }),
                    json!({ "pattern": ENV_NAME_PATTERN }),
                )
            } else {
                (ty_schema(inner), json!({ "pattern": NAME_PATTERN }))
            };
            json!({ "type": "object", "propertyNames": names, "additionalProperties": values })
        }
        Ty::DependsOn => reference("DependsOn"),
        Ty::Probe => reference("Probe"),
        Ty::Any => json!({}),
    }
}

/// The schema of one key: its type's schema plus description and default.
fn key_schema(key: &Key) -> Value {
    let mut schema = ty_schema(&key.ty);
    let obj = schema
        .as_object_mut()
        .expect("every type schema is an object");
    let mut description = key.doc.to_string();
    match (key.default, default_json(key)) {
        (_, Some(default)) => {
            obj.insert("default".into(), default);
        }
        (Some(text), None) => {
            let _ = write!(description, " Default: {text}.");
        }
        (None, None) => {}
    }
    obj.insert("description".into(), Value::String(description));
    schema
}

fn table_schema(keys: &[Key]) -> Value {
    let properties: Map<String, Value> = keys
        .iter()
        .map(|k| (k.name.to_string(), key_schema(k)))
        .collect();
    json!({ "type": "object", "properties": properties })
}

fn set(schema: &mut Value, key: &str, value: Value) {
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(key.to_string(), value);
    }
}

/// What the registry's types cannot say about one table: cross-key rules the decoder enforces.
fn refine(def: &str, schema: &mut Value) {
    match def {
        "Probe" => {
            let one_kind: Vec<Value> = keys::PROBE_KINDS
                .iter()
                .map(|k| json!({ "required": [k] }))
                .collect();
            set(schema, "oneOf", Value::Array(one_kind));
            let props = &mut schema["properties"];
            set(&mut props["http"], "pattern", json!("^https?://"));
            set(&mut props["tcp"], "pattern", json!("^.+:[0-9]{1,5}$"));
            set(&mut props["notify"], "const", json!(true));
            set(
                schema,
                "dependentRequired",
                json!({ "cert_file": ["key_file"], "key_file": ["cert_file"] }),
            );
        }
        "Secret" => {
            let sources: Vec<Value> = ["from_env", "from_file", "from_command"]
                .iter()
                .map(|k| json!({ "required": [k] }))
                .collect();
            set(schema, "oneOf", Value::Array(sources));
        }
        "Service" => {
            // `command` is required unless kind = "external".
            set(
                schema,
                "if",
                json!({ "not": { "required": ["kind"], "properties": { "kind": { "const": "external" } } } }),
            );
            set(schema, "then", json!({ "required": ["command"] }));
        }
        _ => {}
    }
}

/// The JSON Schema (draft 2020-12) of gantry.toml, generated from the key registry.
pub fn json_schema() -> Value {
    let mut defs = Map::new();
    defs.insert(
        "Name".into(),
        json!({
            "type": "string",
            "pattern": NAME_PATTERN,
            "description": "A service, profile, layer or secret name: a letter or digit, then letters, digits, `_`, `-` or `.`; at most 63 characters."
        }),
    );
    defs.insert(
        "Duration".into(),
        json!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration with a unit: us, ms, s, m, h or d, e.g. \"250ms\", \"5s\", \"1m30s\". A bare number is an error.",
            "examples": ["250ms", "1s", "5m", "1m30s"]
        }),
    );
    defs.insert(
        "Command".into(),
        json!({
            "description": "A command: a string split like a shell (quotes group, no expansion), or an array of arguments.",
            "oneOf": [
                { "type": "string", "minLength": 1 },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        }),
    );
    defs.insert(
        "Dependency".into(),
        json!({
            "description": "A condition such as \"ready\", or a table { condition, required }.",
            "oneOf": [
                ty_schema(&DEPENDENCY[0].ty),
                reference("DependencyOptions")
            ]
        }),
    );
    let mut depends_on = json!({
        "oneOf": [
            {
                "type": "array",
                "description": "Service names; each must be ready first (condition \"ready\", required).",
                "items": reference("Name")
            },
            {
                "type": "object",
                "description": "Service name -> condition, or -> { condition, required }.",
                "propertyNames": { "pattern": NAME_PATTERN },
                "additionalProperties": reference("Dependency")
            }
        ]
    });
    if let Some(key) = keys::find(keys::SERVICE, "depends_on") {
        set(&mut depends_on, "description", json!(key.doc));
    }
    defs.insert("DependsOn".into(), depends_on);
    for (name, table) in named_tables() {
        let mut schema = table_schema(table);
        let description = match name {
            "Probe" => Some(PROBE_DESCRIPTION),
            "DependencyOptions" => Some("The long form of one dependency."),
            _ => doc_of_table(table),
        };
        if let Some(d) = description {
            set(&mut schema, "description", json!(d));
        }
        refine(name, &mut schema);
        defs.insert(name.into(), schema);
    }
    let mut root = table_schema(keys::TOP);
    let obj = root.as_object_mut().expect("a table schema is an object");
    obj.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    obj.insert("$id".into(), json!(SCHEMA_ID));
    obj.insert("title".into(), json!("gantry.toml"));
    obj.insert("description".into(), json!(SCHEMA_DESCRIPTION));
    obj.insert("$defs".into(), Value::Object(defs));
    root
}

/// `json_schema()` as the committed file holds it: pretty-printed with sorted keys
/// (stable whatever serde_json features the build enables) and a final newline.
pub fn json_schema_text() -> String {
    fn sorted(v: Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    let mut text = serde_json::to_string_pretty(&sorted(json_schema()))
        .expect("a JSON value always serializes");
    text.push('\n');
    text
}

const SCHEMA_DESCRIPTION: &str = "The stack file of gantry, a boot orchestrator: services, their dependencies and health probes, layers and profiles. Generated from the key registry; unknown keys are accepted by gantry with a warning.";

const PROBE_DESCRIPTION: &str = "A health check: exactly one kind key (exec, http, tcp, log, notify, postgres, mysql, redis, amqp, nats, sqlite) plus timing fields.";

const INTRO: &str = "\
Every key gantry.toml accepts, generated from the key registry in
`crates/gantry-spec/src/keys.rs` (the same registry produces
[`gantry.schema.json`](gantry.schema.json) for editors). Do not edit this file by
hand: change the registry and run
`GANTRY_UPDATE_DOCS=1 cargo test -p gantry-spec --test docs_sync`.

Validate a file with `gantry check` (add `--json` for machine-readable output).

<a id=\"durations\"></a>
**Durations** are strings with a unit: `250ms`, `1s`, `5m`, `2h`, `1.5s`, `1m30s`
(units `us`, `ms`, `s`, `m`, `h`, `d`). A bare number such as `timeout = 5` is an
error: it could mean seconds or milliseconds.

<a id=\"interpolation\"></a>
**Interpolation**: string values may use `${VAR}` and `${VAR:-default}`, taken from
the environment gantry runs in. An unset `${VAR}` without a default becomes empty
and is reported as a warning. `${VAR:?message}` marks a plain variable that must be
set and not empty: without it the file is an error naming the variable, the key and
the message, and nothing starts (unlike a secret, the value is not masked in output).
`$$` is a literal `$`; a `$` not followed by `{` (as in
`$HOME` inside a command) is kept as is for the shell.

<a id=\"sizes\"></a>
**Sizes** are a number of bytes (`4096`) or a string with a binary unit: `\"512KiB\"`,
`\"10MiB\"`, `\"1.5GiB\"` (units `B`, `KiB`, `MiB`, `GiB`, `TiB`). `\"10MB\"` is an
error: it could mean 10,000,000 or 10,485,760 bytes.

<a id=\"commands\"></a>
**Commands** are a string split like a shell (quotes group words; no expansion, no
pipes), or an array of arguments: `command = \"python3 app.py\"` or
`command = [\"python3\", \"app.py\"]`.

<a id=\"names\"></a>
**Names** of services, profiles, layers and secrets start with a letter or digit,
then letters, digits, `_`, `-` or `.`; at most 63 characters.

<a id=\"limits\"></a>
**Nesting** goes at most 32 levels deep: each segment of a table header
(`[services.api]` is two), each segment of a dotted key, each array and each inline
table is one level. gantry's own keys need at most five; anything deeper is an error
(`too-deep`) at the first key or bracket beyond the limit.

**Unknown keys are warnings**, never errors, so a file written for a newer gantry
still loads in an older one; `gantry check` suggests the closest known key.";

/// Handwritten notes for sections whose registry entries do not say enough.
fn section_note(anchor: &str) -> Option<&'static str> {
    Some(match anchor {
        "ingress" => {
            "`gantry check` validates the whole table: listener addresses, `cert` with \
             `key`, every route's service (it must exist, serve requests and have an \
             `upstream` or `replicas` with `replica_ports`), and two routes with the same \
             host and path. A replicated service is balanced across its instances \
             (`NAME.1` … `NAME.N`, see `replicas`).\n\n```toml\n[ingress]\nlisten = \"127.0.0.1:8080\"\n\n[[ingress.routes]]\npath = \"/api\"\nservice = \"api\"\n\n[services.api]\ncommand = [\"./api\", \"--port\", \"${PORT}\"]\nreplicas = 2\nreplica_ports = \"9100-9109\"\nupstream = \"127.0.0.1:${PORT}\"\nreadiness = { http = \"http://127.0.0.1:${PORT}/health\" }\n```"
        }
        "env" => {
            "Values may be strings, integers, floats or booleans; non-strings are passed \
             as written. A service's own `env` (and `[defaults] env`) is merged over these, \
             variable by variable. Values are interpolated (`${VAR:-default}`)."
        }
        "env_file" => {
            "A top-level key, not a table: `env_file = \".env\"` or \
             `env_file = [\".env\", \".env.local\"]`. Paths are relative to the file."
        }
        "secrets" => {
            "Each secret has exactly one source: `from_env`, `from_file` or \
             `from_command`.\n\n```toml\n[secrets.db_password]\nfrom_file = \"secrets/db\"\nservices = [\"api\"]\nenv = \"DB_PASSWORD\"\n```"
        }
        "defaults" => {
            "Every key here is also a `[services.NAME]` key; a service that sets a key \
             itself wins. `env` is merged variable by variable."
        }
        "services" => {
            "One table per service; the table name is the service name (see \
             [names](#names); two names differing only in case are an error). `command` is \
             required unless `kind = \"external\"` or `kind = \"migrate\"` (a migrate \
             service runs gantry's own migrator, set up by `database`, `dir`, \
             `create_database`, `on_drift` and `lock_timeout`). `remediate` works for every \
             kind.\n\n```toml\n[services.api]\ncommand = \"python3 app.py\"\ndepends_on = { db = \"ready\", migrate = \"completed\" }\nreadiness = { http = \"http://127.0.0.1:8000/health\", period = \"2s\" }\n```"
        }
        "depends_on" => {
            "Two forms. A list of names waits for each to be ready: \
             `depends_on = [\"db\", \"cache\"]`. A table names the condition per \
             dependency, as a string or as a table with these keys: \
             `depends_on = { db = \"ready\", seed = { condition = \"completed\", required = false } }`. \
             `completed` needs `kind = \"task\"` on the dependency; `ready` on a service \
             without a readiness probe means only started (a warning). Cycles are errors \
             and are printed as a path."
        }
        "probes" => {
            "A probe table has exactly one kind key (`exec`, `http`, `tcp`, `log`, \
             `notify`, `postgres`, `mysql`, `redis`, `amqp`, `nats`, `sqlite`); the other \
             keys tune it. `expect_status` and `expect_body` apply to `http`; `rw`, \
             `queues`, `require_dlq` and `streams` to the store kinds; `watchdog` to a \
             `notify` liveness probe. `period` and `timeout` must be greater than zero.\n\n```toml\nreadiness = { tcp = \"127.0.0.1:5432\", period = \"500ms\" }\nliveness = { http = \"http://127.0.0.1:8000/health\", failure_threshold = 5 }\nstartup = { log = \"listening on\", timeout = \"2s\" }\n```\n\n\
             A `notify` liveness probe with `watchdog` is a watchdog, as systemd's \
             `WatchdogSec`: the service gets `WATCHDOG_USEC` (the interval) and \
             `WATCHDOG_PID` (its own pid) and must send `WATCHDOG=1` at least that often, \
             typically every half interval; each interval without one is a liveness \
             failure (`failure_threshold` of them in a row restart it), and \
             `WATCHDOG=trigger` restarts it at once. Without `watchdog` the probe passes on \
             any `READY=1` or `WATCHDOG=1` and can never fail, which `gantry check` warns \
             about.\n\n```toml\nliveness = { notify = true, watchdog = \"10s\", failure_threshold = 1 }\n```\n\n\
             **TLS.** An `https://` URL, and a store URL that asks for TLS (postgres \
             `sslmode=require|verify-ca|verify-full`, mysql `ssl-mode=REQUIRED|VERIFY_CA|VERIFY_IDENTITY` \
             or `require_ssl=true`, `rediss://`, `amqps://`, nats `tls://`), is checked with \
             rustls against the system roots, or against `ca_file` alone when it is set; \
             `cert_file` and `key_file` present a client certificate. The chain, the host name \
             and the expiry are verified (postgres `sslmode=require` and mysql `REQUIRED` \
             encrypt without verifying, as libpq and the MySQL client do, unless `ca_file` is \
             set). `insecure_skip_verify = true` accepts any certificate and `gantry check` \
             warns about it. The pre-flight reports each reachable TLS endpoint's chain and \
             days to expiry: a warning under 14 days; expired or not valid (unknown CA, wrong \
             name) fails like the probe itself, NO-GO for a critical service.\n\n```toml\n[services.db]\nkind = \"external\"\nreadiness = { postgres = \"postgres://app@db.internal/app?sslmode=verify-full\", ca_file = \"certs/db-ca.pem\" }\n\n[services.api]\nreadiness = { http = \"https://127.0.0.1:8443/health\", ca_file = \"certs/ca.pem\", cert_file = \"certs/probe.pem\", key_file = \"certs/probe.key\" }\n```"
        }
        "start_breaker" => {
            "Counts failed start attempts in a row (spawn failures, exits before ready, \
             start timeouts). At `failures` the breaker opens: the next attempt waits \
             `cooldown` instead of the retry backoff. After the cooldown one trial attempt \
             runs: success closes the breaker, failure opens it again for another `cooldown`. \
             Each attempt still counts against `retry.attempts`, so set it above `failures`. \
             `gantry restart` (or `gantry start` on a failed service) closes it.\n\n```toml\nretry = { attempts = 10, backoff = \"1s\" }\nstart_breaker = { failures = 3, cooldown = \"30s\" }\n```"
        }
        "logs" => {
            "Every service's output goes to `state_dir/logs/NAME.log` (read it with \
             `gantry logs`). At `max_size` the file is renamed `NAME.log.1` (an older `.1` \
             becomes `.2`, and so on) and a new one is started; the oldest beyond `keep` is \
             deleted, so a service's logs take at most about `max_size × (keep + 1)`.\n\n\
             A service (or `[defaults]`) may set its own; the keys it leaves out come from \
             `[defaults]`, then `[settings]`. `gantry logs` reads the rotated files too, \
             oldest first.\n\n\
             ```toml\n[settings]\nlogs = { max_size = \"50MiB\", keep = 5 }\n\n\
             [services.chatty]\nlogs = { max_size = \"200MiB\" }   # keep = 5 from [settings]\n```"
        }
        "retention" => {
            "The state store (`state_dir/state.db`) records every boot with each service's \
             timings, and a mission for each failure. Once a boot is decided, and then every \
             hour, gantry deletes the boots beyond the newest `boots` (with their services' \
             records) and the missions resolved more than `missions` ago, a few hundred rows \
             at a time off the event loop. Open missions are never deleted. SQLite reuses the \
             freed pages, so the file stops growing; it does not shrink.\n\n\
             ```toml\n[settings]\nretention = { boots = 500, missions = \"90d\" }\n```"
        }
        "layers" => {
            "Services without a `layer` join the first layer. A service may only depend \
             on services in its own or an earlier layer.\n\n```toml\n[layers]\norder = [\"infra\", \"app\"]\n```"
        }
        "profiles" => {
            "`gantry up --profile NAME` runs the union of `services` and of every \
             service whose priority is listed, plus their hard (required) dependencies; \
             soft dependencies that were not selected are dropped."
        }
        _ => return None,
    })
}

/// The type column of the reference.
fn ty_text(ty: &Ty) -> String {
    match ty {
        Ty::Str => "string".into(),
        Ty::Bool => "boolean".into(),
        Ty::Int { min, max } => format!("integer, {min} to {max}"),
        Ty::Duration => "[duration](#durations)".into(),
        Ty::Size { min } => format!(
            "[size](#sizes), at least {}",
            crate::size::format_size(*min)
        ),
        Ty::Cpu => format!(
            "number of CPUs or percentage string, {} to {}",
            crate::cpu::CPU_MIN,
            crate::cpu::CPU_MAX
        ),
        Ty::Enum(options) => format!(
            "one of {}",
            options
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::Command => "[command](#commands)".into(),
        Ty::StrOrList => "string or array of strings".into(),
        Ty::StrList => "array of strings".into(),
        Ty::IntList { min, max } => format!("array of integers, {min} to {max}"),
        Ty::Table(keys) => match nested_anchor(keys) {
            Some(anchor) => format!("table, see [`{anchor}`](#{anchor})"),
            None => "table".into(),
        },
        Ty::TableList(keys) => match nested_anchor(keys) {
            Some(anchor) => format!("array of tables, see [`{anchor}`](#{anchor})"),
            None => "array of tables".into(),
        },
        Ty::MapOf(inner, placeholder) => {
            format!("table of `{placeholder}` = {}", ty_text(inner))
        }
        Ty::DependsOn => "array of names or table, see [`depends_on`](#depends_on)".into(),
        Ty::Probe => "table, see [probes](#probes)".into(),
        Ty::Any => "any value".into(),
    }
}

fn nested_anchor(keys: &[Key]) -> Option<&'static str> {
    match def_name(keys)? {
        "Retry" => Some("retry"),
        "StartLimit" => Some("start_limit"),
        "StartBreaker" => Some("start_breaker"),
        "Rollout" => Some("rollout"),
        "Logs" => Some("logs"),
        "Retention" => Some("retention"),
        "IngressTls" => Some("ingress.tls"),
        "Listener" => Some("ingress.listeners"),
        "Route" => Some("ingress.routes"),
        _ => None,
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn default_text(key: &Key) -> String {
    match (key.default, default_json(key)) {
        (Some(d), Some(_)) => format!("`{d}`"),
        (Some(d), None) => cell(d),
        (None, _) => "—".into(),
    }
}

fn key_table(out: &mut String, rows: &[Key]) {
    out.push_str("| key | type | default | meaning |\n| --- | --- | --- | --- |\n");
    for key in rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            key.name,
            cell(&ty_text(&key.ty)),
            default_text(key),
            cell(key.doc)
        );
    }
}

/// One section of the reference: a heading, the registry's doc, a note, the key table.
struct Section {
    anchor: &'static str,
    heading: String,
    doc: Option<String>,
    rows: Vec<Key>,
}

fn write_section(out: &mut String, s: &Section) {
    let _ = write!(out, "\n<a id=\"{}\"></a>\n\n## {}\n\n", s.anchor, s.heading);
    if let Some(doc) = &s.doc {
        let _ = writeln!(out, "{doc}\n");
    }
    if let Some(note) = section_note(s.anchor) {
        let _ = writeln!(out, "{note}\n");
    }
    key_table(out, &s.rows);
}

/// The section of a top-level key.
fn top_section(key: &'static Key) -> Section {
    let (heading, rows) = match key.ty {
        Ty::Table(t) => (format!("`[{}]`", key.name), t.to_vec()),
        Ty::MapOf(&Ty::Table(t), placeholder) => {
            (format!("`[{}.{placeholder}]`", key.name), t.to_vec())
        }
        Ty::MapOf(inner, placeholder) => (
            format!("`[{}]`", key.name),
            vec![Key {
                name: placeholder,
                ty: *inner,
                default: None,
                doc: key.doc,
            }],
        ),
        _ => (format!("`{}`", key.name), vec![*key]),
    };
    Section {
        anchor: key.name,
        heading,
        doc: Some(key.doc.to_string()),
        rows,
    }
}

/// The sections for keys nested in a table (dependencies, probes, retry, start_limit).
fn nested_sections(table: &'static [Key]) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for key in table {
        let section = match key.ty {
            Ty::DependsOn => Section {
                anchor: "depends_on",
                heading: "`depends_on`".into(),
                doc: Some(key.doc.to_string()),
                rows: DEPENDENCY.to_vec(),
            },
            Ty::Probe => {
                let names: Vec<String> = table
                    .iter()
                    .filter(|k| matches!(k.ty, Ty::Probe))
                    .map(|k| format!("`{}`", k.name))
                    .collect();
                let docs: Vec<String> = table
                    .iter()
                    .filter(|k| matches!(k.ty, Ty::Probe))
                    .map(|k| format!("`{}`: {}", k.name, k.doc))
                    .collect();
                Section {
                    anchor: "probes",
                    heading: format!("Probes: {}", names.join(", ")),
                    doc: Some(docs.join(" ")),
                    rows: keys::PROBE.to_vec(),
                }
            }
            Ty::Table(t) | Ty::TableList(t) => match nested_anchor(t) {
                Some(anchor) => Section {
                    anchor,
                    heading: format!("`{anchor}`"),
                    doc: Some(key.doc.to_string()),
                    rows: t.to_vec(),
                },
                None => continue,
            },
            _ => continue,
        };
        if out.iter().all(|s| s.anchor != section.anchor) {
            out.push(section);
        }
    }
    out
}

/// The Markdown key reference (`docs/config.md`), generated from the key registry.
pub fn config_reference() -> String {
    let mut out = String::from("# gantry.toml reference\n\n");
    out.push_str(INTRO);
    out.push('\n');
    // Nested tables are documented after the last top-level section that uses them
    // (retry is used by [defaults] and [services.NAME]: it follows the services).
    let nested: Vec<(usize, Vec<Section>)> = keys::TOP
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let sections = match key.ty {
                Ty::Table(t) | Ty::MapOf(&Ty::Table(t), _) => nested_sections(t),
                _ => Vec::new(),
            };
            (i, sections)
        })
        .collect();
    for (i, key) in keys::TOP.iter().enumerate() {
        write_section(&mut out, &top_section(key));
        for section in &nested[i].1 {
            let used_later = nested[i + 1..]
                .iter()
                .any(|(_, later)| later.iter().any(|s| s.anchor == section.anchor));
            if !used_later {
                write_section(&mut out, section);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_pattern_agrees_with_valid_name() {
        let re = regex::Regex::new(NAME_PATTERN).unwrap();
        let long = "a".repeat(63);
        let too_long = "a".repeat(64);
        for name in [
            "api", "db-1", "a.b_c", "9x", &long, &too_long, "", "-x", "_x", "a b", "é", "a/b",
        ] {
            assert_eq!(re.is_match(name), crate::valid_name(name), "{name:?}");
        }
    }

    #[test]
    fn duration_pattern_accepts_only_parsable_durations() {
        let re = regex::Regex::new(DURATION_PATTERN).unwrap();
        for ok in ["250ms", "1s", "1.5s", "5m", "1m30s", "2h", "1d", "10us"] {
            assert!(re.is_match(ok), "{ok}");
            assert!(crate::duration::parse_duration(ok).is_ok(), "{ok}");
        }
        for bad in ["5", "", "ms", "5 s", "1x", "s5"] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn every_registry_key_is_documented_and_in_the_schema() {
        let doc = config_reference();
        let schema = json_schema();
        for (def, table) in named_tables() {
            for key in table {
                assert!(
                    doc.contains(&format!("| `{}` |", key.name)),
                    "{def}.{} missing from the reference",
                    key.name
                );
                assert!(
                    schema["$defs"][def]["properties"][key.name].is_object(),
                    "{def}.{} missing from the schema",
                    key.name
                );
            }
        }
        for key in keys::TOP {
            assert!(schema["properties"][key.name].is_object(), "{}", key.name);
            assert!(doc.contains(&format!("<a id=\"{}\"></a>", key.name)));
        }
    }

    #[test]
    fn defaults_are_parsed_when_they_are_json() {
        let schema = json_schema();
        let settings = &schema["$defs"]["Settings"]["properties"];
        assert_eq!(settings["state_dir"]["default"], json!(".gantry"));
        assert_eq!(settings["allow_degraded"]["default"], json!(true));
        let service = &schema["$defs"]["Service"]["properties"];
        assert!(service["working_dir"].get("default").is_none());
        assert!(
            service["working_dir"]["description"]
                .as_str()
                .unwrap()
                .contains("Default: the file's directory.")
        );
    }

    #[test]
    fn sections_come_in_the_documented_order() {
        let doc = config_reference();
        let order = [
            "## `[settings]`",
            "## `retention`",
            "## `[env]`",
            "## `env_file`",
            "## `[secrets.NAME]`",
            "## `[defaults]`",
            "## `[services.NAME]`",
            "## `depends_on`",
            "## Probes: `readiness`, `liveness`, `startup`",
            "## `retry`",
            "## `start_breaker`",
            "## `start_limit`",
            "## `logs`",
            "## `[layers]`",
            "## `[profiles.NAME]`",
        ];
        let positions: Vec<usize> = order
            .iter()
            .map(|h| doc.find(h).unwrap_or_else(|| panic!("{h} missing")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }
}

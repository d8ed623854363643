//! Keeps `docs/gantry.schema.json` and `docs/config.md` in step with the key registry, and checks the schema against sample files.
//!
//! Run `GANTRY_UPDATE_DOCS=1 cargo test -p gantry-spec --test docs_sync` to rewrite
//! both documents after changing `keys.rs` or `schema.rs`.

use gantry_spec::schema::{config_reference, json_schema, json_schema_text};
use serde_json::{Value, json};
use std::path::PathBuf;

const UPDATE: &str = "GANTRY_UPDATE_DOCS=1 cargo test -p gantry-spec --test docs_sync";

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn updating() -> bool {
    std::env::var("GANTRY_UPDATE_DOCS").is_ok_and(|v| v == "1")
}

/// Compares the committed file with the generated text, or rewrites it when updating.
fn sync(relative: &str, fresh: &str) {
    let path = repo_root().join(relative);
    let current = std::fs::read_to_string(&path).ok();
    if updating() {
        if current.as_deref() != Some(fresh) {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, fresh)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            eprintln!("updated {relative}");
        }
        return;
    }
    let Some(current) = current else {
        panic!("{relative} is missing: run `{UPDATE}`");
    };
    if current != fresh {
        let line = current
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| current.lines().count().min(fresh.lines().count()))
            + 1;
        panic!("{relative} is stale: run `{UPDATE}` (first difference at line {line})");
    }
}

#[test]
fn schema_file_is_up_to_date() {
    sync("docs/gantry.schema.json", &json_schema_text());
}

#[test]
fn reference_file_is_up_to_date() {
    sync("docs/config.md", &config_reference());
}

// --- A small validator for the JSON Schema keywords the generated schema uses. ---
// (The `jsonschema` crate would add ~120 crates and about a minute of cold build on
// a 2-core machine for one test, so this covers exactly what the schema needs and
// fails loudly on any keyword it does not know.)

fn resolve<'a>(root: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local $ref are supported: {reference}"));
    root.pointer(pointer)
        .unwrap_or_else(|| panic!("dangling $ref {reference}"))
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        other => panic!("unknown type {other}"),
    }
}

/// Every error found, each as "path: reason".
fn validate(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        panic!("schema at {path} is not an object: {schema}");
    };
    let mut fail = |why: String| errors.push(format!("{path}: {why}"));
    let mut local = Vec::new();
    for (keyword, arg) in obj {
        match keyword.as_str() {
            "$schema" | "$id" | "$defs" | "title" | "description" | "default" | "examples"
            | "then" => {}
            "$ref" => validate(
                root,
                resolve(root, arg.as_str().unwrap()),
                v,
                path,
                &mut local,
            ),
            "type" => {
                let ok = match arg {
                    Value::String(t) => type_matches(t, v),
                    Value::Array(ts) => ts.iter().any(|t| type_matches(t.as_str().unwrap(), v)),
                    _ => panic!("bad type keyword"),
                };
                if !ok {
                    fail(format!("expected type {arg}, found {v}"));
                }
            }
            "enum" => {
                if !arg.as_array().unwrap().contains(v) {
                    fail(format!("{v} not in {arg}"));
                }
            }
            "const" => {
                if arg != v {
                    fail(format!("{v} is not {arg}"));
                }
            }
            "pattern" => {
                if let Some(s) = v.as_str() {
                    let re = regex::Regex::new(arg.as_str().unwrap()).unwrap();
                    if !re.is_match(s) {
                        fail(format!("{s:?} does not match {arg}"));
                    }
                }
            }
            "minLength" => {
                if let Some(s) = v.as_str()
                    && (s.chars().count() as u64) < arg.as_u64().unwrap()
                {
                    fail(format!("{s:?} is shorter than {arg}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(n), Some(limit)) = (v.as_f64(), arg.as_f64()) {
                    let ok = if keyword == "minimum" {
                        n >= limit
                    } else {
                        n <= limit
                    };
                    if !ok {
                        fail(format!("{n} violates {keyword} {limit}"));
                    }
                }
            }
            "minItems" => {
                if let Some(a) = v.as_array()
                    && (a.len() as u64) < arg.as_u64().unwrap()
                {
                    fail(format!("fewer than {arg} items"));
                }
            }
            "items" => {
                if let Some(a) = v.as_array() {
                    for (i, item) in a.iter().enumerate() {
                        validate(root, arg, item, &format!("{path}[{i}]"), &mut local);
                    }
                }
            }
            "required" => {
                if let Some(o) = v.as_object() {
                    for k in arg.as_array().unwrap() {
                        if !o.contains_key(k.as_str().unwrap()) {
                            fail(format!("missing required key {k}"));
                        }
                    }
                }
            }
            "dependentRequired" => {
                if let Some(o) = v.as_object() {
                    for (k, needs) in arg.as_object().unwrap() {
                        for n in needs.as_array().unwrap() {
                            if o.contains_key(k) && !o.contains_key(n.as_str().unwrap()) {
                                fail(format!("{k} needs {n}"));
                            }
                        }
                    }
                }
            }
            "properties" | "additionalProperties" | "propertyNames" => {
                let Some(o) = v.as_object() else { continue };
                for (k, item) in o {
                    let sub = format!("{path}.{k}");
                    if keyword == "propertyNames" {
                        validate(root, arg, &json!(k), &sub, &mut local);
                    } else if keyword == "properties" {
                        if let Some(s) = arg.get(k) {
                            validate(root, s, item, &sub, &mut local);
                        }
                    } else if obj.get("properties").and_then(|p| p.get(k)).is_none() {
                        validate(root, arg, item, &sub, &mut local);
                    }
                }
            }
            "oneOf" | "anyOf" => {
                let passing = arg
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| {
                        let mut e = Vec::new();
                        validate(root, s, v, path, &mut e);
                        e.is_empty()
                    })
                    .count();
                let ok = if keyword == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !ok {
                    fail(format!("{passing} branches of {keyword} match"));
                }
            }
            "not" => {
                let mut e = Vec::new();
                validate(root, arg, v, path, &mut e);
                if e.is_empty() {
                    fail("matches a `not` schema".into());
                }
            }
            "if" => {
                let mut e = Vec::new();
                validate(root, arg, v, path, &mut e);
                if e.is_empty()
                    && let Some(then) = obj.get("then")
                {
                    validate(root, then, v, path, &mut local);
                }
            }
            other => panic!("the test validator does not know the keyword `{other}`"),
        }
    }
    errors.extend(local);
}

fn errors_for(toml_text: &str) -> Vec<String> {
    let schema = json_schema();
    let doc: Value = toml::from_str(toml_text).expect("sample is valid TOML");
    let mut errors = Vec::new();
    validate(&schema, &schema, &doc, "$", &mut errors);
    errors
}

const SAMPLE: &str = r#"
env_file = ".env"

[settings]
state_dir = ".gantry"
api = "127.0.0.1:7070"
shutdown_timeout = "1m30s"
allow_degraded = false
logs = { max_size = "1MiB", keep = 5 }
retention = { boots = 500, missions = "90d" }

[env]
APP_ENV = "${APP_ENV:-development}"
WORKERS = 4
DEBUG = true

[secrets.db_password]
from_file = "secrets/db"
services = ["api"]

[defaults]
stop_timeout = "10s"
retry = { attempts = 3, backoff = "500ms", max_backoff = "10s", jitter = true }
start_limit = { burst = 5, interval = "10s" }
start_breaker = { failures = 2, cooldown = "30s" }
logs = { keep = 2 }

[layers]
order = ["infra", "app"]

[services.db]
kind = "external"
layer = "infra"
readiness = { postgres = "postgres://localhost/app", rw = true, period = "2s" }

[services.migrate]
kind = "task"
command = ["sh", "-c", "echo migrate"]
depends_on = ["db"]
layer = "infra"

[services.api]
command = "python3 app.py"
depends_on = { db = "ready", migrate = { condition = "completed", required = false } }
priority = "critical"
ports = [8000, 8001]
restart = "on-failure"
stop_signal = "SIGINT"
readiness = { http = "http://127.0.0.1:8000/health", expect_status = 200 }
liveness = { tcp = "127.0.0.1:8000", failure_threshold = 5 }
startup = { log = "listening on", timeout = "2s" }
layer = "app"
env = { PORT = "8000" }
future_key = "unknown keys are only warnings"

[services.worker]
command = "./worker"
liveness = { notify = true, watchdog = "10s", failure_threshold = 1 }
logs = { max_size = "50MiB", keep = 10 }

[profiles.minimal]
priorities = ["critical"]
services = ["api"]
"#;

#[test]
fn schema_accepts_a_valid_sample() {
    // The sample is valid for gantry itself too (only a warning for the unknown key).
    let source = gantry_spec::Source::new("sample.toml", SAMPLE);
    let loaded = gantry_spec::decode(&source, &|_| None);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let errors = errors_for(SAMPLE);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn schema_accepts_the_starter_template() {
    let path = repo_root().join("crates/gantry-cli/src/templates/starter.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return; // another crate's file; nothing to check when it moved
    };
    let errors = errors_for(&text);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn schema_rejects_what_gantry_rejects() {
    let cases = [
        ("[settings]\nshutdown_timeout = 5\n", "bare number duration"),
        ("[settings]\nshutdown_timeout = \"5 parsecs\"\n", "bad unit"),
        ("[services.a]\nkind = \"process\"\n", "missing command"),
        ("[services.a]\ncommand = []\n", "empty command"),
        (
            "[services.a]\ncommand = \"x\"\nreadiness = { period = \"1s\" }\n",
            "probe without a kind",
        ),
        (
            "[services.a]\ncommand = \"x\"\nreadiness = { tcp = \"h:1\", http = \"http://h\" }\n",
            "probe with two kinds",
        ),
        (
            "[services.a]\ncommand = \"x\"\nreadiness = { http = \"ftp://h\" }\n",
            "non-http url",
        ),
        (
            "[services.a]\ncommand = \"x\"\ndepends_on = { b = \"healthy\" }\n",
            "bad condition",
        ),
        (
            "[services.a]\ncommand = \"x\"\ndepends_on = \"b\"\n",
            "depends_on string",
        ),
        (
            "[services.a]\ncommand = \"x\"\nports = [0]\n",
            "port out of range",
        ),
        (
            "[services.a]\ncommand = \"x\"\npriority = \"urgent\"\n",
            "bad enum",
        ),
        ("[services.\"-bad\"]\ncommand = \"x\"\n", "bad service name"),
        ("[secrets.s]\nrequired = true\n", "secret without a source"),
        (
            "[secrets.s]\nfrom_env = \"A\"\nfrom_file = \"f\"\n",
            "secret with two sources",
        ),
        (
            "[defaults]\nretry = { attempts = 0 }\n",
            "attempts below minimum",
        ),
        (
            "[defaults]\nstart_breaker = { failures = 0 }\n",
            "breaker failures below minimum",
        ),
        (
            "[defaults]\nstart_breaker = { cooldown = 30 }\n",
            "breaker cooldown without a unit",
        ),
        ("[defaults]\nstart_breaker = 3\n", "breaker not a table"),
        (
            "[settings]\nlogs = { max_size = \"10MB\" }\n",
            "decimal size unit",
        ),
        (
            "[settings]\nlogs = { max_size = 1024 }\n",
            "log size below 4 KiB",
        ),
        ("[settings]\nlogs = { keep = -1 }\n", "negative keep"),
        ("[settings]\nlogs = \"10MiB\"\n", "logs not a table"),
        (
            "[services.a]\ncommand = \"x\"\nreadiness = { http = \"https://h\", cert_file = \"c.pem\" }\n",
            "client certificate without its key",
        ),
    ];
    for (text, what) in cases {
        assert!(
            !errors_for(text).is_empty(),
            "schema accepted {what}:\n{text}"
        );
        let source = gantry_spec::Source::new("case.toml", text);
        assert!(
            gantry_spec::decode(&source, &|_| None).has_errors(),
            "gantry accepted {what}, so the schema should too:\n{text}"
        );
    }
}

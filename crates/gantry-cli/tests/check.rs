//! Snapshot tests of `gantry check`: one per diagnostic class, pinning the exact text users see.

use std::path::PathBuf;
use std::process::Command;

/// Writes `toml` to a fresh directory as gantry.toml, runs `gantry check` there and
/// returns "exit N" followed by stdout and stderr. Paths are relative, so snapshots are stable.
fn check(name: &str, toml: &str) -> String {
    run(name, toml, &["check"], &[])
}

fn run(name: &str, toml: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempdir(name);
    std::fs::write(dir.join("gantry.toml"), toml).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gantry"));
    cmd.args(args)
        .current_dir(&dir)
        .env_remove("GANTRY_TEST_UNSET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    format!(
        "exit {}\n{}{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-check-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

macro_rules! snap {
    ($name:ident, $toml:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), check(stringify!($name), $toml));
        }
    };
}

snap!(
    valid_file,
    r#"
[services.db]
command = "db"
priority = "critical"
readiness = { tcp = "127.0.0.1:5432" }

[services.api]
command = ["api", "--port", "8000"]
depends_on = ["db"]
"#
);

snap!(syntax, "[services.db\ncommand = \"x\"\n");

snap!(
    unknown_key,
    r#"
[settings]
colour = "yes"

[services.db]
comand = "x"
"#
);

snap!(
    wrong_type,
    r#"
[services.db]
command = 42
depends_on = "api"
"#
);

snap!(
    bad_duration,
    r#"
[services.db]
command = "db"
stop_timeout = 5
start_timeout = "5 parsecs"
"#
);

snap!(
    invalid_value,
    r#"
[services.db]
command = "db"
priority = "critcal"
restart = "sometimes"
"#
);

snap!(
    out_of_range,
    r#"
[services.db]
command = "db"
readiness = { tcp = "127.0.0.1:1", success_threshold = 0, failure_threshold = 5000 }
retry = { attempts = 0 }
"#
);

snap!(
    bad_command,
    r#"
[services.db]
command = "db 'unclosed"

[services.api]
command = []
"#
);

snap!(
    missing_command,
    r#"
[services.db]
priority = "high"
"#
);

snap!(
    probe_kind,
    r#"
[services.db]
command = "db"
readiness = { period = "1s" }
liveness = { tcp = "127.0.0.1:1", http = "http://127.0.0.1:1/" }
startup = { tcp = "nohostport" }
"#
);

snap!(
    unknown_dependency,
    r#"
[services.db]
command = "db"
readiness = { tcp = "127.0.0.1:5432" }

[services.api]
command = "api"
depends_on = ["dbb"]
"#
);

snap!(
    dependency_cycle,
    r#"
[services.api]
command = "api"
depends_on = ["worker"]
readiness = { tcp = "127.0.0.1:8000" }

[services.worker]
command = "worker"
depends_on = ["queue"]
readiness = { tcp = "127.0.0.1:8001" }

[services.queue]
command = "queue"
depends_on = { api = "ready" }
readiness = { tcp = "127.0.0.1:8002" }
"#
);

snap!(
    self_dependency,
    r#"
[services.api]
command = "api"
depends_on = ["api"]
"#
);

snap!(
    bad_condition,
    r#"
[services.db]
command = "db"
readiness = { tcp = "127.0.0.1:5432" }

[services.api]
command = "api"
depends_on = { db = "completed" }
"#
);

snap!(
    no_readiness_probe,
    r#"
[services.db]
command = "db"

[services.api]
command = "api"
depends_on = ["db"]
"#
);

snap!(
    unknown_layer,
    r#"
[layers]
order = ["stores", "apps"]

[services.db]
command = "db"
layer = "store"

[services.api]
command = "api"
layer = "ui"
"#
);

snap!(
    layer_order,
    r#"
[layers]
order = ["stores", "apps"]

[services.db]
command = "db"
layer = "stores"
depends_on = { api = "started" }

[services.api]
command = "api"
layer = "apps"
"#
);

snap!(
    invalid_name,
    r#"
[services."my service"]
command = "x"

[services.-api]
command = "x"
"#
);

snap!(
    duplicate_name,
    r#"
[services.api]
command = "x"

[services.API]
command = "y"
"#
);

snap!(
    unknown_service,
    r#"
[secrets.TOKEN]
from_env = "TOKEN"
services = ["apii"]

[profiles.minimal]
services = ["dbb"]

[services.api]
command = "x"
"#
);

snap!(
    port_conflict,
    r#"
[services.a]
command = "a"
ports = [8000]

[services.b]
command = "b"
ports = [8000]
"#
);

snap!(
    secret_source,
    r#"
[secrets.A]
required = true

[secrets.B]
from_env = "B"
from_file = "/run/b"
"#
);

snap!(
    interpolation,
    r#"
[env]
A = "${GANTRY_TEST_UNSET}"
B = "${GANTRY_TEST_UNSET:-fallback}"
C = "${not valid}"
D = "${GANTRY_TEST_UNSET:?the port the API listens on}"

[services.api]
command = "x"
"#
);

snap!(
    duplicate_dependency,
    r#"
[services.db]
command = "db"
readiness = { tcp = "127.0.0.1:5432" }

[services.api]
command = "api"
depends_on = ["db", "db"]
"#
);

snap!(
    ignored_key,
    r#"
[services.db]
kind = "external"
command = "postgres"
readiness = { postgres = "postgres://127.0.0.1:5432/postgres" }
"#
);

#[test]
fn json_output() {
    let out = run(
        "json",
        "[services.api]\ncommand = \"x\"\ndepends_on = [\"db\"]\n",
        &["check", "--json"],
        &[],
    );
    insta::assert_snapshot!("json_output", out);
}

#[test]
fn starter_file_from_init_is_valid() {
    let dir = tempdir("init");
    let _ = std::fs::remove_file(dir.join("gantry.toml"));
    let gantry = env!("CARGO_BIN_EXE_gantry");
    let init = Command::new(gantry)
        .arg("init")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(init.status.success());
    let again = Command::new(gantry)
        .arg("init")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(2),
        "init must not overwrite without --force"
    );
    let check = Command::new(gantry)
        .arg("check")
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        check.stderr.is_empty(),
        "the starter file must check without warnings: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn missing_file_is_a_usage_error_with_a_hint() {
    let dir = tempdir("missing");
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["-f", "nope.toml", "check"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read nope.toml") && err.contains("gantry init"),
        "{err}"
    );
}

snap!(
    insecure_tls_probe,
    r#"
[services.edge]
kind = "external"
readiness = { http = "https://edge.internal:8443/health", insecure_skip_verify = true }

[services.db]
kind = "external"
readiness = { postgres = "postgres://app@db/app?sslmode=verify-full", cert_file = "probe.pem" }
"#
);

snap!(
    ingress_valid_with_replicas,
    r#"
[ingress]
listen = "127.0.0.1:8080"

[[ingress.routes]]
path = "/api"
service = "api"

[services.api]
command = ["api", "--port", "${PORT}"]
replicas = 2
replica_ports = "9100-9109"
readiness = { http = "http://127.0.0.1:${PORT}/health" }

[services.web]
command = "web"
depends_on = ["api"]
"#
);

snap!(
    ingress_errors,
    r#"
[ingress]
listeners = [{ listen = "0.0.0.0:80", cert = "tls/cert.pem" }, { listen = "nowhere" }]

[[ingress.routes]]
path = "/api"
service = "apii"

[[ingress.routes]]
path = "/web"
service = "web"

[[ingress.routes]]
path = "/web/"
service = "api"

[services.api]
command = "api"
upstream = "127.0.0.1:8000"

[services.web]
command = "web"

[services.job]
kind = "task"
command = "job"
replicas = 3

[services.pool]
command = "pool --port ${PORT}"
replicas = 5
replica_ports = "9100-9102"
"#
);

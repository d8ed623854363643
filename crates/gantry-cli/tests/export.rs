//! `gantry export prometheus-rules` on a stack file: YAML that Prometheus' own `promtool check rules`
//! accepts, naming the stack's critical services (instances of replicated ones included).

mod support;

use support::*;

#[test]
fn exported_prometheus_rules_pass_promtool_and_name_the_critical_services() {
    let dir = tempdir("export-rules");
    std::fs::write(
        dir.join("gantry.toml"),
        r#"
[services.db]
command = "sleep 60"
priority = "critical"

[services.api]
command = "sleep 60"
priority = "critical"
replicas = 2
replica_ports = "20100-20101"

[services.ui]
command = "sleep 60"
priority = "low"

[alerts.rules.readiness_lost]
except = ["api.2"]
for = "2m"

[alerts.rules.api_restarts]
severity = "P2"
signal = "service_restarts_total"
service = "db"
window = "10m"
above = 5
summary = "{service} restarts a lot"
"#,
    )
    .unwrap();
    let out = std::process::Command::new(gantry())
        .args(["export", "prometheus-rules"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    // The regex `db|api\.1|api\.2`, quoted for PromQL, then for YAML.
    assert!(
        yaml.contains(r#"service=~\"db|api\\\\.1|api\\\\.2\""#),
        "{yaml}"
    );
    assert!(
        !yaml.contains("ui"),
        "a low service is not critical: {yaml}"
    );
    // What /metrics cannot express is said, not dropped silently.
    assert!(String::from_utf8_lossy(&out.stderr).contains("disk_low: not exported"));
    // The user's rule and the override, as the evaluator runs them.
    assert!(yaml.contains("alert: \"api_restarts\""), "{yaml}");
    assert!(
        yaml.contains("increase(gantry_service_restarts_total{service=\\\"db\\\"}[10m]) > 5"),
        "{yaml}"
    );
    assert!(yaml.contains("service!=\\\"api.2\\\""), "{yaml}");
    let file = dir.join("rules.yml");
    std::fs::write(&file, &yaml).unwrap();
    let check = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs (scripts/setup installs Debian's prometheus package)");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

const STACK: &str = r#"
[secrets.DB_PASSWORD]
from_env = "EXPORT_TEST_DB_PASSWORD"
services = ["api", "db_main"]

[services.db_main]
command = "postgres -D /data"
priority = "critical"
stop_signal = "SIGINT"
stop_timeout = "20s"
memory_max = "512MiB"
cpu_max = 0.5
data_dir = "/var/lib/postgresql/data"
data_size = "20GiB"
readiness = { postgres = "postgres://app:hunter2-in-url@127.0.0.1:5432/app", period = "500ms", success_threshold = 2 }

[services.cache]
kind = "external"
readiness = { tcp = "redis.internal:6379" }

[services.seed]
kind = "task"
command = "seed --all"
depends_on = ["db_main"]

[services.api]
command = "api --port ${PORT}"
replicas = 3
replica_ports = "9100-9102"
upstream = "127.0.0.1:${PORT}"
env = { LOG_LEVEL = "info", API_TOKEN = "tok-literal-value" }
depends_on = { db_main = "ready", seed = "completed", cache = "ready" }
readiness = { http = "http://127.0.0.1:${PORT}/health", period = "2s" }
liveness = { exec = "curl -fs http://127.0.0.1:${PORT}/live", period = "10s", success_threshold = 2 }

[services.worker]
command = "worker"
priority = "low"
data_dir = "spool"
working_dir = "/srv/worker"
depends_on = { api = "ready" }
readiness = { log = "ready" }

[services.mailer]
command = "mailer"
depends_on = { api = "started", worker = "ready", cache = "started" }
"#;

fn export(dir: &std::path::Path, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(gantry())
        .args(["export", "kubernetes"])
        .args(args)
        .env("EXPORT_TEST_DB_PASSWORD", "s3cret-from-env")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `kubernetes-validate` (PyPI, in .venv-tests from scripts/setup): the Kubernetes OpenAPI schemas
/// of two versions, strict (no unknown fields).
fn kubernetes_validate(file: &std::path::Path, version: &str) {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.venv-tests/bin/kubernetes-validate");
    let out = std::process::Command::new(&venv)
        .args(["--strict", "-k", version])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{} runs (scripts/setup installs it): {e}", venv.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes {version}:\n{text}");
    assert!(!text.contains("ERROR") && !text.contains("WARN"), "{text}");
}

#[test]
fn a_kubernetes_export_validates_against_two_kubernetes_versions_and_keeps_secrets_out() {
    let dir = tempdir("export-k8s");
    std::fs::write(dir.join("gantry.toml"), STACK).unwrap();
    let (yaml, warnings) = export(
        &dir,
        &[
            "--namespace",
            "shop",
            "--image-map",
            "api=shop/api:1.4",
            "--image",
            "shop/base:1",
        ],
    );
    let file = dir.join("k8s.yaml");
    std::fs::write(&file, &yaml).unwrap();
    for v in ["1.30.0", "1.37.0"] {
        kubernetes_validate(&file, v);
    }
    // No secret value anywhere; the secret is a reference, the URL's password is gone.
    for secret in ["s3cret-from-env", "hunter2-in-url", "tok-literal-value"] {
        assert!(
            !yaml.contains(secret) && !warnings.contains(secret),
            "{secret} leaked"
        );
    }
    assert!(yaml.contains(r#"name: "db-password""#), "{yaml}");
    // What did not translate is said.
    for expected in [
        "db_main: named `db-main`",
        "cache: external, not deployed",
        "api: waits for seed to complete: an init container runs `kubectl wait --for=condition=complete job/seed`",
        "api: waits for db_main to be ready with its postgres probe: the URL holds a password, so it is read from Secret `db-main-probe-url`",
        "mailer: depends on worker, which has no probe or port to wait on; not waited for",
        "worker: readinessProbe: a log probe has no Kubernetes equivalent",
        "livenessProbe: success_threshold 2 becomes 1",
        "API_TOKEN looks like a secret",
        "stop_signal INT becomes a preStop hook",
        "readinessProbe: period 500ms rounds up to 1 s",
        "db_main: keeps data in /var/lib/postgresql/data: a StatefulSet with a 20Gi volume per pod",
        "worker: data_dir `spool` is relative to the file on this host; the volume is mounted at /srv/worker/spool",
    ] {
        assert!(
            warnings.contains(expected),
            "missing warning `{expected}`:\n{warnings}"
        );
    }
    // The shape: replicas, the init container waiting on db's postgres port, the Job.
    assert!(yaml.contains("replicas: 3"));
    // Each dependency waited for by its condition: `ready` with the dependency's own probe
    // (the store URL's password from a Secret, expanded by Kubernetes), `started` by its port,
    // `completed` by its Job, through a ServiceAccount that may only read that Job.
    for expected in [
        r#"- "$(GANTRY_PROBE_URL)""#,
        r#"name: "db-main-probe-url""#,
        r#"- "postgres""#,
        r#"- "tcp://api:9100""#,
        r#"- "http://api:9100/health""#,
        r#"- "tcp://redis.internal:6379""#,
        r#"- "redis.internal:6379""#,
        r#"- "job/seed""#,
        r#"serviceAccountName: "gantry-job-waiter""#,
        r#"kind: "RoleBinding""#,
        r#"- "seed""#,
    ] {
        assert!(yaml.contains(expected), "missing `{expected}`:\n{yaml}");
    }
    // db_main's port (from its postgres probe) has a Service, so `db-main` resolves.
    assert!(yaml.contains(r#"name: "tcp-5432""#), "{yaml}");
    assert!(yaml.contains(r#"kind: "Job""#));
    // A service that keeps data is a StatefulSet with its volume and a headless Service;
    // the others stay Deployments.
    assert_eq!(yaml.matches(r#"kind: "StatefulSet""#).count(), 2, "{yaml}");
    assert_eq!(yaml.matches(r#"kind: "Deployment""#).count(), 2, "{yaml}");
    assert!(
        yaml.contains(r#"serviceName: "db-main-headless""#),
        "{yaml}"
    );
    assert!(yaml.contains(r#"clusterIP: "None""#), "{yaml}");
    assert!(yaml.contains(r#"storage: "20Gi""#), "{yaml}");
    assert!(
        yaml.contains(r#"storage: "1Gi""#),
        "the default size: {yaml}"
    );
    assert!(
        yaml.contains(r#"mountPath: "/var/lib/postgresql/data""#),
        "{yaml}"
    );
    assert!(yaml.contains(r#"priorityClassName: "gantry-critical""#));
    insta::assert_snapshot!("kubernetes_export", yaml);
}

#[test]
fn gantry_probe_runs_one_probe_and_says_so_in_its_exit_code() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let run = |args: &[&str]| {
        let out = std::process::Command::new(gantry())
            .arg("probe")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, out) = run(&["tcp", &open]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["tcp", &format!("127.0.0.1:{closed}"), "--timeout", "2s"]);
    assert_eq!(code, 1, "{out}");
    // A store URL's password never reaches the output.
    let (code, out) = run(&[
        "postgres",
        &format!("postgres://app:pw-in-the-url@127.0.0.1:{closed}/app"),
        "--timeout",
        "2s",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("pw-in-the-url"), "{out}");
    let (code, out) = run(&["smtp", "x"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("hint: tcp, http"), "{out}");
}

#[test]
fn gantry_probe_wait_probes_until_the_target_passes_or_the_wait_is_over() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = format!("127.0.0.1:{port}");
    // Nothing listens yet: the probe keeps trying.
    let child = std::process::Command::new(gantry())
        .args(["probe", "tcp", &target, "--wait", "30s", "--period", "50ms"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = {
        let mut child = child;
        let mut first = [0u8; 8];
        use std::io::Read;
        // The first "waiting:" line says an attempt failed before the listener exists.
        child
            .stderr
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        assert_eq!(&first, b"waiting:");
        let _listener = std::net::TcpListener::bind(&target).unwrap();
        // The child's own --wait is the deadline: it ends by itself, passed or not.
        child.wait_with_output().unwrap()
    };
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Closed for good: it gives up once the wait is over, and says so.
    let out = std::process::Command::new(gantry())
        .args([
            "probe", "tcp", &target, "--wait", "300ms", "--period", "50ms",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fail: not passed within 300ms"));
    let out = std::process::Command::new(gantry())
        .args(["probe", "tcp", &target, "--wait", "1s", "--period", "0s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_kubernetes_export_says_cluster_is_not_translated_and_keeps_its_password_out() {
    let dir = tempdir("export-k8s-cluster");
    std::fs::write(
        dir.join("gantry.toml"),
        "[cluster]\nstore = \"postgres://gantry:hunter2-cluster@db:5432/ops\"\n\n[services.api]\ncommand = \"api\"\n",
    )
    .unwrap();
    let (yaml, warnings) = export(&dir, &["--image", "shop/base:1"]);
    assert!(warnings.contains("[cluster]: not translated"), "{warnings}");
    assert!(!yaml.contains("hunter2-cluster") && !warnings.contains("hunter2-cluster"));
    let _ = std::fs::remove_dir_all(dir);
}

//! Decoding of `[ingress]` and of a service's `upstream`, `replicas` and `replica_ports`: the valid forms, the defaults, and every error with its position and hint.

use gantry_spec::{Diagnostic, Kind, Loaded, Severity, Source, decode};
use std::time::Duration;

fn load(text: &str) -> (Source, Loaded) {
    load_env(text, &|_| None)
}

fn load_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, env);
    (source, loaded)
}

/// `severity code key line:col` of each diagnostic, for compact assertions.
fn summary(source: &Source, d: &Diagnostic) -> String {
    let (line, col) = d.span.as_ref().map_or((0, 0), |s| source.line_col(s.start));
    format!(
        "{} {} {} {line}:{col}",
        match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        d.code,
        d.key.as_deref().unwrap_or("-"),
    )
}

fn summaries(source: &Source, loaded: &Loaded) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .map(|d| summary(source, d))
        .collect()
}

const FULL: &str = r#"[ingress]
listen = "127.0.0.1:8080"
tls = { cert = "tls/cert.pem", key = "tls/key.pem" }
listeners = [{ listen = "127.0.0.1:8081" }, { listen = "[::1]:8443", cert = "c.pem", key = "k.pem" }]
retry_budget = "2.5%"
max_body = "1MiB"
max_header = "16KiB"
header_timeout = "5s"
drain_timeout = "20s"
maintenance_page = "maintenance.html"
access_log = false
threads = 3

[[ingress.routes]]
path = "/api"
service = "api"
strip_prefix = true
timeout = "3s"
connect_timeout = "500ms"
shed_in_brownout = true
write_allow = ["/api/health-report"]

[[ingress.routes]]
host = "WWW.Example.com"
service = "web"

[services.api]
command = ["api", "--port", "${PORT}", "--name", "api-${REPLICA}"]
replicas = 3
replica_ports = "9100-9199"
env = { SELF = "127.0.0.1:${PORT}" }
readiness = { http = "http://127.0.0.1:${PORT}/health" }
liveness = { tcp = "127.0.0.1:${PORT}" }

[services.web]
command = "web"
upstream = "127.0.0.1:8000"
"#;

#[test]
fn a_full_ingress_decodes() {
    let (source, loaded) = load(FULL);
    assert!(
        loaded.diagnostics.is_empty(),
        "{:?}",
        summaries(&source, &loaded)
    );
    let ingress = loaded.spec.ingress.as_ref().expect("ingress");
    assert_eq!(ingress.threads, Some(3));
    let addrs: Vec<String> = ingress
        .listeners
        .iter()
        .map(|l| l.addr.to_string())
        .collect();
    assert_eq!(addrs, ["127.0.0.1:8080", "127.0.0.1:8081", "[::1]:8443"]);
    let tls: Vec<Option<(&str, &str)>> = ingress
        .listeners
        .iter()
        .map(|l| {
            l.tls
                .as_ref()
                .map(|t| (t.cert.value.as_str(), t.key.value.as_str()))
        })
        .collect();
    assert_eq!(
        tls,
        [
            Some(("tls/cert.pem", "tls/key.pem")),
            None,
            Some(("c.pem", "k.pem"))
        ]
    );
    assert_eq!(ingress.retry_budget, 2.5);
    assert_eq!(ingress.max_body, 1 << 20);
    assert_eq!(ingress.max_header, 16 << 10);
    assert_eq!(ingress.header_timeout.0, Duration::from_secs(5));
    assert_eq!(ingress.drain_timeout.0, Duration::from_secs(20));
    assert_eq!(
        ingress.maintenance_page.as_ref().map(|p| p.value.as_str()),
        Some("maintenance.html")
    );
    assert!(!ingress.access_log);
    let api = &ingress.routes[0];
    assert_eq!(api.path.as_ref().unwrap().value, "/api");
    assert_eq!(api.service.value, "api");
    assert!(api.strip_prefix && api.shed_in_brownout);
    assert_eq!(api.timeout.0, Duration::from_secs(3));
    assert_eq!(api.connect_timeout.0, Duration::from_millis(500));
    assert_eq!(api.write_allow[0].value, "/api/health-report");
    let web = &ingress.routes[1];
    assert_eq!(web.host.as_ref().unwrap().value, "www.example.com");
    assert!(web.path.is_none() && !web.strip_prefix && !web.shed_in_brownout);
    assert_eq!(web.timeout.0, Duration::from_secs(30));
    assert_eq!(web.connect_timeout.0, Duration::from_secs(2));

    let api = &loaded.spec.services[0];
    let r = api.replicas.as_ref().expect("replicas");
    assert_eq!(r.count.value, 3);
    assert_eq!(
        (r.port(1), r.port(3), r.port(101)),
        (Some(9100), Some(9102), None)
    );
    // ${PORT} and ${REPLICA} stay as written, for the plan to replace per instance.
    assert_eq!(
        api.command.as_ref().unwrap().value,
        ["api", "--port", "${PORT}", "--name", "api-${REPLICA}"]
    );
    assert_eq!(api.env[0].value.value, "127.0.0.1:${PORT}");
    assert_eq!(api.upstream, None);
    assert_eq!(
        loaded.spec.services[1].upstream.as_ref().unwrap().value,
        "127.0.0.1:8000"
    );
}

#[test]
fn defaults_apply_and_no_ingress_is_none() {
    let (source, loaded) = load(
        "[ingress]\nlisten = \"127.0.0.1:8080\"\n[services.a]\ncommand = \"a\"\nupstream = \"localhost:1\"\n",
    );
    assert!(
        loaded.diagnostics.is_empty(),
        "{:?}",
        summaries(&source, &loaded)
    );
    let i = loaded.spec.ingress.unwrap();
    assert_eq!(i.retry_budget, 10.0);
    assert_eq!(i.max_body, 10 << 20);
    assert_eq!(i.max_header, 64 << 10);
    assert_eq!(i.header_timeout.0, Duration::from_secs(10));
    assert_eq!(i.drain_timeout.0, Duration::from_secs(30));
    assert!(i.access_log && i.routes.is_empty() && i.maintenance_page.is_none());
    assert_eq!(i.threads, None, "unset: the proxy picks from the cores");
    let (_, loaded) = load("[services.a]\ncommand = \"a\"\n");
    assert!(loaded.spec.ingress.is_none());
    assert!(loaded.spec.services[0].replicas.is_none());
}

#[test]
fn port_outside_a_replicated_service_comes_from_the_environment() {
    let env = |name: &str| (name == "PORT").then(|| "7000".to_string());
    let (_, loaded) = load_env(
        "[services.a]\ncommand = \"a --port ${PORT}\"\n[services.b]\ncommand = \"b --port ${PORT} ${REPLICA:-x}\"\nreplicas = 2\nreplica_ports = \"9000-9001\"\n",
        &env,
    );
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(
        loaded.spec.services[0].command.as_ref().unwrap().value,
        ["a", "--port", "7000"]
    );
    assert_eq!(
        loaded.spec.services[1].command.as_ref().unwrap().value,
        ["b", "--port", "${PORT}", "${REPLICA}"]
    );
}

#[test]
fn replicas_without_ports_are_fine_unless_port_is_used() {
    let (source, loaded) = load(
        "[services.worker]\ncommand = \"worker --id ${REPLICA}\"\nreplicas = 4\n\n[services.api]\ncommand = \"api --port ${PORT}\"\nreplicas = 2\n",
    );
    assert_eq!(
        summaries(&source, &loaded),
        ["error replica-ports services.api 6:11"]
    );
    assert_eq!(loaded.spec.services[0].kind, Kind::Process);
    assert_eq!(
        loaded.spec.services[0]
            .replicas
            .as_ref()
            .unwrap()
            .count
            .value,
        4
    );
}

const BAD: &str = r#"[ingress]
listen = "localhost:8080"
listeners = [{ listen = "127.0.0.1:9090", cert = "c.pem" }, { listen = "127.0.0.1:9090" }, { cert = "x", key = "y" }]
retry_budget = "150%"
max_header = "10"
header_timeout = "0s"
maintenance_page = ""

[[ingress.routes]]
path = "/api"
service = "apii"

[[ingress.routes]]
path = "/api/"
service = "api"

[[ingress.routes]]
service = "api"
strip_prefix = true

[[ingress.routes]]
path = "api"
host = "http://x.com"
service = "nowhere"
write_allow = ["health"]
timeout = "0s"

[[ingress.routes]]
path = "/jobs"
service = "setup"

[[ingress.routes]]
path = "/static"
service = "files"

[services.api]
command = "api ${PORT}"
replicas = 200
replica_ports = "9100-9199"

[services.setup]
kind = "task"
command = "setup"
replicas = 2

[services.db]
kind = "external"
replicas = 1
upstream = "127.0.0.1"

[services.files]
command = "files"
replicas = 0
replica_ports = "9200-9100"

[services.other]
command = "other"
replicas = 2
replica_ports = "9150-9160"

[services."other.1"]
command = "x"
ports = [9201]

[services.loose]
command = "x"
replica_ports = "1-2"
"#;

#[test]
fn threads_out_of_range_is_an_error_at_the_key() {
    for bad in ["0", "65", "\"two\""] {
        let (source, loaded) = load(&format!(
            "[ingress]\nlisten = \"127.0.0.1:8080\"\nthreads = {bad}\n"
        ));
        let got = summaries(&source, &loaded);
        assert_eq!(got.len(), 1, "{bad}: {got:?}");
        assert!(
            got[0].starts_with("error ") && got[0].ends_with(" ingress.threads 3:11"),
            "{bad}: {got:?}"
        );
        assert_eq!(loaded.spec.ingress.unwrap().threads, None);
    }
}

#[test]
fn every_problem_is_reported_with_its_position() {
    let (source, loaded) = load(BAD);
    let got = summaries(&source, &loaded);
    insta::assert_snapshot!("summaries", got.join("\n"));
    let rendered: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| d.render(&source))
        .collect();
    insta::assert_snapshot!("rendered", rendered.join("\n\n"));
}

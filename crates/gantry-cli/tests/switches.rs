//! Per-service switches against a real `gantry up`: `gantry disable` stops a service and what
//! hard-depends on it and keeps it stopped across `gantry down` + `gantry up` (status says who
//! and why; the boot is degraded, never GO), `gantry enable` brings it back ready with its
//! dependent; unknown names answer 404, an enable of a service that is not disabled 409, and
//! no token appears in any output. `gantry enable` of a service the run's selection left out
//! takes it on with its missing dependencies, dependencies first, and a reload keeps it.

mod support;

use support::*;

fn stack(port: u16) -> String {
    format!(
        r#"
[services.web]
command = "FIXTURE --name web --http {port}"
readiness = {{ http = "http://127.0.0.1:{port}/health" }}

[services.worker]
command = "FIXTURE --name worker"
depends_on = ["web"]
"#
    )
}

fn status_of(dir: &std::path::Path, service: &str) -> serde_json::Value {
    // Right after a restart the address file may still name the old instance: poll.
    let mut last = (0, String::new());
    let reached = eventually(10, || {
        last = gantry_in(dir, &["status", "--json"]);
        last.0 == 0
    });
    let out = last.1;
    assert!(reached, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == service).cloned())
        .unwrap_or_else(|| panic!("no {service} in {out}"))
}

#[test]
fn disable_keeps_a_service_down_across_restarts_until_enable_brings_it_back() {
    let port = free_port();
    let mut up = up("switches", &stack(port), &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    up.wait_state("worker", "running", 20);
    let token = std::fs::read_to_string(up.dir.join(".gantry/api.token"))
        .unwrap()
        .trim()
        .to_string();
    let web_pid = status_of(&up.dir, "web")["pid"]
        .as_u64()
        .expect("web has a pid");

    // Disable needs a reason on the CLI.
    let (code, out) = gantry_in(&up.dir, &["disable", "web"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("--reason"), "{out}");

    let (code, out) = gantry_in(&up.dir, &["disable", "web", "--reason", "disk maintenance"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("disabling web"), "{out}");
    up.wait_state("web", "stopped", 20);
    up.wait_state("worker", "stopped", 20);
    let gone = eventually(10, || {
        !std::path::Path::new(&format!("/proc/{web_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{web_pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone, "web's process {web_pid} is still alive");
    let web = status_of(&up.dir, "web");
    assert_eq!(web["switch"], "disabled", "{web}");
    let detail = web["switch_detail"].as_str().unwrap_or("");
    assert!(detail.starts_with("disabled by "), "{web}");
    assert!(detail.contains(" since "), "{web}");
    assert!(detail.ends_with(": disk maintenance"), "{web}");

    // A start of a disabled service is refused with what to do; an unknown name is 404.
    let (code, out) = gantry_in(&up.dir, &["start", "web"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("gantry enable web"), "{out}");
    let addr = api_addr_in(&up.dir);
    let (status, body) =
        http(&addr, "POST", "/api/v1/services/nope/disable", Some(&token)).unwrap();
    assert_eq!(status, 404, "{body}");
    let (status, body) = http(
        &addr,
        "POST",
        "/api/v1/services/worker/enable",
        Some(&token),
    )
    .unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not disabled"), "{body}");
    let (status, _) = http(&addr, "POST", "/api/v1/services/web/enable", None).unwrap();
    assert_eq!(status, 401);

    // Across `gantry down` + `gantry up`: web is not started, worker is skipped because of it,
    // the boot is degraded with the reason, and status still says who and why.
    let mut up = up.again(&[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "degraded", "{}", up.log());
    assert!(
        !up.states("web").iter().any(|s| s == "ready"),
        "{}",
        up.log()
    );
    assert!(
        up.reason("worker", "skipped").contains("web"),
        "{}",
        up.log()
    );
    let web = status_of(&up.dir, "web");
    assert_eq!(web["switch"], "disabled", "{web}");
    assert!(web["pid"].is_null(), "{web}");
    let (code, table) = gantry_in(&up.dir, &["status"]);
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("disabled by "), "{table}");
    assert!(table.contains("disk maintenance"), "{table}");
    let addr = api_addr_in(&up.dir);
    let (_, verbose) = http(&addr, "GET", "/health/ready?verbose", None).unwrap();
    assert!(
        verbose.contains("[-]web disabled by ") && verbose.contains(": disk maintenance"),
        "{verbose}"
    );

    // Enable brings web back ready through its gate, and its dependent with it.
    let (code, out) = gantry_in(&up.dir, &["enable", "web", "--reason", "done"]);
    assert_eq!(code, 0, "{out}");
    up.wait_state("web", "ready", 20);
    up.wait_state("worker", "running", 20);
    assert!(
        up.index("web", "ready") < up.index("worker", "running"),
        "{}",
        up.log()
    );
    let web = status_of(&up.dir, "web");
    assert!(web["switch"].is_null(), "{web}");
    assert_eq!(web["ready"], true, "{web}");

    // The audit log has both, with the reasons; no token in any output.
    let (code, audit) = gantry_in(&up.dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{audit}");
    assert!(audit.contains("service.disable"), "{audit}");
    assert!(audit.contains("service.enable"), "{audit}");
    for text in [&audit, &table, &up.log()] {
        assert!(!text.contains(&token), "the token leaked");
    }

    // Enabled is also kept: the next boot starts web as usual and is GO.
    let mut up = up.again(&[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    up.stop();
}

#[test]
fn enable_takes_on_a_service_the_selection_left_out_with_its_dependencies() {
    let port = free_port();
    let toml = format!(
        r#"
[services.web]
command = "FIXTURE --name web --http {port}"
readiness = {{ http = "http://127.0.0.1:{port}/health" }}

[services.queue]
command = "FIXTURE --name queue"
depends_on = ["web"]

[services.worker]
command = "FIXTURE --name worker"
depends_on = ["queue"]
"#
    );
    let mut up = up("switches-only", &toml, &["--only", "web"]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    // Nothing of it runs: there is nothing to disable.
    let (code, out) = gantry_in(&up.dir, &["disable", "worker", "--reason", "x"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("left it out"), "{out}");
    let (code, out) = gantry_in(&up.dir, &["enable", "nope"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("unknown service"), "{out}");

    // Enable takes it on with the dependency the selection left out too, dependency first.
    let (code, out) = gantry_in(&up.dir, &["enable", "worker", "--reason", "backlog"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("taken on"), "{out}");
    up.wait_state("worker", "running", 20);
    assert!(
        up.index("queue", "running") < up.index("worker", "starting"),
        "queue first: {}",
        up.log()
    );
    assert_eq!(status_of(&up.dir, "worker")["state"], "running");
    assert_eq!(status_of(&up.dir, "queue")["state"], "running");
    let (status, graph) = http(&api_addr_in(&up.dir), "GET", "/api/v1/graph", None).unwrap();
    assert_eq!(status, 200, "{graph}");
    assert!(graph.contains("\"worker\""), "the graph shows it: {graph}");

    // A reload keeps them: the file's plan now selects them too.
    let (code, out) = gantry_in(&up.dir, &["reload"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing changed"), "{out}");

    // A later disable and enable of it are ordinary switches.
    let (code, out) = gantry_in(&up.dir, &["disable", "worker", "--reason", "done"]);
    assert_eq!(code, 0, "{out}");
    up.wait_state("worker", "stopped", 20);

    let (code, audit) = gantry_in(&up.dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{audit}");
    assert!(
        audit.contains("service.enable") && audit.contains("backlog"),
        "{audit}"
    );
    up.stop();
}

#[test]
fn a_replicated_service_is_disabled_and_enabled_in_every_instance() {
    let base = free_pair();
    let toml = format!(
        r#"
[services.api]
command = "FIXTURE --name api-${{REPLICA}} --http ${{PORT}}"
replicas = 2
replica_ports = "{base}-{}"
readiness = {{ http = "http://127.0.0.1:${{PORT}}/health" }}
"#,
        base + 1
    );
    let mut up = up("switches-replicas", &toml, &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let (code, out) = gantry_in(&up.dir, &["disable", "api", "--reason", "bad release"]);
    assert_eq!(code, 0, "{out}");
    for unit in ["api.1", "api.2"] {
        up.wait_state(unit, "stopped", 20);
        let s = status_of(&up.dir, unit);
        assert_eq!(s["switch"], "disabled", "{s}");
        assert!(
            s["switch_detail"]
                .as_str()
                .is_some_and(|d| d.ends_with(": bad release")),
            "{s}"
        );
    }
    let (code, out) = gantry_in(&up.dir, &["enable", "api"]);
    assert_eq!(code, 0, "{out}");
    for unit in ["api.1", "api.2"] {
        up.wait_count(unit, "ready", 2, 20);
        assert!(status_of(&up.dir, unit)["switch"].is_null());
    }
    up.stop();
}

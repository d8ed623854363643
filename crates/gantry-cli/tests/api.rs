//! End-to-end tests of the API and the client commands against a real `gantry up`.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

fn api_addr(up: &Up) -> String {
    api_addr_in(&up.dir)
}

#[test]
fn ready_flips_from_503_to_200_only_once_every_required_gate_holds() {
    let (db, api) = (free_port(), free_port());
    let toml = format!(
        r#"
[services.db]
command = "FIXTURE --name db --delay 400 --listen {db}"
readiness = {{ tcp = "127.0.0.1:{db}", success_threshold = 2 }}

[services.api]
command = "FIXTURE --name api --delay 100 --http {api}"
depends_on = ["db"]
readiness = {{ http = "http://127.0.0.1:{api}/health" }}
"#
    );
    let mut up = up("ready-flip", &toml, &[]);
    let addr = api_addr(&up);
    let mut saw_503 = false;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < until, "never ready; events:\n{}", up.log());
        match http(&addr, "GET", "/health/ready", None) {
            Some((503, _)) => saw_503 = true,
            Some((200, _)) => break,
            _ => {}
        }
    }
    assert!(saw_503, "/health/ready must answer 503 while booting");
    // At the moment it said 200, every required service had passed its gate.
    let (code, body) = http(&addr, "GET", "/api/v1/status", None).unwrap();
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    for s in v["services"].as_array().unwrap() {
        assert_eq!(s["ready"], true, "{s}");
    }
    assert_eq!(v["boot"]["outcome"], "go");
    let (code, _) = http(&addr, "GET", "/health/startup", None).unwrap();
    assert_eq!(code, 200);
    assert_eq!(up.stop(), 0);
}

#[test]
fn mutations_need_the_token_which_is_private_to_the_owner() {
    let toml = r#"
[services.web]
command = "FIXTURE --name web"
"#;
    let mut up = up("token", toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    let addr = api_addr(&up);
    let token_file = up.dir.join(".gantry/api.token");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "token file mode");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(
        http(&addr, "POST", "/api/v1/services/web/restart", None)
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        http(&addr, "POST", "/api/v1/services/web/restart", Some("wrong"))
            .unwrap()
            .0,
        401
    );
    assert_eq!(http(&addr, "POST", "/api/v1/reload", None).unwrap().0, 401);
    // The file is unchanged: the reload touches nothing.
    let (code, body) = http(&addr, "POST", "/api/v1/reload", Some(token.trim())).unwrap();
    assert_eq!(code, 202, "{body}");
    assert!(body.contains("nothing changed; 1 unchanged"), "{body}");
    let (code, body) = http(
        &addr,
        "POST",
        "/api/v1/services/web/restart",
        Some(token.trim()),
    )
    .unwrap();
    assert_eq!(code, 202, "{body}");
    assert!(!body.contains(token.trim()));
    assert_eq!(
        http(
            &addr,
            "POST",
            "/api/v1/services/nope/restart",
            Some(token.trim())
        )
        .unwrap()
        .0,
        404
    );
    up.wait_count("web", "running", 2, 10);
    // The token never shows up in anything gantry printed.
    assert!(!up.log().contains(token.trim()));
    // Metrics carry per-service process figures once sampled.
    let found = eventually(10, || {
        http(&addr, "GET", "/metrics", None).is_some_and(|(c, b)| {
            c == 200 && b.contains("gantry_process_resident_memory_bytes{service=\"web\"}")
        })
    });
    assert!(found, "RSS metric for web");
    assert_eq!(up.stop(), 0);
}

/// CPU and memory are sampled when a reader asks for them and the last sample is too old
/// (2 s at this size), not on a timer: the figures still follow a service that grows.
#[test]
fn status_and_metrics_show_memory_sampled_for_the_reader() {
    let toml = r#"
[services.hog]
command = ["sh", "-c", "sleep 1; exec python3 -c 'import time; x = b\"x\" * (64 << 20); time.sleep(600)'"]
"#;
    let mut up = up("usage-on-demand", toml, &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let addr = api_addr(&up);
    let rss = || {
        let (code, body) = http(&addr, "GET", "/api/v1/status", None)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (code == 200).then(|| v["services"][0]["rss_bytes"].as_u64())?
    };
    let mut last = None;
    assert!(
        eventually(20, || {
            last = rss();
            last.is_some_and(|r| r >= 64 << 20)
        }),
        "the status never showed the 64 MiB the service holds (last: {last:?})\n{}",
        up.log()
    );
    let metric = http(&addr, "GET", "/metrics", None).expect("metrics");
    let line = metric
        .1
        .lines()
        .find(|l| l.starts_with("gantry_process_resident_memory_bytes{service=\"hog\"}"))
        .unwrap_or_else(|| panic!("no RSS series for hog:\n{}", metric.1))
        .to_string();
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= (64u64 << 20) as f64, "{line}");
    assert_eq!(up.stop(), 0);
}

/// Probe counts are figures: a quiet stack publishes them when a reader asks (not on a
/// timer), so every read still shows the probes run since the last one.
#[test]
fn status_shows_the_probes_run_since_the_last_read() {
    let port = free_port();
    let toml = format!(
        r#"
[services.web]
command = "FIXTURE --name web --listen {port}"
readiness = {{ tcp = "127.0.0.1:{port}", period = "100ms" }}
"#
    );
    let mut up = up("figures-on-demand", &toml, &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let addr = api_addr(&up);
    let count = || {
        let (_, body) = http(&addr, "GET", "/api/v1/status", None)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["services"][0]["probe_count"].as_u64()
    };
    let first = count().expect("a probe count");
    let mut last = None;
    // The figures may be a second old: more than a second of probes every 100 ms shows.
    assert!(
        eventually(10, || {
            last = count();
            last.is_some_and(|c| c >= first + 10)
        }),
        "probe_count stayed at {last:?} (first read {first})\n{}",
        up.log()
    );
    assert_eq!(up.stop(), 0);
}

fn gantry_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(gantry())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn detach_status_restart_wait_and_down_through_the_cli() {
    let port = free_port();
    let dir = tempdir("cli-client");
    let toml = format!(
        r#"
[settings]
api = "127.0.0.1:0"

[services.db]
command = "{fixture} --name db --delay 100 --listen {port}"
readiness = {{ tcp = "127.0.0.1:{port}" }}

[services.api]
command = "{fixture} --name api --marker cli-client-{pid}"
depends_on = ["db"]
"#,
        fixture = fixture().display(),
        pid = std::process::id()
    );
    std::fs::write(dir.join("gantry.toml"), toml).unwrap();
    let (code, out, err) = gantry_in(&dir, &["up", "--detach"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("GO"), "{out}");
    let (code, out, _) = gantry_in(&dir, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("db") && out.contains("ready"), "{out}");
    let (code, out, _) = gantry_in(&dir, &["status", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["services"].as_array().unwrap().len(), 2);
    let (code, _, err) = gantry_in(&dir, &["restart", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown service"), "{err}");
    let (code, out, err) = gantry_in(&dir, &["restart", "db"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = gantry_in(&dir, &["wait", "--timeout", "20s"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = gantry_in(
        &dir,
        &[
            "wait",
            &format!("tcp://127.0.0.1:{port}"),
            "--timeout",
            "5s",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = gantry_in(&dir, &["down"]);
    assert_eq!(code, 0, "{out}{err}");
    let marker = format!("cli-client-{}", std::process::id());
    assert!(
        eventually(5, || processes_with(&marker).is_empty()),
        "services gone after down"
    );
    let (code, _, err) = gantry_in(&dir, &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach gantry"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn wait_for_targets_times_out_with_a_reason() {
    let port = free_port();
    let dir = tempdir("wait-timeout");
    let (code, _, err) = gantry_in(
        &dir,
        &[
            "wait",
            &format!("tcp://127.0.0.1:{port}"),
            "--timeout",
            "300ms",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("not up after") && err.contains("refused"),
        "{err}"
    );
    let (code, _, err) = gantry_in(&dir, &["wait", "ftp://x", "--timeout", "1s"]);
    assert_eq!(code, 2, "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

//! End-to-end tests of `gantry up` against real processes and loopback sockets.

mod support;

use std::process::Command;
use support::*;

#[test]
fn dependents_wait_for_the_gate_and_independent_services_overlap() {
    let (db, cache, api) = (free_port(), free_port(), free_port());
    let toml = format!(
        r#"
[services.db]
command = "FIXTURE --name db --delay 300 --listen {db}"
readiness = {{ tcp = "127.0.0.1:{db}", success_threshold = 3 }}

[services.cache]
command = "FIXTURE --name cache --delay 100 --listen {cache}"
readiness = {{ tcp = "127.0.0.1:{cache}" }}

[services.api]
command = "FIXTURE --name api --http {api}"
depends_on = ["db", "cache"]
readiness = {{ http = "http://127.0.0.1:{api}/health" }}
"#
    );
    let mut up = up("order", &toml, &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    // db and cache started together (independent), api only after both were ready.
    let (db_start, cache_start) = (up.at("db", "starting"), up.at("cache", "starting"));
    assert!(
        db_start.abs_diff(cache_start) < 100,
        "independent services should start together"
    );
    assert!(up.at("api", "starting") >= up.at("db", "ready"));
    assert!(up.at("api", "starting") >= up.at("cache", "ready"));
    assert!(up.index("api", "starting") > up.index("db", "ready"));
    // db listens after 300 ms; three consecutive passes cannot all happen before that.
    assert!(up.at("db", "ready") >= db_start + 300);
    assert_eq!(up.stop(), 0);
}

#[test]
fn tasks_complete_and_conditions_started_and_completed_hold() {
    let port = free_port();
    let toml = format!(
        r#"
[services.migrate]
kind = "task"
command = "FIXTURE --name migrate --exit-after 150"

[services.metrics]
command = "FIXTURE --name metrics --delay 200 --listen {port}"

[services.api]
command = "FIXTURE --name api"
depends_on = {{ migrate = "completed", metrics = "started" }}
"#
    );
    let mut up = up("conditions", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    assert!(up.index("api", "starting") > up.index("migrate", "completed"));
    assert!(up.index("api", "starting") > up.index("metrics", "running"));
    assert_eq!(up.stop(), 0);
}

#[test]
fn retries_until_success_within_attempts() {
    let dir = tempdir("retry-state");
    let state = dir.join("count");
    let toml = format!(
        r#"
[services.flaky]
kind = "task"
command = "FIXTURE --name flaky --fail-times 2 --state-file {} --exit-after 10"
retry = {{ attempts = 3, backoff = "50ms", jitter = false }}
"#,
        state.display()
    );
    let mut up = up("retry", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let attempts = up
        .events
        .iter()
        .filter(|v| v["service"] == "flaky" && v["to"] == "starting")
        .count();
    assert!(attempts >= 1);
    assert_eq!(
        std::fs::read_to_string(&state).unwrap().trim(),
        "3",
        "three starts: two failures, then success"
    );
    assert_eq!(up.stop(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn critical_failure_is_no_go_and_stops_started_services_in_reverse_order() {
    let (a, b) = (free_port(), free_port());
    let toml = format!(
        r#"
[services.base]
command = "FIXTURE --name base --listen {a}"
readiness = {{ tcp = "127.0.0.1:{a}" }}

[services.mid]
command = "FIXTURE --name mid --listen {b}"
depends_on = ["base"]
readiness = {{ tcp = "127.0.0.1:{b}" }}

[services.db]
command = "FIXTURE --name db --stderr-lines 3 --crash-after 100 --exit-code 3"
depends_on = ["mid"]
priority = "critical"
readiness = {{ tcp = "127.0.0.1:1" }}

[services.api]
command = "FIXTURE --name api"
depends_on = ["db"]
"#
    );
    let mut up = up("nogo", &toml, &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "no-go", "{}", up.log());
    assert!(boot["reason"].as_str().unwrap().contains("db"), "{boot}");
    assert!(
        boot["reason"].as_str().unwrap().contains("exit code 3"),
        "{boot}"
    );
    assert_eq!(up.wait_exit(20), 1);
    // Reverse order: mid (which depends on base) stops before base.
    assert!(
        up.index("mid", "stopped") < up.index("base", "stopping"),
        "{}",
        up.log()
    );
    assert!(
        !up.states("api").contains(&"starting".to_string()),
        "api must never start"
    );
}

#[test]
fn non_critical_failure_degrades_skips_hard_dependents_and_starts_soft_ones() {
    let toml = r#"
[services.search]
command = "FIXTURE --name search --crash-after 50"
priority = "low"
readiness = { tcp = "127.0.0.1:1" }

[services.indexer]
command = "FIXTURE --name indexer"
depends_on = ["search"]

[services.web]
command = "FIXTURE --name web"
depends_on = { search = { condition = "ready", required = false } }
"#;
    let mut up = up("degraded", toml, &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "degraded", "{}", up.log());
    assert!(
        up.states("indexer").contains(&"skipped".to_string()),
        "{}",
        up.log()
    );
    assert!(
        up.reason("indexer", "skipped").contains("search"),
        "the skip names its cause: {}",
        up.log()
    );
    assert!(
        up.states("web").contains(&"running".to_string()),
        "soft dependents start anyway: {}",
        up.log()
    );
    assert_eq!(up.stop(), 0);
}

#[test]
fn allow_degraded_false_turns_any_failure_into_no_go() {
    let toml = r#"
[settings]
allow_degraded = false

[services.search]
command = "FIXTURE --name search --crash-after 50"
priority = "low"
readiness = { tcp = "127.0.0.1:1" }
"#;
    let mut up = up("strict", toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "no-go", "{}", up.log());
    assert_eq!(up.wait_exit(20), 1);
}

#[test]
fn restart_always_brings_a_killed_service_back() {
    let port = free_port();
    let toml = format!(
        r#"
[services.web]
command = "FIXTURE --name web --listen {port}"
readiness = {{ tcp = "127.0.0.1:{port}" }}
restart = "always"
"#
    );
    let mut up = up("restart", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    let pid = up.wait_state("web", "ready", 5)["pid"].as_u64().unwrap();
    let host_pids = processes_with(&format!("--listen {port}"));
    assert_eq!(host_pids.len(), 1, "one web process (namespace pid {pid})");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &host_pids[0].to_string()])
        .status();
    // It comes back: a second ready transition, on a new process.
    up.wait_for("web ready again", 10, |v| {
        v["service"] == "web" && v["to"] == "ready" && v["pid"].as_u64() != Some(pid)
    });
    assert!(eventually(5, || std::net::TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_ok()));
    assert_eq!(up.stop(), 0);
}

/// Issue 14, item 9: a critical process without a readiness probe that exits 5 ms after its
/// spawn used to count as started (GO, dependents started). Within its start_grace it is a
/// failed start: NO-GO, exit 1, the dependent never starts.
#[test]
fn a_critical_process_without_probes_that_dies_at_once_is_nogo() {
    let toml = r#"
[services.core]
command = "FIXTURE --name core --crash-after 5"
priority = "critical"

[services.web]
command = "FIXTURE --name web"
depends_on = { core = "started" }
"#;
    let mut up = up("start-grace", toml, &[]);
    let boot = up.wait_boot(20);
    assert_eq!(boot["outcome"], "no-go", "{}", up.log());
    assert_eq!(
        up.reason("core", "failed"),
        "exited within its start_grace of 250ms (exit code 1)"
    );
    assert_eq!(up.wait_exit(20), 1);
    assert!(
        !up.states("web").iter().any(|s| s == "starting"),
        "web must never start: {:?}",
        up.states("web")
    );
}

/// Issue 14, item 9: `gantry up` exited 0 when stopped (SIGTERM, `gantry down`) although a
/// critical service had failed at runtime. It exits 1 then, and says why; a failed service
/// that is not critical keeps the exit code 0.
#[test]
fn a_stop_after_a_critical_runtime_failure_exits_1() {
    for (how, critical, code) in [
        ("SIGTERM", true, 1),
        ("down", true, 1),
        ("SIGTERM", false, 0),
    ] {
        let priority = if critical { "critical" } else { "high" };
        let toml = format!(
            r#"
[services.core]
command = "FIXTURE --name core --crash-after 400"
priority = "{priority}"

[services.web]
command = "FIXTURE --name web"
"#
        );
        let mut up = up(&format!("exit-code-{how}-{critical}"), &toml, &[]);
        assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
        up.wait_state("core", "failed", 20);
        if how == "down" {
            let out = Command::new(gantry())
                .arg("down")
                .current_dir(&up.dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        } else {
            let _ = Command::new("kill")
                .args(["-TERM", &up.child.id().to_string()])
                .status();
        }
        assert_eq!(up.wait_exit(20), code, "{how}, critical {critical}");
        let finished = up.wait_for("finished", 5, |v| v["event"] == "finished");
        if critical {
            assert_eq!(
                finished["critical_failed"],
                serde_json::json!(["core (exited unexpectedly (exit code 1))"]),
                "{finished}"
            );
        } else {
            assert_eq!(finished["critical_failed"], serde_json::json!([]));
        }
    }
}

#[test]
fn crash_loop_hits_the_start_limit_and_fails_with_a_clear_message() {
    let toml = r#"
[services.loop]
command = "FIXTURE --name loop --crash-after 20"
# Counted as started at its spawn: a crash loop of a running service, not failed starts.
start_grace = "0s"
restart = "always"
retry = { backoff = "10ms", max_backoff = "20ms" }
start_limit = { burst = 3, interval = "10s" }
"#;
    let mut up = up("start-limit", toml, &[]);
    up.wait_state("loop", "failed", 20);
    let reason = up.reason("loop", "failed");
    assert!(
        reason.contains('3') || reason.to_lowercase().contains("limit"),
        "reason: {reason}"
    );
    assert_eq!(up.stop(), 0);
}

#[test]
fn liveness_failures_restart_the_service() {
    let port = free_port();
    let toml = format!(
        r#"
[services.web]
command = "FIXTURE --name web --http {port} --http-status 503"
liveness = {{ http = "http://127.0.0.1:{port}/health", period = "100ms", failure_threshold = 2 }}
restart = "on-failure"
"#
    );
    let mut up = up("liveness", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    up.wait_for("a liveness restart", 15, |v| {
        v["service"] == "web" && v["reason"].as_str().is_some_and(|r| r.contains("liveness"))
    });
    assert_eq!(up.stop(), 0);
}

#[test]
fn shutdown_escalates_to_sigkill_after_stop_timeout_and_runs_cleanup() {
    let dir = tempdir("cleanup-marker");
    let marker = dir.join("cleaned");
    let toml = format!(
        r#"
[services.stubborn]
command = "FIXTURE --name stubborn --ignore-sigterm"
stop_timeout = "300ms"
cleanup = "touch {}"
"#,
        marker.display()
    );
    let mut up = up("escalate", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    assert_eq!(up.stop(), 0);
    let stopping = up.at("stubborn", "stopping");
    let stopped = up.at("stubborn", "stopped");
    assert!(
        stopped >= stopping + 300,
        "SIGKILL only after stop_timeout: {}",
        up.log()
    );
    assert!(marker.exists(), "cleanup ran");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigkill_of_gantry_leaves_no_orphans_not_even_grandchildren() {
    let marker = format!("orphan-test-{}", std::process::id());
    let toml = format!(
        r#"
[services.parent]
command = "FIXTURE --name parent --spawn-grandchild --spawn-daemon --marker {marker}"

[services.shell]
command = ["sh", "-c", "sleep 300 & setsid sleep 301 & exec FIXTURE --name shell --marker {marker}"]
"#
    );
    let mut up = up("orphans", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    // Services have no readiness probe, so GO comes as soon as they are spawned;
    // wait until their own children (the `sleep`s, the fixture's grandchild and
    // daemon) exist too. Below gantry: its namespace init, 2 services, 4+ grandchildren.
    assert!(eventually(5, || processes_with(&marker).len() >= 2));
    let mut descendants = Vec::new();
    let all_there = eventually(5, || {
        descendants = descendants_of(up.child.id());
        descendants.len() >= 7
    });
    assert!(
        all_there,
        "expected gantry's init, 2 services and their children: {descendants:?}"
    );
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &up.child.id().to_string()])
        .status();
    let _ = up.child.wait();
    let gone = eventually(5, || descendants.iter().all(|p| !alive(*p)));
    assert!(
        gone,
        "survivors: {:?}",
        descendants
            .iter()
            .filter(|p| alive(**p))
            .collect::<Vec<_>>()
    );
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Every process below `pid` (children, grandchildren, …), via /proc/*/task/*/children.
fn descendants_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if !out.contains(&c) {
                    out.push(c);
                    stack.push(c);
                }
            }
        }
    }
    out
}

#[test]
fn log_and_notify_readiness() {
    let toml = r#"
[services.worker]
command = "FIXTURE --name worker --delay 100 --ready-line 'consuming jobs now'"
readiness = { log = "consuming jobs" }

[services.ui]
command = "FIXTURE --name ui --delay 100 --notify"
readiness = { notify = true }

[services.after]
command = "FIXTURE --name after"
depends_on = ["worker", "ui"]
"#;
    let mut up = up("log-notify", toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    assert!(up.index("after", "starting") > up.index("worker", "ready"));
    assert!(up.index("after", "starting") > up.index("ui", "ready"));
    assert!(up.at("worker", "ready") >= up.at("worker", "starting") + 100);
    assert_eq!(up.stop(), 0);
}

#[test]
fn boots_are_recorded_in_the_state_store_and_feed_the_graph() {
    let port = free_port();
    let toml = format!(
        r#"
[services.db]
command = "FIXTURE --name db --delay 100 --listen {port}"
readiness = {{ tcp = "127.0.0.1:{port}" }}

[services.api]
command = "FIXTURE --name api"
depends_on = ["db"]
"#
    );
    let mut up = up("store", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    assert_eq!(up.stop(), 0);
    assert!(up.dir.join(".gantry/state.db").exists());
    assert!(up.dir.join(".gantry/logs/db.log").exists());
    let out = std::process::Command::new(gantry())
        .args(["graph"])
        .current_dir(&up.dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("critical path (") && text.contains("db → api"),
        "{text}"
    );
    assert!(
        !text.contains("steps"),
        "timed from the recorded boot, not by step count: {text}"
    );
}

#[test]
fn profiles_and_only_select_services_with_their_dependencies() {
    let toml = r#"
[services.db]
command = "FIXTURE --name db"
priority = "critical"

[services.api]
command = "FIXTURE --name api"
depends_on = ["db"]

[services.extra]
command = "FIXTURE --name extra"

[profiles.minimal]
priorities = ["critical"]
"#;
    let mut up1 = up("profile", toml, &["--profile", "minimal"]);
    assert_eq!(up1.wait_boot(20)["outcome"], "go");
    assert!(
        up1.states("api").is_empty() && up1.states("extra").is_empty(),
        "{}",
        up1.log()
    );
    assert_eq!(up1.stop(), 0);
    let mut up2 = up("only", toml, &["--only", "api"]);
    assert_eq!(up2.wait_boot(20)["outcome"], "go");
    assert!(
        !up2.states("db").is_empty() && up2.states("extra").is_empty(),
        "{}",
        up2.log()
    );
    assert_eq!(up2.stop(), 0);
}

#[test]
fn restarting_a_service_restarts_its_hard_dependents_after_it_is_ready_again() {
    let (db, api) = (free_port(), free_port());
    let toml = format!(
        r#"
[services.db]
command = "FIXTURE --name db --delay 50 --listen {db}"
readiness = {{ tcp = "127.0.0.1:{db}" }}
restart = "always"

[services.api]
command = "FIXTURE --name api --listen {api}"
depends_on = ["db"]
readiness = {{ tcp = "127.0.0.1:{api}" }}
restart = "always"
"#
    );
    let mut up = up("dependents", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go");
    let before = up.events.len();
    let db_pid = processes_with(&format!("--listen {db}"));
    assert_eq!(db_pid.len(), 1);
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &db_pid[0].to_string()])
        .status();
    // api goes down with db and comes back only after db is ready again.
    up.wait_count("api", "ready", 2, 15);
    let later: Vec<&serde_json::Value> = up.events[before..].iter().collect();
    let pos = |svc: &str, to: &str| {
        later
            .iter()
            .position(|v| v["service"] == svc && v["to"] == to)
    };
    let db_ready = pos("db", "ready").expect("db ready again");
    let api_ready = later
        .iter()
        .rposition(|v| v["service"] == "api" && v["to"] == "ready")
        .expect("api ready again");
    let api_down = later
        .iter()
        .position(|v| {
            v["service"] == "api"
                && (v["to"] == "stopping"
                    || v["to"] == "stopped"
                    || v["to"] == "pending"
                    || v["to"] == "starting")
        })
        .expect("api was restarted");
    assert!(api_down < api_ready && db_ready < api_ready, "{}", up.log());
    assert_eq!(up.stop(), 0);
}

#[test]
fn the_quickstart_example_boots_to_go() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = root.join("examples/quickstart/gantry.toml");
    let state = root.join("examples/quickstart/.gantry-test");
    let _ = std::fs::remove_dir_all(&state);
    let dir = tempdir("quickstart");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "state_dir = \".gantry\"",
        &format!("state_dir = \"{}\"", state.display()),
    );
    let copy = root.join("examples/quickstart/gantry.test.toml");
    std::fs::write(&copy, text).unwrap();
    let mut child = std::process::Command::new(gantry())
        .args(["-f", copy.to_str().unwrap(), "up", "--json"])
        .env("GANTRY_FIXTURE", fixture())
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead as _;
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut outcome = None;
    for line in stdout.lines().map_while(Result::ok) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["event"] == "boot" {
            outcome = Some(v["outcome"].as_str().unwrap_or("").to_string());
            let _ = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        }
    }
    let status = child.wait().unwrap();
    let _ = std::fs::remove_file(&copy);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(outcome.as_deref(), Some("go"));
    assert_eq!(status.code(), Some(0));
}

/// Regression: the exit used to race the output readers, so a failing service's last
/// lines (the ones that explain the failure) were lost in ~40% of NO-GOs.
#[test]
fn last_output_lines_of_a_failing_service_are_never_lost() {
    let toml = r#"
[services.db]
kind = "task"
command = "FIXTURE --name db --stdout-lines 5 --stderr-lines 3 --crash-after 0 --exit-code 3"
priority = "critical"
"#;
    for i in 0..10 {
        let mut up = up(&format!("last-lines-{i}"), toml, &[]);
        let boot = up.wait_boot(20);
        assert_eq!(boot["outcome"], "no-go");
        assert_eq!(up.wait_exit(20), 1);
        let lines = up
            .events
            .iter()
            .filter(|v| v["event"] == "output" && v["service"] == "db")
            .count();
        assert!(
            lines >= 8,
            "run {i}: only {lines} of the 8 output lines arrived:\n{}",
            up.log()
        );
    }
}

/// Transitions of `service` whose reason contains `needle`, in order.
fn transitions_with<'a>(up: &'a Up, service: &str, needle: &str) -> Vec<&'a serde_json::Value> {
    up.events
        .iter()
        .filter(|v| {
            v["event"] == "transition"
                && v["service"] == service
                && v["reason"].as_str().is_some_and(|r| r.contains(needle))
        })
        .collect()
}

#[test]
fn start_breaker_opens_after_consecutive_failures_and_holds_the_next_attempt_for_the_cooldown() {
    let toml = r#"
[services.flaky]
command = "FIXTURE --name flaky --crash-after 0 --exit-code 3"
priority = "low"
readiness = { tcp = "127.0.0.1:1" }
retry = { attempts = 4, backoff = "10ms", jitter = false }
start_breaker = { failures = 2, cooldown = "1s" }

[services.web]
command = "FIXTURE --name web"
"#;
    let mut up = up("start-breaker", toml, &[]);
    up.wait_state("flaky", "failed", 30);
    assert_eq!(up.wait_boot(20)["outcome"], "degraded", "{}", up.log());
    let at = |v: &serde_json::Value| v["at_ms"].as_u64().unwrap();
    // Attempt 1 fails: an ordinary retry after the 10 ms backoff.
    let retried = transitions_with(&up, "flaky", "retrying in 10ms");
    assert_eq!(retried.len(), 1, "{}", up.log());
    assert_eq!(retried[0]["attempt"], 1, "{}", up.log());
    // Attempt 2 fails: 2 consecutive failures open the breaker. The half-open attempt 3
    // fails too and opens it again.
    let opened = transitions_with(&up, "flaky", "start breaker open for 1s");
    assert_eq!(opened.len(), 2, "{}", up.log());
    assert_eq!(opened[0]["attempt"], 2, "{}", up.log());
    assert_eq!(opened[1]["attempt"], 3, "{}", up.log());
    for v in &opened {
        assert_eq!(v["from"], "starting");
        assert_eq!(v["to"], "starting");
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .contains("exited before becoming ready (exit code 3)"),
            "{v}"
        );
    }
    // Each attempt after an opening waited the whole cooldown (engine time, so exact
    // as a lower bound however loaded the machine is).
    let failed = up
        .events
        .iter()
        .find(|v| v["service"] == "flaky" && v["to"] == "failed")
        .unwrap();
    assert!(at(opened[0]) >= at(retried[0]), "{}", up.log());
    assert!(at(opened[1]) >= at(opened[0]) + 1_000, "{}", up.log());
    assert!(at(failed) >= at(opened[1]) + 1_000, "{}", up.log());
    assert_eq!(failed["attempt"], 4);
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("(gave up after 4 attempts)"),
        "{failed}"
    );
    // The other service never noticed.
    assert!(up.states("web").contains(&"running".to_string()));
    assert_eq!(up.stop(), 0);
}

#[test]
fn extend_timeout_usec_lets_a_slow_service_become_ready_past_its_start_timeout() {
    // The fixture asks for 2 s more at once, then is ready via sd_notify after 800 ms.
    let toml = r#"
[services.slow]
command = "FIXTURE --name slow --notify-extend 2000000 --delay 800 --notify"
readiness = { notify = true }
start_timeout = "300ms"

[services.after]
command = "FIXTURE --name after"
depends_on = ["slow"]
"#;
    let mut up = up("extend-timeout", toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    assert_eq!(up.states("slow"), ["starting", "ready"], "{}", up.log());
    assert!(
        up.at("slow", "ready") >= up.at("slow", "starting") + 800,
        "ready only after the fixture's delay, well past start_timeout: {}",
        up.log()
    );
    assert!(up.index("after", "starting") > up.index("slow", "ready"));
    assert_eq!(up.stop(), 0);
}

#[test]
fn without_extend_timeout_usec_the_same_service_fails_at_its_start_timeout() {
    let toml = r#"
[services.slow]
command = "FIXTURE --name slow --delay 800 --notify"
readiness = { notify = true }
start_timeout = "300ms"
"#;
    let mut up = up("no-extend-timeout", toml, &[]);
    up.wait_state("slow", "failed", 20);
    assert_eq!(up.wait_boot(20)["outcome"], "degraded", "{}", up.log());
    assert_eq!(
        up.reason("slow", "failed"),
        "did not become ready within 300ms",
        "{}",
        up.log()
    );
    assert_eq!(up.states("slow"), ["starting", "failed"], "{}", up.log());
    assert!(up.at("slow", "failed") >= up.at("slow", "starting") + 300);
    assert_eq!(up.stop(), 0);
}

/// gantry pins itself to one CPU around its namespace fork (nsinit.rs); what it starts
/// must see the CPUs gantry itself was given. And log files open at a service's first
/// line: a service that prints nothing leaves no file.
#[test]
fn services_see_every_cpu_and_silent_services_leave_no_log_file() {
    let ours = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Cpus_allowed_list:")
                .map(|v| v.trim().to_string())
        })
        .unwrap();
    let toml = r#"
[services.cpus]
kind = "task"
command = ["sh", "-c", "grep Cpus_allowed_list /proc/self/status"]

[services.quiet]
command = ["sleep", "30"]
"#;
    let mut up = up("affinity", toml, &[]);
    let line = up.wait_for("the cpus task's output", 20, |v| {
        v["event"] == "output" && v["service"] == "cpus"
    });
    let seen = line["line"].as_str().unwrap();
    assert_eq!(
        seen.strip_prefix("Cpus_allowed_list:").map(str::trim),
        Some(ours.as_str()),
        "{seen}"
    );
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    assert!(eventually(5, || up
        .dir
        .join(".gantry/logs/cpus.log")
        .exists()));
    assert!(up.dir.join(".gantry/logs").is_dir());
    assert!(!up.dir.join(".gantry/logs/quiet.log").exists());
    assert_eq!(up.stop(), 0);
}

/// Two gantries at once number their services alike (each is PID 1 of its own namespace):
/// the host pid `gantry status` shows must be the process of its own service, never the one
/// with the same namespace pid under the other gantry (CI once SIGKILLed the wrong service
/// because of that).
#[test]
fn two_gantries_at_once_each_show_the_host_pid_of_their_own_service() {
    let ups: Vec<(Up, String)> = ["first", "second"]
        .iter()
        .map(|name| {
            let marker = format!("--name pidmap-{name}-{}", std::process::id());
            let toml = format!(
                "[services.web]\ncommand = \"FIXTURE {marker}\"\nreadiness = {{ log = \"ready\" }}\n"
            );
            (up(&format!("pidmap-{name}"), &toml, &[]), marker)
        })
        .collect();
    for (up, marker) in ups {
        let mut up = up;
        assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
        let mut shown = None;
        assert!(
            eventually(10, || {
                let (code, out) = gantry_in(&up.dir, &["status", "--json"]);
                shown = (code == 0)
                    .then(|| serde_json::from_str::<serde_json::Value>(&out).ok())
                    .flatten()
                    .and_then(|v| v["services"][0]["pid"].as_u64());
                shown.is_some()
            }),
            "no pid in gantry status: {}",
            up.log()
        );
        let own = processes_with(&marker);
        assert_eq!(own.len(), 1, "{marker}: {own:?}");
        assert_eq!(shown, Some(u64::from(own[0])), "{marker}");
        assert_eq!(up.stop(), 0);
    }
}

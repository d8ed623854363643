//! sd_notify watchdogs in a real `gantry up`: a service gets WATCHDOG_USEC and its own pid in WATCHDOG_PID, is restarted when its keep-alives stop, and at once when it sends WATCHDOG=trigger; `gantry check` warns about a notify liveness probe without one.

mod support;

use support::*;

/// The fixture's line about its watchdog, from an incarnation other than `not_pid`:
/// (usec, WATCHDOG_PID, own pid).
fn watchdog_line(up: &mut Up, service: &str, not_pid: &str) -> (String, String, String) {
    let prefix = format!("fixture {service}: watchdog every ");
    let other = format!(", pid {not_pid}");
    let v = up.wait_for(&format!("{service}'s watchdog line"), 30, |v| {
        v["event"] == "output"
            && v["service"] == service
            && v["line"]
                .as_str()
                .is_some_and(|l| l.starts_with(&prefix) && !l.ends_with(&other))
    });
    // "fixture wd: watchdog every 600000 us, WATCHDOG_PID=7, pid 7"
    let text = v["line"].as_str().unwrap();
    let rest = text.strip_prefix(&prefix).unwrap();
    let (usec, rest) = rest.split_once(" us, WATCHDOG_PID=").unwrap();
    let (wpid, pid) = rest.split_once(", pid ").unwrap();
    (usec.to_string(), wpid.to_string(), pid.to_string())
}

#[test]
fn a_service_that_stops_its_keep_alives_is_restarted() {
    let mut up = up(
        "watchdog-silence",
        r#"
[services.wd]
command = "FIXTURE --name wd --notify --watchdog-stop-after 4"
readiness = { notify = true }
liveness = { notify = true, watchdog = "600ms", failure_threshold = 2 }
"#,
        &[],
    );
    up.wait_boot(30);
    let (usec, watchdog_pid, pid) = watchdog_line(&mut up, "wd", "none");
    assert_eq!(usec, "600000");
    assert_eq!(watchdog_pid, pid, "WATCHDOG_PID is the service's own pid");
    // Four keep-alives 300 ms apart, then silence: two missed intervals restart it.
    up.wait_for("the watchdog restart", 30, |v| {
        v["event"] == "transition"
            && v["service"] == "wd"
            && v["to"] == "stopping"
            && v["reason"].as_str().is_some_and(|r| {
                r.contains("liveness failed 2 times: watchdog: no keep-alive within 600ms")
            })
    });
    up.wait_count("wd", "ready", 2, 30);
    // The new incarnation gets its own pid in WATCHDOG_PID.
    let (_, watchdog_pid2, pid2) = watchdog_line(&mut up, "wd", &pid);
    assert_eq!(watchdog_pid2, pid2);
    assert_ne!(pid2, pid, "a new process");
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_service_that_sends_watchdog_trigger_is_restarted_at_once() {
    let mut up = up(
        "watchdog-trigger",
        r#"
[services.wt]
command = "FIXTURE --name wt --notify --watchdog-trigger-after 200"
readiness = { notify = true }
liveness = { notify = true, watchdog = "30s", failure_threshold = 3 }
"#,
        &[],
    );
    up.wait_boot(30);
    // Not the 30 s interval, nor three failures: the trigger itself restarts it.
    let stopping = up.wait_for("the trigger restart", 30, |v| {
        v["event"] == "transition" && v["service"] == "wt" && v["to"] == "stopping"
    });
    assert_eq!(
        stopping["reason"], "liveness failed: sd_notify WATCHDOG=trigger; restarting",
        "{stopping}"
    );
    up.wait_count("wt", "ready", 2, 30);
    assert_eq!(up.stop(), 0);
}

#[test]
fn check_warns_about_a_notify_liveness_probe_without_a_watchdog() {
    let dir = tempdir("watchdog-check");
    std::fs::write(
        dir.join("gantry.toml"),
        "[services.a]\ncommand = \"a\"\nliveness = { notify = true }\n",
    )
    .unwrap();
    let out = std::process::Command::new(gantry())
        .arg("check")
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}{stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning, not an error: {text}"
    );
    assert!(
        text.contains("warning[no-watchdog]: gantry.toml:3:12: services.a.liveness: a notify liveness probe without `watchdog` can never fail"),
        "{text}"
    );
    assert!(text.contains("hint: add watchdog = \"10s\""), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

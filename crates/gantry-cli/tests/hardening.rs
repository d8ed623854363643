//! The state dir against careless and hostile neighbours: one instance per state dir, private modes, no planted links.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use support::*;

const STACK: &str = r#"
[services.app]
command = "FIXTURE --name app --listen PORT"
readiness = { tcp = "127.0.0.1:PORT" }
"#;

#[test]
fn a_second_up_on_the_same_state_dir_names_the_running_instance_and_starts_nothing() {
    let port = free_port();
    let mut first = up("lock", &STACK.replace("PORT", &port.to_string()), &[]);
    first.wait_boot(30);
    let addr_file = first.dir.join(".gantry/api.addr");
    assert!(eventually(10, || addr_file.exists()), "no api.addr");
    let api = std::fs::read_to_string(&addr_file)
        .unwrap()
        .trim()
        .to_string();
    let lock = first.dir.join(".gantry/instance.lock");
    assert!(
        eventually(10, || std::fs::read_to_string(&lock)
            .is_ok_and(|t| t.contains("api="))),
        "the lock never named the API"
    );

    let second = Command::new(gantry())
        .arg("up")
        .current_dir(&first.dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already running: gantry pid "), "{stderr}");
    assert!(stderr.contains(&format!("API {api}")), "{stderr}");
    // The pid is a host pid: the first gantry's stub or its namespace init (its child).
    let pid: u32 = stderr
        .split("gantry pid ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .expect("a pid");
    let stub = first.child.id();
    let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<u32>()
                .ok()
        });
    assert!(
        pid == stub || parent == Some(stub),
        "pid {pid} is not gantry's (stub {stub})"
    );
    // Nothing of the second one reached the stack: no second pre-flight, no mission.
    let missions = Command::new(gantry())
        .args(["missions", "--json"])
        .current_dir(&first.dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&missions.stdout);
    assert!(!text.contains("port"), "a mission was written: {text}");
    assert_eq!(first.stop(), 0);
}

#[test]
fn a_state_dir_others_can_write_is_refused_before_anything_starts() {
    let port = free_port();
    let dir = tempdir("shared-state");
    std::fs::create_dir_all(dir.join(".gantry")).unwrap();
    std::fs::set_permissions(dir.join(".gantry"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let toml = STACK
        .replace("PORT", &port.to_string())
        .replace("FIXTURE", fixture().to_str().unwrap());
    std::fs::write(
        dir.join("gantry.toml"),
        format!("[settings]\napi = \"127.0.0.1:0\"\n{toml}"),
    )
    .unwrap();
    let out = Command::new(gantry())
        .arg("up")
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("writable by group or others") && stderr.contains("chmod go-w"),
        "{stderr}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the app started"
    );
    assert!(
        !dir.join(".gantry/api.token").exists(),
        "a token was written"
    );
}

#[test]
fn state_files_are_private() {
    let port = free_port();
    let mut stack = up(
        "private-files",
        &STACK.replace("PORT", &port.to_string()),
        &[],
    );
    stack.wait_boot(30);
    let state = stack.dir.join(".gantry");
    assert!(eventually(10, || state.join("api.token").exists()));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("logs")), 0o700);
    for f in [
        "api.token",
        "api.addr",
        "state.db",
        "instance.lock",
        "logs/app.log",
    ] {
        let path = state.join(f);
        if f == "logs/app.log" {
            assert!(eventually(10, || path.exists()), "no log file");
        }
        assert_eq!(mode(&path), 0o600, "{f}");
    }
    assert_eq!(stack.stop(), 0);
}

#[test]
fn control_sequences_in_service_output_are_shown_not_sent_to_the_terminal() {
    use std::io::BufRead as _;
    let dir = tempdir("escapes");
    std::fs::write(
        dir.join("gantry.toml"),
        r#"
[settings]
api = "127.0.0.1:0"

[services.noisy]
kind = "task"
command = ["sh", "-c", 'printf "\033]52;c;ZXZpbA==\007\033]0;pwned\007\033[2Jafter\n"']
"#,
    )
    .unwrap();
    let mut child = Command::new(gantry())
        .arg("up")
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = String::new();
    while std::time::Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) else {
            continue;
        };
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("after") {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        !seen.contains('\x1b') && !seen.contains('\x07'),
        "raw controls reached stdout: {seen:?}"
    );
    assert!(
        seen.contains("\\e]52;c;ZXZpbA==\\x07\\e]0;pwned\\x07\\e[2Jafter"),
        "{seen}"
    );
}

#[test]
fn client_commands_refuse_a_file_whose_settings_are_in_doubt() {
    let dir = tempdir("client-syntax");
    std::fs::write(
        dir.join("gantry.toml"),
        "[settings\napi = \"127.0.0.1:7070\"\n\n[services.app]\ncommand = \"true\"\n",
    )
    .unwrap();
    for args in [&["status"][..], &["down"], &["logs"], &["missions"]] {
        let out = Command::new(gantry())
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
        assert!(
            stderr.contains("leave its [settings]"),
            "{args:?}: {stderr}"
        );
    }
    // An error elsewhere does not stop a client from finding the instance.
    std::fs::write(
        dir.join("gantry.toml"),
        "[services.app]\ncommand = \"true\"\ndepends_on = [\"ghost\"]\n",
    )
    .unwrap();
    let out = Command::new(gantry())
        .arg("status")
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("leave its [settings]"), "{stderr}");
}

#[test]
fn idle_api_clients_cannot_starve_gantry_of_descriptors_and_restart_a_healthy_service() {
    use std::io::BufRead as _;
    let port = free_port();
    let dir = tempdir("fd-exhaustion");
    let toml = format!(
        r#"
[settings]
api = "127.0.0.1:0"

[services.calm]
command = "FIXTURE --name calm --listen {port}"
readiness = {{ tcp = "127.0.0.1:{port}" }}
liveness = {{ tcp = "127.0.0.1:{port}", period = "100ms", failure_threshold = 1 }}
"#
    )
    .replace("FIXTURE", fixture().to_str().unwrap());
    std::fs::write(dir.join("gantry.toml"), toml).unwrap();
    // gantry with 128 descriptors in all (it cannot raise a hard limit).
    let mut child = Command::new("prlimit")
        .args(["--nofile=128:128", "--"])
        .arg(gantry())
        .args(["up", "--json"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prlimit (util-linux)");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    let mut events = Vec::new();
    let wait = |events: &mut Vec<serde_json::Value>,
                secs: u64,
                pred: &dyn Fn(&serde_json::Value) -> bool| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            if let Ok(v) = rx.recv_timeout(std::time::Duration::from_millis(50)) {
                let hit = pred(&v);
                events.push(v);
                if hit {
                    return true;
                }
            }
        }
        false
    };
    assert!(
        wait(&mut events, 30, &|v| v["event"] == "boot"),
        "no boot: {events:?}"
    );
    let addr_file = dir.join(".gantry/api.addr");
    assert!(eventually(10, || addr_file.exists()));
    let api = std::fs::read_to_string(&addr_file)
        .unwrap()
        .trim()
        .to_string();
    // An unprivileged neighbour opens 400 connections and says nothing.
    let mut held = Vec::new();
    for _ in 0..400 {
        if let Ok(c) = std::net::TcpStream::connect(&api) {
            held.push(c);
        }
    }
    // Liveness runs every 100 ms with a threshold of 1: a single probe failed for want of
    // descriptors would restart calm. Watch for 3 s.
    let restarted = wait(&mut events, 3, &|v| {
        v["event"] == "transition"
            && v["service"] == "calm"
            && v["to"] != "ready"
            && v["to"] != "running"
    });
    drop(held);
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        !restarted,
        "calm left ready under the connection flood: {events:#?}"
    );
}

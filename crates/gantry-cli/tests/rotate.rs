//! `gantry rotate SECRET` end to end: a canary secret from a file, a consumer that prints it and writes its hash; the file changes, the rotation restarts the consumer with the new value, an unrelated service keeps its pid, and neither value appears in any output, log file or API answer.

mod support;

use std::process::Command;
use support::*;

/// The sha256 of a file, as `sha256sum` prints it (the same tool the consumer uses).
fn sha256_of(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn write_secret(dir: &std::path::Path, value: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("token");
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Every byte gantry left in the state dir's files, lossily as text.
fn state_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.join(".gantry")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    text
}

#[test]
fn rotate_restarts_the_consumer_with_the_new_value_and_never_shows_either() {
    let pid = std::process::id();
    let old = format!("canary-old-{pid}-7f3a9c");
    let new = format!("canary-new-{pid}-91be04");
    let toml = r#"
[secrets.TOKEN]
from_file = "token"
services = ["consumer"]

[services.consumer]
command = ["sh", "-c", 'echo "token=$TOKEN"; printf %s "$TOKEN" | sha256sum > hash.tmp && mv hash.tmp hash; exec sleep 600']

[services.other]
command = ["sleep", "600"]
"#;
    let mut up = up_with("rotate", toml, &[], |dir| write_secret(dir, &old));
    let boot = up.wait_boot(30);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    let hash = dir.join("hash");
    let old_hash = sha256_of(&dir.join("token"));
    assert!(
        eventually(20, || std::fs::read_to_string(&hash)
            .is_ok_and(|h| h.starts_with(&old_hash))),
        "the consumer never wrote the old value's hash"
    );
    let (_, status) = gantry_in(&dir, &["status", "--json"]);
    let pid_of = |status: &str, name: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(status).unwrap_or_default();
        v["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
            .map(|s| s["pid"].clone())
            .unwrap_or_default()
    };
    let other_pid = pid_of(&status, "other");

    // An unknown secret is a usage error and changes nothing.
    let (code, out) = gantry_in(&dir, &["rotate", "NOPE"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unknown secret `NOPE`"), "{out}");

    write_secret(&dir, &new);
    let new_hash = sha256_of(&dir.join("token"));
    let (code, rotate_out) = gantry_in(&dir, &["rotate", "TOKEN"]);
    assert_eq!(code, 0, "{rotate_out}");
    let rotated = up.wait_for("the rotation", 30, |v| v["event"] == "secret_rotated");
    assert_eq!(
        rotated["restarted"],
        serde_json::json!(["consumer"]),
        "{rotated}"
    );
    assert!(
        eventually(30, || std::fs::read_to_string(&hash)
            .is_ok_and(|h| h.starts_with(&new_hash))),
        "the consumer was not restarted with the new value; events:\n{}",
        up.log()
    );
    let (_, status_after) = gantry_in(&dir, &["status", "--json"]);
    assert!(!other_pid.is_null(), "{status}");
    assert_eq!(pid_of(&status_after, "other"), other_pid, "{status_after}");
    // Both incarnations printed their value, masked.
    let log_file = dir.join(".gantry/logs/consumer.log");
    assert!(
        eventually(10, || std::fs::read_to_string(&log_file)
            .is_ok_and(|l| l.matches("token=[redacted]").count() >= 2)),
        "{}",
        std::fs::read_to_string(&log_file).unwrap_or_default()
    );
    let (_, missions) = gantry_in(&dir, &["missions", "--json"]);
    assert_eq!(up.stop(), 0);

    let everything = format!(
        "{}\n{rotate_out}\n{status}\n{status_after}\n{missions}\n{}",
        up.log(),
        state_text(&dir)
    );
    for value in [&old, &new] {
        assert!(!everything.contains(value.as_str()), "{value} leaked");
    }
}

#[test]
fn revalidation_says_a_secret_changed_at_its_source_without_its_value() {
    let pid = std::process::id();
    let old = format!("reval-old-{pid}-c0ffee");
    let new = format!("reval-new-{pid}-decade");
    let toml = r#"
[settings]
revalidate = "1s"

[secrets.TOKEN]
from_file = "token"
services = ["consumer"]

[services.consumer]
command = ["sh", "-c", 'echo "token=$TOKEN"; exec sleep 600']
"#;
    let mut up = up_with("rotate-reval", toml, &[], |dir| write_secret(dir, &old));
    let boot = up.wait_boot(30);
    assert_eq!(boot["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    write_secret(&dir, &new);
    let changed = up.wait_for("the change", 30, |v| v["event"] == "secret_changed");
    assert_eq!(changed["secret"], "TOKEN", "{changed}");
    let (code, missions) = gantry_in(&dir, &["missions"]);
    assert_eq!(code, 0, "{missions}");
    assert!(missions.contains("gantry rotate TOKEN"), "{missions}");
    // The rotation resolves the mission.
    let (code, out) = gantry_in(&dir, &["rotate", "TOKEN"]);
    assert_eq!(code, 0, "{out}");
    up.wait_for("the rotation", 30, |v| v["event"] == "secret_rotated");
    let (_, after) = gantry_in(&dir, &["missions"]);
    assert!(!after.contains("gantry rotate TOKEN"), "{after}");
    assert_eq!(up.stop(), 0);
    let everything = format!(
        "{}\n{missions}\n{out}\n{after}\n{}",
        up.log(),
        state_text(&dir)
    );
    for value in [&old, &new] {
        assert!(!everything.contains(value.as_str()), "{value} leaked");
    }
}

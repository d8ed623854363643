//! `gantry reload` and SIGHUP end to end: an edited service restarts alone (the others keep their pids), a broken file or an added service changes nothing and says why, the stack keeps running.

mod support;

use std::process::Command;
use support::*;

/// Each service's host pid from `gantry status --json` once every one is known (pids are
/// mapped by the usage sample every 2 s), polled up to 20 s.
fn pids(dir: &std::path::Path, names: &[&str]) -> Vec<u64> {
    let mut found = Vec::new();
    let ok = eventually(20, || {
        let (_, status) = gantry_in(dir, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&status).unwrap_or_default();
        found = names
            .iter()
            .filter_map(|n| {
                v["services"].as_array()?.iter().find(|s| s["name"] == *n)?["pid"].as_u64()
            })
            .collect();
        found.len() == names.len()
    });
    assert!(ok, "pids of {names:?} never all known");
    found
}

const STACK: &str = r#"
[services.db]
command = ["sleep", "600"]
env_file = ["db.env"]

[services.api]
command = ["sleep", "600"]
depends_on = ["db"]
env = { MODE = "one" }

[services.worker]
command = ["sleep", "600"]
readiness = { exec = ["true"], period = "10s" }
"#;

fn write_db_env(dir: &std::path::Path) {
    std::fs::write(dir.join("db.env"), "DB_MODE=a\n").unwrap();
}

#[test]
fn sighup_restarts_only_the_edited_service() {
    let mut up = up_with("reload-hup", STACK, &[], write_db_env);
    assert_eq!(up.wait_boot(30)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    let before = pids(&dir, &["db", "api", "worker"]);
    let file = dir.join("gantry.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("MODE = \"one\"", "MODE = \"two\"")).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &up.child.id().to_string()])
        .status();
    let reloaded = up.wait_for("the reload", 30, |v| v["event"] == "reloaded");
    assert_eq!(
        reloaded["changed"],
        serde_json::json!(["api"]),
        "{reloaded}"
    );
    assert_eq!(
        reloaded["restarted"],
        serde_json::json!(["api"]),
        "{reloaded}"
    );
    assert_eq!(reloaded["unchanged"], 2, "{reloaded}");
    up.wait_count("api", "running", 2, 20);
    let ok = eventually(20, || {
        let after = pids(&dir, &["db", "api", "worker"]);
        after[1] != before[1] && after[0] == before[0] && after[2] == before[2]
    });
    assert!(
        ok,
        "before {before:?}, after {:?}; events:\n{}",
        pids(&dir, &["db", "api", "worker"]),
        up.log()
    );
    // A second SIGHUP with nothing but a comment added (every line moved) touches nothing.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("# moved\n# down\n{text}")).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &up.child.id().to_string()])
        .status();
    let n = up.events.len();
    let again = up.wait_for("the second reload", 30, |v| {
        v["event"] == "reloaded" && v["changed"] == serde_json::json!([])
    });
    assert_eq!(again["unchanged"], 3, "{again}");
    assert!(n <= up.events.len());

    // An env file read again: db changed, and api, which depends on it, restarts after it.
    let before = pids(&dir, &["db", "api", "worker"]);
    std::fs::write(dir.join("db.env"), "DB_MODE=b\n").unwrap();
    let (code, out) = gantry_in(&dir, &["reload"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("db changed — restarting db; 2 unchanged"),
        "{out}"
    );
    up.wait_count("db", "running", 2, 20);
    up.wait_count("api", "running", 3, 20);
    // In dependency order: db's new incarnation runs before api's third one.
    let nth = |service: &str, n: usize| {
        up.events
            .iter()
            .enumerate()
            .filter(|(_, v)| {
                v["event"] == "transition" && v["service"] == service && v["to"] == "running"
            })
            .nth(n)
            .map(|(i, _)| i)
    };
    assert!(
        nth("db", 1) < nth("api", 2),
        "api came back before db; events:\n{}",
        up.log()
    );
    let ok = eventually(20, || {
        let after = pids(&dir, &["db", "api", "worker"]);
        after[0] != before[0] && after[1] != before[1] && after[2] == before[2]
    });
    assert!(ok, "before {before:?}; events:\n{}", up.log());
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_broken_file_or_a_removed_service_changes_nothing_and_an_added_one_starts() {
    let mut up = up_with("reload-broken", STACK, &[], write_db_env);
    assert_eq!(up.wait_boot(30)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    let before = pids(&dir, &["db", "api", "worker"]);
    let file = dir.join("gantry.toml");
    let good = std::fs::read_to_string(&file).unwrap();

    // A bad value: exit 1, the diagnostic with file:line:col, nothing restarted.
    std::fs::write(
        &file,
        good.replace(
            "[services.worker]\n",
            "[services.worker]\nstop_timeout = \"soon\"\n",
        ),
    )
    .unwrap();
    let (code, out) = gantry_in(&dir, &["reload"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("invalid stack file"), "{out}");
    assert!(out.contains("gantry.toml:"), "{out}");
    assert!(out.contains("stop_timeout"), "{out}");

    // An added service: started (the others untouched); a removed one: refused, named.
    let with_extra = format!("{good}\n[services.extra]\ncommand = [\"sleep\", \"600\"]\n");
    std::fs::write(&file, &with_extra).unwrap();
    let (code, out) = gantry_in(&dir, &["reload", "gantry.toml"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("added and starting extra"), "{out}");
    up.wait_state("extra", "running", 20);
    std::fs::write(&file, &good).unwrap();
    let (code, out) = gantry_in(&dir, &["reload"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("reload cannot remove services yet: removed extra"),
        "{out}"
    );
    assert!(out.contains("gantry down"), "{out}");
    let good = with_extra;

    // A setting that applies only at gantry's start: said, the rest applied.
    std::fs::write(
        &file,
        good.replace("api = \"127.0.0.1:0\"", "api = \"127.0.0.1:1\""),
    )
    .unwrap();
    let (code, out) = gantry_in(&dir, &["reload"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: api changed and needs a restart of gantry"),
        "{out}"
    );

    // The stack kept running as it was.
    assert_eq!(pids(&dir, &["db", "api", "worker"]), before);
    assert!(
        up.events
            .iter()
            .filter(|v| v["event"] == "reloaded")
            .all(|v| v["changed"] == serde_json::json!([])),
        "{}",
        up.log()
    );
    let (_, missions) = gantry_in(&dir, &["missions", "--json"]);
    assert!(
        !missions.contains("\"reload\""),
        "resolved by the good reload: {missions}"
    );
    let (_, all) = gantry_in(&dir, &["missions", "--json", "--all"]);
    assert!(all.contains("\"reload\""), "{all}");
    // Put right, a reload goes through.
    std::fs::write(&file, &good).unwrap();
    let (code, out) = gantry_in(&dir, &["reload"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing changed; 4 unchanged"), "{out}");
    assert_eq!(up.stop(), 0);
}

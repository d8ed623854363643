//! Service output through gantry's one reader of every pipe: each line in order, both streams, many services at once, and an exit reported while a child still holds the pipes.

mod support;

use support::*;

#[test]
fn every_line_of_many_services_arrives_in_order_on_its_stream() {
    const SERVICES: usize = 20;
    const LINES: usize = 150;
    let mut toml = String::new();
    for s in 0..SERVICES {
        toml.push_str(&format!(
            r#"
[services.talk{s:02}]
command = ["sh", "-c", "i=0; while [ $i -lt {LINES} ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done; exec sleep 60"]
"#
        ));
    }
    let mut up = up("output-order", &toml, &[]);
    assert_eq!(up.wait_boot(30)["outcome"], "go", "{}", up.log());
    let want = SERVICES * LINES * 2;
    let seen = std::cell::Cell::new(0);
    up.wait_for("every line of every service", 30, |v| {
        if v["event"] == "output" && v["service"].as_str().is_some_and(|s| s.starts_with("talk")) {
            seen.set(seen.get() + 1);
        }
        seen.get() >= want
    });
    for s in 0..SERVICES {
        let name = format!("talk{s:02}");
        for (stream, prefix) in [("out", "out-"), ("err", "err-")] {
            let lines: Vec<String> = up
                .events
                .iter()
                .filter(|v| v["event"] == "output" && v["service"] == name && v["stream"] == stream)
                .map(|v| v["line"].as_str().unwrap_or_default().to_string())
                .collect();
            let expected: Vec<String> = (0..LINES).map(|i| format!("{prefix}{i}")).collect();
            assert_eq!(lines, expected, "{name} {stream}");
        }
    }
    assert_eq!(up.stop(), 0);
}

#[test]
fn a_task_whose_child_keeps_its_pipes_open_still_completes() {
    // The task exits at once; the `sleep` it leaves behind holds its stdout and stderr for a
    // minute. Its completion must not wait for them (nor must `api`, which waits for it).
    let toml = r#"
[services.migrate]
kind = "task"
command = ["sh", "-c", "sleep 60 & echo migrated; exit 0"]

[services.api]
command = "FIXTURE --name api"
depends_on = { migrate = "completed" }
"#;
    let mut up = up("output-daemon", toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    up.wait_state("migrate", "completed", 1);
    up.wait_for("migrate's line", 5, |v| {
        v["event"] == "output" && v["service"] == "migrate" && v["line"] == "migrated"
    });
    assert!(up.index("api", "starting") > up.index("migrate", "completed"));
    assert_eq!(up.stop(), 0);
}

//! Flags delivered to services that only read their environment (`GANTRY_FLAG_<NAME>`, with the
//! opt-in restart of `flags_restart`), and the ingress mode switch as kill-switch overrides (one
//! source of truth: `gantry ingress mode` and `gantry brownout on --shed` agree with the flags,
//! both audited), against a real `gantry up`.

mod support;

use std::path::Path;
use support::*;

/// The lines a service appended to `seen-NAME.txt` at each of its starts: `VALUE PID`.
fn seen(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("seen-{name}.txt")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn env_flags_follow_changes_and_restart_only_who_asked() {
    let toml = r#"
[flags.color]
variants = { red = "red", blue = "blue" }
default = "red"

[flags.limit]
variants = { low = 10, high = 1000 }
default = "low"

[services.reader]
command = ["sh", "-c", "echo \"$GANTRY_FLAG_COLOR $$\" >> seen-reader.txt; exec sleep 600"]
start_grace = "100ms"
flags_restart = ["color"]

[services.bystander]
command = ["sh", "-c", "echo \"$GANTRY_FLAG_COLOR $GANTRY_FLAG_LIMIT $$\" >> seen-bystander.txt; exec sleep 600"]
start_grace = "100ms"
"#;
    let mut up = up("flags-env-delivery", toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    assert!(eventually(10, || seen(&dir, "reader").len() == 1));
    assert!(seen(&dir, "reader")[0].starts_with("red "));
    assert!(eventually(10, || seen(&dir, "bystander").len() == 1));
    assert!(seen(&dir, "bystander")[0].starts_with("red 10 "));

    // A flag the reader does not name: nobody restarts.
    let (code, out) = gantry_in(&dir, &["flag", "set", "limit", "1000", "--reason", "t"]);
    assert_eq!(code, 0, "{out}");
    // The flag it names: the reader restarts and reads the new value; the bystander does not.
    let (code, out) = gantry_in(&dir, &["flag", "set", "color", "blue", "--reason", "t"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        eventually(15, || seen(&dir, "reader").len() == 2),
        "the reader did not restart: {:?}\n{}",
        seen(&dir, "reader"),
        up.log()
    );
    let reader = seen(&dir, "reader");
    assert!(reader[1].starts_with("blue "), "{reader:?}");
    assert_ne!(reader[0], reader[1], "a new process");
    up.wait_for("the flags_restart event", 5, |e| {
        e["event"] == "flags_restart" && e["changed"] == serde_json::json!(["color"])
    });
    assert_eq!(
        seen(&dir, "bystander").len(),
        1,
        "the bystander kept running"
    );

    // The bystander's environment followed for its next start.
    let (code, out) = gantry_in(&dir, &["restart", "bystander"]);
    assert_eq!(code, 0, "{out}");
    assert!(eventually(15, || seen(&dir, "bystander").len() == 2));
    assert!(
        seen(&dir, "bystander")[1].starts_with("blue 1000 "),
        "{:?}",
        seen(&dir, "bystander")
    );

    // Unset: back to the default, the reader restarts again.
    let (code, out) = gantry_in(&dir, &["flag", "unset", "color", "--reason", "t"]);
    assert_eq!(code, 0, "{out}");
    assert!(eventually(15, || seen(&dir, "reader").len() == 3));
    assert!(seen(&dir, "reader")[2].starts_with("red "));
    assert_eq!(up.stop(), 0);
}

/// A request through the ingress (status 0 when nothing answers).
fn through(port: u16, path: &str) -> u16 {
    http_with(&format!("127.0.0.1:{port}"), "GET", path, &[], "").map_or(0, |(s, _)| s)
}

fn flags_json(dir: &Path) -> serde_json::Value {
    let (code, out) = gantry_in(dir, &["flags", "--json"]);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn override_of(flags: &serde_json::Value, key: &str) -> Option<serde_json::Value> {
    flags["overrides"]
        .as_array()?
        .iter()
        .find(|o| o["key"] == key)
        .map(|o| o["value"].clone())
}

#[test]
fn the_ingress_mode_is_set_through_the_kill_switches() {
    let (api, ing) = (free_port(), free_port());
    let toml = format!(
        r#"
[ingress]
listen = "127.0.0.1:{ing}"

[[ingress.routes]]
path = "/app"
service = "api"
shed_in_brownout = true

[[ingress.routes]]
path = "/"
service = "api"

[services.api]
command = "FIXTURE --name api --http {api}"
upstream = "127.0.0.1:{api}"
readiness = {{ http = "http://127.0.0.1:{api}/health" }}
"#
    );
    let mut up = up("flags-ingress-mode", &toml, &[]);
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    assert!(eventually(10, || through(ing, "/health") == 200));

    // Brownout shedding everything through the old route: the flags say so too.
    let (code, out) = gantry_in(
        &dir,
        &[
            "ingress", "mode", "brownout", "--shed", "100", "--reason", "overload",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("brownout"), "{out}");
    assert!(eventually(5, || through(ing, "/app") == 503));
    assert!(
        eventually(5, || through(ing, "/health") == 503),
        "100% of the other routes shed"
    );
    let flags = flags_json(&dir);
    assert_eq!(
        override_of(&flags, "brownout"),
        Some(true.into()),
        "{flags}"
    );
    assert_eq!(
        override_of(&flags, "brownout_shed_percent"),
        Some(100.into()),
        "{flags}"
    );

    // Back to normal: the switches' overrides go (their definitions say off).
    let (code, out) = gantry_in(&dir, &["ingress", "mode", "normal", "--reason", "calm"]);
    assert_eq!(code, 0, "{out}");
    assert!(eventually(5, || through(ing, "/app") == 200));
    assert_eq!(through(ing, "/health"), 200);
    let flags = flags_json(&dir);
    assert_eq!(override_of(&flags, "brownout"), None, "{flags}");

    // The CLI's switch with a shed share: the other routes shed half, the marked ones all.
    let (code, out) = gantry_in(
        &dir,
        &["brownout", "on", "--shed", "100", "--reason", "again"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(eventually(5, || through(ing, "/health") == 503));
    let (code, out) = gantry_in(&dir, &["brownout", "off", "--reason", "done"]);
    assert_eq!(code, 0, "{out}");
    assert!(eventually(5, || through(ing, "/health") == 200));
    let flags = flags_json(&dir);
    assert_eq!(
        override_of(&flags, "brownout_shed_percent"),
        None,
        "{flags}"
    );

    // Audited with who and why.
    let (code, audit) = gantry_in(&dir, &["audit", "--json"]);
    assert_eq!(code, 0, "{audit}");
    let rows: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let rows = rows
        .as_array()
        .cloned()
        .unwrap_or_else(|| rows["audit"].as_array().cloned().unwrap_or_default());
    assert!(
        rows.iter().any(|r| r["action"] == "ingress.mode"
            && r["target"] == "brownout"
            && r["reason"] == "overload"
            && r["actor"].as_str().is_some_and(|a| a.starts_with("cli:"))),
        "{audit}"
    );
    assert_eq!(up.stop(), 0);
}

/// What a service that reads its flags every way writes at each start and in a loop: the
/// `GANTRY_FLAG_SAFE_MODE` it started with (appended to `env.txt`), OFREP's answer for
/// `safe_mode` through `GANTRY_OFREP_URL` and its token (`ofrep.json`), and `state_dir/flags.json`
/// as it reads it (`file.json`); each written to a temporary file and renamed.
const GUARD: &str = r#"
echo "$GANTRY_FLAG_SAFE_MODE $$" >> env.txt
while :; do
  curl -sf -X POST -H "Authorization: Bearer $GANTRY_OFREP_TOKEN" \
    -H "Content-Type: application/json" -d '{"context":{}}' \
    "$GANTRY_OFREP_URL/ofrep/v1/evaluate/flags/safe_mode" > ofrep.tmp && mv ofrep.tmp ofrep.json
  cp .gantry/flags.json file.tmp && mv file.tmp file.json
  sleep 0.05
done
"#;

/// The JSON a service wrote to `name` in `dir` (Null while it has not).
fn written(dir: &Path, name: &str) -> serde_json::Value {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Whether the service sees `safe_mode` = `on` through all three deliveries: OFREP, the flags
/// file, and the environment of its latest start (`starts` of them so far).
fn sees_safe_mode(dir: &Path, on: bool, starts: usize) -> bool {
    let env = seen(dir, "guard");
    written(dir, "ofrep.json")["value"] == on
        && written(dir, "file.json")["safe_mode"] == on
        && env.len() == starts
        && env.last().is_some_and(|l| l.starts_with(&format!("{on} ")))
}

#[test]
fn safe_mode_reaches_a_running_service_through_ofrep_the_flags_file_and_its_environment() {
    let api = free_port();
    let toml = format!(
        r#"
[settings]
api = "127.0.0.1:{api}"

[services.guard]
command = ["sh", "guard.sh"]
start_grace = "100ms"
flags_restart = ["safe_mode"]
"#
    );
    let mut up = up_with("flags-safe-mode", &toml, &[], |dir| {
        std::fs::write(
            dir.join("guard.sh"),
            GUARD.replace("env.txt", "seen-guard.txt"),
        )
        .unwrap();
    });
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    let state = |dir: &Path| {
        format!(
            "env {:?}, OFREP {}, file {}",
            seen(dir, "guard"),
            written(dir, "ofrep.json"),
            written(dir, "file.json")["safe_mode"]
        )
    };
    assert!(
        eventually(15, || sees_safe_mode(&dir, false, 1)),
        "{}\n{}",
        state(&dir),
        up.log()
    );

    let (code, out) = gantry_in(&dir, &["safe-mode", "on", "--reason", "incident drill"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        eventually(15, || sees_safe_mode(&dir, true, 2)),
        "safe mode on did not reach the service: {}\n{}",
        state(&dir),
        up.log()
    );
    let ofrep = written(&dir, "ofrep.json");
    assert_eq!(ofrep["key"], "safe_mode", "{ofrep}");
    assert_eq!(ofrep["reason"], "STATIC", "{ofrep}");

    let (code, out) = gantry_in(&dir, &["safe-mode", "off", "--reason", "drill over"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        eventually(15, || sees_safe_mode(&dir, false, 3)),
        "safe mode off did not reach the service: {}\n{}",
        state(&dir),
        up.log()
    );
    // Each start was a new process.
    let env = seen(&dir, "guard");
    let pids: std::collections::HashSet<&str> =
        env.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(pids.len(), 3, "{env:?}");
    assert_eq!(up.stop(), 0);
}

/// A service that writes the `GANTRY_OFREP_URL` it got (`url.txt`, `unset` without one) and
/// evaluates `greeting` through it (`eval.json`).
const EVALUATOR: &str = r#"
echo "${GANTRY_OFREP_URL-unset}" > url.txt
[ -n "$GANTRY_OFREP_URL" ] || exit 0
for i in $(seq 100); do
  curl -sf --max-time 5 -X POST -H "Authorization: Bearer $GANTRY_OFREP_TOKEN" \
    -H "Content-Type: application/json" -d '{"context":{}}' \
    "$GANTRY_OFREP_URL/ofrep/v1/evaluate/flags/greeting" > eval.tmp && mv eval.tmp eval.json && exit 0
  sleep 0.1
done
exit 1
"#;

fn evaluator_stack(api: &str) -> String {
    format!(
        r#"
[settings]
api = "{api}"

[flags.greeting]
variants = {{ hello = "hello", hi = "hi" }}
default = "hi"

[services.reader]
kind = "task"
command = ["sh", "evaluate.sh"]
"#
    )
}

/// With `api = "127.0.0.1:0"` the port is picked when gantry binds it, before the first service
/// starts: services get the address actually bound and evaluate flags through it.
#[test]
fn with_api_port_0_services_get_the_bound_address_in_gantry_ofrep_url() {
    let mut up = up_with(
        "flags-ofrep-port0",
        &evaluator_stack("127.0.0.1:0"),
        &[],
        |dir| std::fs::write(dir.join("evaluate.sh"), EVALUATOR).unwrap(),
    );
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    assert!(
        eventually(15, || written(&dir, "eval.json")["value"] == "hi"),
        "the service did not evaluate the flag: url {:?}\n{}",
        std::fs::read_to_string(dir.join("url.txt")),
        up.log()
    );
    let url = std::fs::read_to_string(dir.join("url.txt")).unwrap();
    let bound = api_addr_in(&dir);
    assert_eq!(url.trim(), format!("http://{bound}"), "the address bound");
    assert!(!bound.ends_with(":0"), "{bound}");
    assert_eq!(written(&dir, "eval.json")["key"], "greeting");

    // `gantry flag list` is `gantry flags`.
    for json in [&["--json"][..], &[]] {
        let (code, flags) = gantry_in(&dir, &[&["flags"][..], json].concat());
        assert_eq!(code, 0, "{flags}");
        let (code, list) = gantry_in(&dir, &[&["flag", "list"][..], json].concat());
        assert_eq!(code, 0, "{list}");
        assert!(list.contains("greeting"), "{list}");
        assert_eq!(list, flags);
    }
    assert_eq!(up.stop(), 0);
}

/// With the API on a unix socket services get no `GANTRY_OFREP_URL` (OFREP providers speak HTTP
/// over TCP), and `gantry check` says so and what to do.
#[test]
fn with_the_api_on_a_unix_socket_services_get_no_ofrep_url_and_check_says_why() {
    let mut up = up_with(
        "flags-ofrep-unix",
        &evaluator_stack("unix:.gantry/api.sock"),
        &[],
        |dir| std::fs::write(dir.join("evaluate.sh"), EVALUATOR).unwrap(),
    );
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let dir = up.dir.clone();
    let url = dir.join("url.txt");
    assert!(eventually(10, || std::fs::read_to_string(&url)
        .is_ok_and(|u| u.ends_with('\n'))));
    assert_eq!(std::fs::read_to_string(&url).unwrap().trim(), "unset");
    let (code, out) = gantry_in(&dir, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.matches("services get no GANTRY_OFREP_URL").count(),
        1,
        "{out}"
    );
    assert!(out.contains("flags.json"), "{out}");
    assert_eq!(up.stop(), 0);
}

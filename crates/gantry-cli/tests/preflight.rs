//! End-to-end tests of the pre-flight, secrets that fail closed and never leak, and missions.

mod support;

use std::process::Command;
use support::*;

fn run_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(gantry());
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_missing_required_secret_is_no_go_before_anything_starts() {
    let dir = tempdir("secret-missing");
    let marker = format!("never-started-{}", std::process::id());
    std::fs::write(
        dir.join("gantry.toml"),
        format!(
            r#"
[settings]
api = "127.0.0.1:0"

[secrets.DATABASE_URL]
from_env = "GANTRY_TEST_MISSING_SECRET"
services = ["api"]

[services.api]
command = "{} --name api --marker {marker}"
"#,
            fixture().display()
        ),
    )
    .unwrap();
    let (code, out) = run_in(&dir, &["up"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NO-GO"), "{out}");
    assert!(
        out.contains("DATABASE_URL") && out.contains("GANTRY_TEST_MISSING_SECRET"),
        "names the secret and where it looked: {out}"
    );
    assert!(!out.contains("api: starting"), "nothing may start: {out}");
    assert!(processes_with(&marker).is_empty());
    // The NO-GO is a mission someone can act on.
    let (code, missions) = run_in(&dir, &["missions"], &[]);
    assert_eq!(code, 0);
    assert!(
        missions.contains("DATABASE_URL") && missions.contains("preflight: secret"),
        "{missions}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_port_conflict_is_no_go_naming_the_port_and_its_holder() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = tempdir("port-conflict");
    std::fs::write(
        dir.join("gantry.toml"),
        format!(
            r#"
[services.web]
command = "{} --name web --listen {port}"
readiness = {{ tcp = "127.0.0.1:{port}" }}
"#,
            fixture().display()
        ),
    )
    .unwrap();
    let (code, out) = run_in(&dir, &["preflight"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "port {port} is already in use by pid {}",
            std::process::id()
        )),
        "{out}"
    );
    let (code, out) = run_in(&dir, &["preflight", "--json"], &[]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "NO-GO");
    drop(holder);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_port_conflict_on_a_store_probe_is_no_go_before_boot() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = tempdir("store-port-conflict");
    std::fs::write(
        dir.join("gantry.toml"),
        format!(
            r#"
[services.db]
command = "{} --name db"
readiness = {{ postgres = "postgres://app:hunter2pw@127.0.0.1:{port}/app" }}
"#,
            fixture().display()
        ),
    )
    .unwrap();
    let (code, out) = run_in(&dir, &["preflight"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("port {port} is already in use by pid")),
        "{out}"
    );
    assert!(!out.contains("hunter2pw"), "{out}");
    drop(holder);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_canary_secret_never_appears_in_any_output() {
    let canary = format!("canary-s3cr3t-{}-xyzzy", std::process::id());
    let dir = tempdir("canary");
    let secret_file = dir.join("token.txt");
    std::fs::write(&secret_file, format!("{canary}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("gantry.toml"),
        format!(
            r#"
[settings]
api = "127.0.0.1:0"

[secrets.API_TOKEN]
from_file = "token.txt"
services = ["leaky"]

[services.leaky]
command = ["sh", "-c", "echo token=$API_TOKEN; echo err $API_TOKEN >&2; exec {fixture} --name leaky --listen {port}"]
readiness = {{ tcp = "127.0.0.1:{port}" }}
liveness = {{ exec = ["sh", "-c", "echo probe saw $API_TOKEN >&2; exit 1"], period = "100ms", failure_threshold = 2 }}
restart = "on-failure"

[services.other]
command = "{fixture} --name other --print-env API_TOKEN"
"#,
            fixture = fixture().display()
        ),
    )
    .unwrap();
    let child = Command::new(gantry())
        .args(["up", "--json"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr_file = dir.join(".gantry/api.addr");
    assert!(eventually(20, || addr_file.exists()));
    let addr = std::fs::read_to_string(&addr_file).unwrap();
    // Let the liveness probe fail (it prints the secret) and restart the service at least once.
    let status_file = dir.join("status.json");
    assert!(eventually(20, || {
        let (_, s) = run_in(&dir, &["status", "--json"], &[]);
        std::fs::write(&status_file, &s).unwrap();
        s.contains("\"restarts\":1") || s.contains("\"restarts\":2")
    }));
    let mut outputs = vec![std::fs::read_to_string(&status_file).unwrap()];
    for path in [
        "/api/v1/status",
        "/api/v1/services/leaky",
        "/health",
        "/health/ready?verbose",
        "/metrics",
        "/api/v1/startup",
    ] {
        let out = Command::new("curl")
            .args(["-s", &format!("http://{}{path}", addr.trim())])
            .output();
        if let Ok(o) = out {
            outputs.push(String::from_utf8_lossy(&o.stdout).into_owned());
        }
    }
    outputs.push(run_in(&dir, &["logs"], &[]).1);
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
    outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    outputs.push(run_in(&dir, &["missions", "--all", "--json"], &[]).1);
    outputs.push(run_in(&dir, &["analyze", "--format", "json"], &[]).1);
    // Every file gantry wrote: log files, the state store (raw bytes), api files.
    for entry in walk(&dir.join(".gantry")) {
        outputs
            .push(String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default()).into_owned());
    }
    let stdout = outputs.join("\n");
    assert!(
        stdout.contains("token=[redacted]"),
        "the service's own line is shown, masked"
    );
    assert!(
        stdout.contains("probe saw [redacted]") || stdout.contains("liveness"),
        "the probe failure is reported"
    );
    assert!(
        stdout.contains("API_TOKEN unset"),
        "a service not listed for the secret does not get it"
    );
    for (i, text) in outputs.iter().enumerate() {
        assert!(
            !text.contains(&canary),
            "the canary leaked in output #{i}: {}",
            &text[..text.len().min(2000)]
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn revalidation_turns_drift_into_missions_without_stopping_the_stack() {
    let dir = tempdir("revalidate");
    let secret = dir.join("key.txt");
    std::fs::write(&secret, "a-long-enough-secret-value\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let toml = r#"
[settings]
revalidate = "1s"

[secrets.KEY]
from_file = "key.txt"
services = ["web"]

[services.web]
command = "FIXTURE --name web"
restart = "on-failure"
"#;
    let mut up = up_with("revalidate-stack", toml, &[], |d| {
        std::fs::copy(&secret, d.join("key.txt")).unwrap();
        std::fs::set_permissions(d.join("key.txt"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    });
    assert_eq!(up.wait_boot(20)["outcome"], "go", "{}", up.log());
    let addr_file = up.dir.join(".gantry/api.addr");
    assert!(eventually(10, || addr_file.exists()));
    let addr = std::fs::read_to_string(&addr_file)
        .unwrap()
        .trim()
        .to_string();
    // Someone deletes the secret file while the stack runs.
    std::fs::remove_file(up.dir.join("key.txt")).unwrap();
    up.wait_for("a revalidation with problems", 15, |v| {
        v["event"] == "revalidated" && v["problems"].as_u64() > Some(0)
    });
    let (code, missions) = run_in(&up.dir, &["missions", "--json"], &[]);
    assert_eq!(code, 0);
    assert!(
        missions.contains("revalidate: secret") && missions.contains("KEY"),
        "{missions}"
    );
    let metrics = Command::new("curl")
        .args(["-s", &format!("http://{addr}/metrics")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&metrics.stdout).contains("gantry_revalidation_problems 1"));
    let ready = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{addr}/health/ready"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ready.stdout),
        "200",
        "drift never stops a healthy stack"
    );
    // Put it back: the mission resolves itself.
    std::fs::copy(&secret, up.dir.join("key.txt")).unwrap();
    std::fs::set_permissions(
        up.dir.join("key.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert!(eventually(15, || run_in(&up.dir, &["missions"], &[])
        .1
        .contains("no open missions")));
    assert_eq!(up.stop(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn remediate_runs_once_then_the_service_is_checked_again_and_its_mission_resolves() {
    let toml = r#"
[services.cache]
command = ["sh", "-c", "test -f warm || { echo cache is cold >&2; exit 3; }; exec FIXTURE --name cache"]
priority = "low"
remediate = "touch warm"
"#;
    let mut up = up("remediate", toml, &[]);
    // No readiness probe: it exits 3 within its start_grace, a failed start.
    up.wait_state("cache", "failed", 20);
    up.wait_for("the remediation", 10, |v| {
        v["event"] == "remediated" && v["ok"] == true
    });
    up.wait_state("cache", "running", 10);
    assert_eq!(
        up.states("cache"),
        ["starting", "failed", "pending", "starting", "running"]
    );
    let (code, out) = run_in(&up.dir, &["missions", "--all", "--json"], &[]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let m = &v["missions"][0];
    assert_eq!(m["service"], "cache");
    assert_eq!(m["status"], "resolved", "{m}");
    assert!(
        m["remediation"]
            .as_str()
            .unwrap_or("")
            .contains("succeeded"),
        "{m}"
    );
    assert!(
        m["output"].to_string().contains("cache is cold"),
        "the mission keeps the output: {m}"
    );
    assert_eq!(up.stop(), 0);
}

/// `gantry up` spawns with the environments the pre-flight built; with
/// `--skip-preflight` the driver builds them itself. Both must give every service the
/// same variables: gantry's own, `[env]`, env files, its `env`, and only its secrets.
#[test]
fn services_get_the_same_environment_with_and_without_the_preflight() {
    for skip in [false, true] {
        let dir = tempdir(if skip { "env-skip" } else { "env-pre" });
        std::fs::write(dir.join("global.env"), "FROM_GLOBAL_FILE=g\n").unwrap();
        std::fs::write(dir.join("svc.env"), "FROM_SVC_FILE=s\n").unwrap();
        std::fs::write(dir.join("pin.txt"), "pin-1234\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join("pin.txt"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let print = "--print-env GANTRY_TEST_OWN --print-env FROM_ENV --print-env FROM_GLOBAL_FILE \
                     --print-env FROM_SVC_FILE --print-env FROM_SVC --print-env PIN";
        std::fs::write(
            dir.join("gantry.toml"),
            format!(
                r#"
env_file = ["global.env"]

[settings]
api = "127.0.0.1:0"

[env]
FROM_ENV = "e"

[secrets.PIN]
from_file = "pin.txt"
services = ["a"]

[services.a]
kind = "task"
command = "{fixture} --name a {print}"
env_file = ["svc.env"]
env = {{ FROM_SVC = "a-only" }}

[services.b]
kind = "task"
command = "{fixture} --name b {print}"
"#,
                fixture = fixture().display()
            ),
        )
        .unwrap();
        let mut args = vec!["up"];
        if skip {
            args.push("--skip-preflight");
        }
        let mut child = Command::new(gantry())
            .args(&args)
            .current_dir(&dir)
            .env("GANTRY_TEST_OWN", "own")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let logs = dir.join(".gantry/logs");
        let read = |name: &str| std::fs::read_to_string(logs.join(format!("{name}.log")));
        let done = eventually(20, || {
            ["a", "b"]
                .iter()
                .all(|n| read(n).is_ok_and(|t| t.contains("PIN")))
        });
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let _ = child.wait();
        assert!(
            done,
            "skip={skip}: the tasks did not print their environment"
        );
        let (a, b) = (read("a").unwrap(), read("b").unwrap());
        for want in [
            "GANTRY_TEST_OWN=own",
            "FROM_ENV=e",
            "FROM_GLOBAL_FILE=g",
            "FROM_SVC_FILE=s",
            "FROM_SVC=a-only",
            "PIN=[redacted]",
        ] {
            assert!(a.contains(want), "skip={skip}: a lacks {want}:\n{a}");
        }
        for want in [
            "GANTRY_TEST_OWN=own",
            "FROM_ENV=e",
            "FROM_GLOBAL_FILE=g",
            "FROM_SVC_FILE unset",
            "FROM_SVC unset",
            "PIN unset",
        ] {
            assert!(b.contains(want), "skip={skip}: b lacks {want}:\n{b}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn an_environment_too_large_to_spawn_is_no_go_before_anything_starts() {
    let dir = tempdir("e2big");
    let big = "x".repeat(200 * 1024);
    std::fs::write(
        dir.join("gantry.toml"),
        format!(
            "[settings]\napi = \"127.0.0.1:0\"\n\n[services.api]\ncommand = \"true\"\nenv = {{ BLOB = \"{big}\" }}\n"
        ),
    )
    .unwrap();
    let (code, out) = run_in(&dir, &["preflight"], &[]);
    assert_eq!(code, 1, "{}", &out[..out.len().min(2000)]);
    assert!(
        out.contains(
            "BLOB is 200 KiB; the kernel refuses a single argument or variable over 128 KiB"
        ),
        "{}",
        &out[..out.len().min(2000)]
    );
}

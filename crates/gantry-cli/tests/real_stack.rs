//! Issue 12's acceptance test: a real stack (PostgreSQL initialised by a task, Redis, a migrate service whose URL is a secret, an HTTP API, a worker, four layers) boots GO, works with the manual migrate commands, shows host pids, is recognised by preflight, names one critical chain everywhere and stops its stores last.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use support::*;

/// The password of the secret URL: it must never be printed.
const PASSWORD: &str = "s3cretPw0rd";

/// The newest PostgreSQL server binaries, `/usr/lib/postgresql/N/bin`.
fn postgres_bin() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version: Vec<u32> = e
                .file_name()
                .to_str()?
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// `gantry up` in plain mode (the GO line names the critical chain) as the leader of its own
/// process group; dropping it SIGKILLs that group (the stub and the namespace init: the
/// kernel then kills every service) and removes the stack's directory.
struct Stack {
    child: Child,
    dir: PathBuf,
    rx: Receiver<String>,
    lines: Vec<String>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let pgid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        // The namespace's processes are gone once its init is; wait for the data directory's
        // last writer before removing it.
        let marker = self.dir.to_string_lossy().into_owned();
        eventually(10, || processes_with(&marker).is_empty());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One printed line split into its source (`gantry` or a service name) and its text.
fn split(line: &str) -> Option<(&str, &str)> {
    // "HH:MM:SS.mmm NAME | text"
    let rest = line.split_once(' ')?.1;
    let (name, text) = rest.split_once(" | ")?;
    Some((name.trim(), text))
}

impl Stack {
    fn start(dir: PathBuf, env: &[(&str, &str)]) -> Stack {
        let mut child = Command::new(gantry())
            .arg("up")
            .env_remove("APP_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .env_remove("GANTRY_MIGRATE_DATABASE")
            .envs(env.iter().copied())
            .current_dir(&dir)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Stack {
            child,
            dir,
            rx,
            lines: Vec::new(),
        }
    }

    fn log(&self) -> String {
        self.lines.join("\n")
    }

    /// Waits (up to `secs`) for a line of gantry's own matching `pred`; its text.
    fn wait_gantry(&mut self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let hit = |l: &str| -> Option<String> {
            split(l)
                .filter(|(n, t)| *n == "gantry" && pred(t))
                .map(|(_, t)| t.to_string())
        };
        if let Some(t) = self.lines.iter().find_map(|l| hit(l)) {
            return t;
        }
        let until = Instant::now() + Duration::from_secs(secs);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let Ok(line) = self.rx.recv_timeout(left) else {
                break;
            };
            self.lines.push(line);
            if let Some(t) = hit(self.lines.last().unwrap()) {
                return t;
            }
        }
        panic!("timed out waiting for {what}; output:\n{}", self.log());
    }

    /// Waits for gantry to exit; its exit code, with the rest of its output read.
    fn wait_exit(&mut self, secs: u64) -> i32 {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.rx.recv_timeout(Duration::from_millis(500)) {
                    self.lines.push(line);
                }
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < until,
                "gantry did not exit within {secs} s; output:\n{}",
                self.log()
            );
            if let Ok(line) = self.rx.recv_timeout(Duration::from_millis(20)) {
                self.lines.push(line);
            }
        }
    }

    /// Indices (in the output) of gantry's `NAME: STATE` lines.
    fn transitions(&self, service: &str, state: &str) -> Vec<usize> {
        let exact = format!("{service}: {state}");
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                split(l).is_some_and(|(n, t)| {
                    n == "gantry"
                        && (t == exact
                            || t.starts_with(&format!("{exact} "))
                            || t.starts_with(&format!("{exact}:")))
                })
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// `gantry -f DIR/gantry.toml ARGS` from another directory, with exactly `env` added to an
/// environment that has no database URL; exit code and stdout + stderr.
fn gantry_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(gantry())
        .arg("-f")
        .arg(dir.join("gantry.toml"))
        .args(args)
        .env_remove("APP_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("GANTRY_MIGRATE_DATABASE")
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The pids `ss -ltnpH` shows listening on 127.0.0.1:`port`.
fn listeners(port: u16) -> Vec<u32> {
    let out = Command::new("ss")
        .args(["-ltnpH", &format!("sport = :{port}")])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ss ({e}); install iproute2"));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("pid=")
        .skip(1)
        .filter_map(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

/// The process group of `pid` (host pids: this test runs outside gantry's namespace).
fn pgid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "(comm)": state, ppid, pgrp.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// The names of a critical chain `a → b → c` (up to the end of the line).
fn chain(text: &str) -> Vec<String> {
    text.split('→').map(|s| s.trim().to_string()).collect()
}

fn stack_toml(dir: &Path, bin: &Path, pg: u16, redis: u16, http: u16) -> String {
    let d = dir.display();
    let initdb = bin.join("initdb");
    let postgres = bin.join("postgres");
    let (initdb, postgres) = (initdb.display(), postgres.display());
    format!(
        r#"
[settings]
api = "127.0.0.1:0"

[layers]
order = ["stores", "schema", "apis", "workers"]

[secrets.DATABASE_URL]
from_env = "APP_DATABASE_URL"
services = ["api", "migrate"]

# PostgreSQL refuses to run as root: the data directory belongs to nobody.
[services.pg-init]
kind = "task"
layer = "stores"
command = ["sh", "-c", "install -d -o nobody {d}/pg {d}/pg/sock && exec runuser -u nobody -- {initdb} -D {d}/pg/data -A trust -U postgres --no-sync --no-instructions"]

[services.pg]
layer = "stores"
depends_on = {{ pg-init = "completed" }}
command = ["runuser", "-u", "nobody", "--", "{postgres}", "-D", "{d}/pg/data", "-p", "{pg}", "-k", "{d}/pg/sock", "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
readiness = {{ postgres = "postgres://postgres@127.0.0.1:{pg}/postgres", period = "500ms" }}

[services.redis]
layer = "stores"
restart = "always"
command = ["redis-server", "--port", "{redis}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", "{d}"]
readiness = {{ redis = "redis://127.0.0.1:{redis}", period = "500ms" }}

# No dependency links across layers: only the layer barriers order migrate after pg, api
# after migrate, and the stores' stop after everything else.
[services.migrate]
kind = "migrate"
layer = "schema"
database = "${{DATABASE_URL}}"
create_database = true

[services.api]
layer = "apis"
command = "FIXTURE --name api --http {http} --print-env DATABASE_URL"
readiness = {{ http = "http://127.0.0.1:{http}/health", period = "500ms" }}

[services.worker]
layer = "workers"
depends_on = ["api"]
command = "FIXTURE --name worker"
readiness = {{ log = "fixture worker ready" }}
"#
    )
    .replace("FIXTURE", fixture().to_str().unwrap())
}

#[test]
fn a_real_stack_boots_go_and_behaves_as_issue_12_asks() {
    let Some(bin) = postgres_bin() else {
        if std::env::var("GANTRY_TEST_NO_POSTGRES").as_deref() == Ok("1") {
            eprintln!(
                "skipped: no PostgreSQL under /usr/lib/postgresql (GANTRY_TEST_NO_POSTGRES=1)"
            );
            return;
        }
        panic!(
            "no PostgreSQL server under /usr/lib/postgresql/*/bin (initdb, postgres)\n  hint: run scripts/setup, or set GANTRY_TEST_NO_POSTGRES=1 to skip this test"
        );
    };
    for tool in ["redis-server", "runuser", "ss"] {
        assert!(
            on_path(tool),
            "`{tool}` is not on PATH\n  hint: run scripts/setup"
        );
    }

    let dir = tempdir("real-stack");
    let (pg, redis, http) = (free_port(), free_port(), free_port());
    let toml = stack_toml(&dir, &bin, pg, redis, http);
    // The secret is in gantry's environment only, never in the file.
    assert!(!toml.contains(PASSWORD));
    std::fs::write(dir.join("gantry.toml"), &toml).unwrap();
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(
        migrations.join("0001_create_orders.up.sql"),
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, item VARCHAR(100) NOT NULL);\n",
    )
    .unwrap();
    std::fs::write(
        migrations.join("0001_create_orders.down.sql"),
        "DROP TABLE orders;\n",
    )
    .unwrap();
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{pg}/app");
    let env = [("APP_DATABASE_URL", url.as_str())];

    let mut stack = Stack::start(dir.clone(), &env);

    // 1. Boots GO.
    let verdict = stack.wait_gantry("the boot verdict", 60, |t| {
        t.starts_with("GO:") || t.starts_with("NO-GO") || t.starts_with("DEGRADED")
    });
    assert!(
        verdict.starts_with("GO: ready in "),
        "{verdict}\n{}",
        stack.log()
    );

    // 5. The GO line, `analyze` and `graph` name the same chain, across the layers.
    let go_chain = chain(
        verdict
            .split_once("critical path: ")
            .unwrap_or_else(|| panic!("no critical path in {verdict:?}"))
            .1,
    );
    assert_eq!(
        go_chain,
        ["pg-init", "pg", "migrate", "api", "worker"],
        "{}",
        stack.log()
    );
    let (code, out) = gantry_in(&dir, &["analyze", "--format", "json"], &[]);
    assert_eq!(code, 0, "{out}");
    let analyzed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let analyzed: Vec<&str> = analyzed["critical_chain"]
        .as_array()
        .unwrap_or_else(|| panic!("no critical chain in `gantry analyze`:\n{out}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(analyzed, go_chain, "gantry analyze:\n{out}");
    let (code, out) = gantry_in(&dir, &["graph"], &[]);
    assert_eq!(code, 0, "{out}");
    let graphed = out
        .lines()
        .find_map(|l| l.split_once("critical path").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no critical path in `gantry graph`:\n{out}"));
    let graphed = graphed.split_once(": ").map_or(graphed, |(_, r)| r);
    assert_eq!(chain(graphed), go_chain, "gantry graph:\n{out}");

    // 2. The manual migrate commands work with the secret only in their environment, and
    // print no password.
    for args in [
        &["migrate", "--service", "migrate", "status"][..],
        &["migrate", "--service", "migrate", "repair", "--schema"][..],
    ] {
        let (code, out) = gantry_in(&dir, args, &env);
        assert_eq!(code, 0, "gantry {args:?}:\n{out}");
        assert!(!out.contains(PASSWORD), "gantry {args:?}:\n{out}");
        if args.contains(&"status") {
            assert!(out.contains("create_orders"), "gantry {args:?}:\n{out}");
        }
    }

    // 3. `gantry status --json` shows the host pids `ss -ltnp` shows (pg runs under runuser,
    // whose process group postgres is in).
    let ports = [("pg", pg), ("redis", redis), ("api", http)];
    let mut status = String::new();
    let mapped = eventually(15, || {
        let (code, out) = gantry_in(&dir, &["status", "--json"], &[]);
        status = out;
        code == 0
            && serde_json::from_str::<serde_json::Value>(&status).is_ok_and(|v| {
                ports.iter().all(|(name, _)| {
                    v["services"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|s| s["name"] == *name && s["pid"].as_u64().is_some())
                })
            })
    });
    assert!(mapped, "no pids in `gantry status --json`:\n{status}");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["boot"]["outcome"], "go", "{status}");
    for (name, port) in ports {
        let shown = v["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["pid"].as_u64())
            .unwrap() as u32;
        let held = listeners(port);
        assert!(!held.is_empty(), "nothing listens on {port} ({name})");
        assert!(
            held.iter().all(|&p| p == shown || pgid(p) == Some(shown)),
            "{name}: status shows pid {shown}, ss shows {held:?} on port {port} (groups {:?})\n{status}",
            held.iter().map(|&p| pgid(p)).collect::<Vec<_>>()
        );
    }

    // 4. `gantry preflight` against the running stack says so and writes no mission.
    let missions = || {
        let (code, out) = gantry_in(&dir, &["missions", "--json", "--all"], &[]);
        assert_eq!(code, 0, "{out}");
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap_or_else(|e| panic!("gantry missions --json: {e}:\n{out}"))
    };
    let before = missions();
    let (code, out) = gantry_in(&dir, &["preflight"], &env);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already running"), "{out}");
    assert!(!out.contains("in use"), "{out}");
    assert!(!out.contains(PASSWORD), "{out}");
    let missions = missions();
    assert_eq!(missions, before, "preflight wrote missions");
    let about_ports: Vec<_> = missions["missions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.to_string().contains("port"))
        .collect();
    assert!(about_ports.is_empty(), "false missions: {about_ports:?}");

    // 6. SIGTERM stops the stores last: each store gets its stop only after every service
    // of the later layers stopped.
    let _ = Command::new("kill")
        .args(["-TERM", &stack.child.id().to_string()])
        .status();
    assert_eq!(stack.wait_exit(30), 0, "{}", stack.log());
    let mut apps = Vec::new();
    for name in ["api", "worker"] {
        let stopped = stack.transitions(name, "stopped");
        assert!(
            !stopped.is_empty(),
            "{name} never stopped:\n{}",
            stack.log()
        );
        apps.extend(stopped);
    }
    apps.extend(stack.transitions("migrate", "stopped"));
    let last_app = apps.into_iter().max().unwrap();
    for store in ["pg", "redis"] {
        let stopped = stack.transitions(store, "stopped");
        assert!(
            !stopped.is_empty(),
            "{store} never stopped:\n{}",
            stack.log()
        );
        let first = stack
            .transitions(store, "stopping")
            .into_iter()
            .chain(stopped)
            .min()
            .unwrap();
        assert!(
            first > last_app,
            "{store} was stopped before the services that use it:\n{}",
            stack.log()
        );
    }
    assert!(!stack.log().contains(PASSWORD), "{}", stack.log());
}

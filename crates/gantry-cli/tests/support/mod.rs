//! Helpers for end-to-end tests: a stack in a temp dir, `gantry up --json` as a real child, event polling with deadlines.

#![allow(dead_code)]

pub mod releases;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn gantry() -> &'static str {
    env!("CARGO_BIN_EXE_gantry")
}

/// The fixture service binary, built once if this test run did not build it.
pub fn fixture() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(gantry()).parent().unwrap().to_path_buf();
            let path = dir.join("gantry-fixture");
            if !path.exists() {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let status = Command::new(cargo)
                    .args(["build", "-q", "-p", "gantry-fixture"])
                    .status()
                    .unwrap();
                assert!(status.success(), "building gantry-fixture failed");
            }
            path
        })
        .clone()
}

/// A free loopback port (bound, then released), below the kernel's ephemeral range
/// (32768-60999 here): a port a test frees by killing its service is never handed to another
/// socket's `bind(:0)` or to a client connection before the service binds it again. Ports are
/// handed out 8 apart: the 7 after each stay for the tests that take the next ones too (the
/// ports of replicas).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    const STRIDE: u32 = 8;
    static USED: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Each test binary starts at its own offset, so binaries run one after another reuse
    // nothing still in TIME_WAIT from the last.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % (SPAN / STRIDE),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN / STRIDE {
        let slot = NEXT.fetch_add(1, Ordering::Relaxed) % (SPAN / STRIDE);
        let port = (LOW + slot * STRIDE) as u16;
        let mut used = USED.lock().unwrap();
        if used.contains(&port) || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        used.push(port);
        return port;
    }
    panic!("no free loopback port between {LOW} and {}", LOW + SPAN);
}

/// The first of `n` (1 to 8) consecutive free loopback ports, a replica range: `free_port`
/// leaves the 7 ports after each one it hands out to the test that took it.
pub fn free_run(n: u16) -> u16 {
    assert!((1..=8).contains(&n), "free_run: at most 8 ports");
    for _ in 0..100 {
        let base = free_port();
        if u32::from(base) + u32::from(n) <= 65536
            && (1..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
    panic!("no {n} consecutive free ports on 127.0.0.1");
}

/// The first of two consecutive free loopback ports (a replica range).
pub fn free_pair() -> u16 {
    free_run(2)
}

pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `gantry up --json` and the events it printed so far.
pub struct Up {
    pub child: Child,
    pub dir: PathBuf,
    rx: Receiver<serde_json::Value>,
    pub events: Vec<serde_json::Value>,
}

/// Writes `toml` (with `FIXTURE` replaced by the fixture's path) and starts `gantry up --json`.
pub fn up(name: &str, toml: &str, extra: &[&str]) -> Up {
    up_with(name, toml, extra, |_| {})
}

/// Like [`up`], with `setup` run on the stack's directory before gantry starts.
pub fn up_with(name: &str, toml: &str, extra: &[&str], setup: impl FnOnce(&Path)) -> Up {
    up_env(name, toml, extra, &[], setup)
}

/// Like [`up_with`], with extra variables in gantry's environment.
pub fn up_env(
    name: &str,
    toml: &str,
    extra: &[&str],
    env: &[(&str, &str)],
    setup: impl FnOnce(&Path),
) -> Up {
    let dir = tempdir(name);
    setup(&dir);
    let mut text = toml.replace("FIXTURE", fixture().to_str().unwrap());
    // Tests run in parallel: each instance's API takes a free port (written to .gantry/api.addr),
    // unless the stack names its own (a test that restarts gantry on the same address).
    text = if text.lines().any(|l| l.trim_start().starts_with("api =")) {
        text
    } else if text.contains("[settings]") {
        text.replacen("[settings]", "[settings]\napi = \"127.0.0.1:0\"", 1)
    } else {
        format!("[settings]\napi = \"127.0.0.1:0\"\n{text}")
    };
    std::fs::write(dir.join("gantry.toml"), text).unwrap();
    spawn_up(dir, extra, env)
}

/// Starts `gantry up --json` on the stack already written in `dir`.
fn spawn_up(dir: PathBuf, extra: &[&str], env: &[(&str, &str)]) -> Up {
    let mut child = Command::new(gantry())
        .arg("up")
        .arg("--json")
        .args(extra)
        .envs(env.iter().copied())
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    Up {
        child,
        dir,
        rx,
        events: Vec::new(),
    }
}

impl Up {
    /// Stops this instance (SIGINT, waits for it to exit) and starts `gantry up --json` again on
    /// the same directory and state dir: what an earlier run kept must still hold.
    pub fn again(mut self, extra: &[&str]) -> Up {
        self.stop();
        // The directory now belongs to the new instance (dropping self would remove it).
        let dir = std::mem::take(&mut self.dir);
        spawn_up(dir, extra, &[])
    }

    /// Starts `gantry up --json` again on the same directory once this instance has exited
    /// (waited for up to `secs`; a signal is never sent to a pid already reaped).
    pub fn restart(mut self, secs: u64) -> Up {
        self.wait_exit(secs);
        let dir = std::mem::take(&mut self.dir);
        spawn_up(dir, &[], &[])
    }

    /// SIGKILLs this gantry (no shutdown of its own), waits for it and for the processes whose
    /// command line holds one of `gone` (its services: they die with it, gantry's
    /// orphan-proofing), then starts `gantry up --json` again on the same directory and state.
    #[allow(dead_code)]
    pub fn crash_and_again(mut self, gone: &[String], extra: &[&str]) -> Up {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::take(&mut self.dir);
        let dead = eventually(10, || gone.iter().all(|m| processes_with(m).is_empty()));
        assert!(dead, "the services of a killed gantry outlived it");
        spawn_up(dir, extra, &[])
    }

    fn pump(&mut self, until: Instant) -> bool {
        let now = Instant::now();
        if now >= until {
            return false;
        }
        match self.rx.recv_timeout(until - now) {
            Ok(v) => {
                self.events.push(v);
                true
            }
            Err(_) => false,
        }
    }

    /// Waits (up to `secs`) for an event matching `pred`; panics with the event log otherwise.
    pub fn wait_for(
        &mut self,
        what: &str,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        if let Some(v) = self.events.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let until = Instant::now() + Duration::from_secs(secs);
        while self.pump(until) {
            let last = self.events.last().unwrap();
            if pred(last) {
                return last.clone();
            }
        }
        panic!("timed out waiting for {what}; events:\n{}", self.log());
    }

    /// Like [`Up::wait_for`] without the panic: the first matching event seen by `until`
    /// (earlier ones included), else None.
    pub fn poll_for(
        &mut self,
        until: Instant,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        if let Some(v) = self.events.iter().find(|v| pred(v)) {
            return Some(v.clone());
        }
        while self.pump(until) {
            let last = self.events.last().unwrap();
            if pred(last) {
                return Some(last.clone());
            }
        }
        None
    }

    /// The pid of the gantry process that runs the loop: the namespace init the stub
    /// started (its only child), else the stub itself (no PID namespace).
    pub fn loop_pid(&self) -> u32 {
        let stub = self.child.id();
        std::fs::read_to_string(format!("/proc/{stub}/task/{stub}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
            .unwrap_or(stub)
    }

    pub fn wait_state(&mut self, service: &str, to: &str, secs: u64) -> serde_json::Value {
        self.wait_for(&format!("{service} -> {to}"), secs, |v| {
            v["event"] == "transition" && v["service"] == service && v["to"] == to
        })
    }

    /// Waits until `service` has reached `to` at least `n` times.
    pub fn wait_count(&mut self, service: &str, to: &str, n: usize, secs: u64) {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let count = self.states(service).iter().filter(|s| *s == to).count();
            if count >= n {
                return;
            }
            if !self.pump(until) {
                panic!(
                    "timed out waiting for {service} -> {to} x{n}; events:\n{}",
                    self.log()
                );
            }
        }
    }

    pub fn wait_boot(&mut self, secs: u64) -> serde_json::Value {
        self.wait_for("the boot decision", secs, |v| v["event"] == "boot")
    }

    /// Sends SIGINT and waits for gantry to exit; returns its exit code.
    pub fn stop(&mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.wait_exit(20)
    }

    pub fn wait_exit(&mut self, secs: u64) -> i32 {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while self.pump(Instant::now() + Duration::from_millis(200)) {}
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("gantry did not exit; events:\n{}", self.log());
            }
            self.pump(Instant::now() + Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        self.events
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Transitions of one service, in order, as "to" states.
    pub fn states(&self, service: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|v| v["event"] == "transition" && v["service"] == service)
            .map(|v| v["to"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// `at_ms` of the first transition of `service` to `to`.
    pub fn at(&self, service: &str, to: &str) -> u64 {
        self.events
            .iter()
            .find(|v| v["event"] == "transition" && v["service"] == service && v["to"] == to)
            .and_then(|v| v["at_ms"].as_u64())
            .unwrap_or_else(|| panic!("{service} never reached {to}; events:\n{}", self.log()))
    }

    /// Index in the event log of the first transition of `service` to `to`.
    pub fn index(&self, service: &str, to: &str) -> usize {
        self.events
            .iter()
            .position(|v| v["event"] == "transition" && v["service"] == service && v["to"] == to)
            .unwrap_or_else(|| panic!("{service} never reached {to}; events:\n{}", self.log()))
    }

    pub fn reason(&self, service: &str, to: &str) -> String {
        self.events
            .iter()
            .find(|v| v["event"] == "transition" && v["service"] == service && v["to"] == to)
            .and_then(|v| v["reason"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Pids of live processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Zombies are already dead; they only wait for their parent to reap them.
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        if !zombie
            && String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .contains(marker)
        {
            out.push(pid);
        }
    }
    out
}

/// Polls until `f` is true or the deadline passes.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f() {
            return true;
        }
        // Polling interval for conditions outside our control (the kernel reaping processes).
        let _ = std::sync::mpsc::channel::<()>()
            .1
            .recv_timeout(Duration::from_millis(20));
    }
    f()
}

/// `psql -tA` as postgres on `db` against the local server; the trimmed output. Fails the
/// test on an SQL error.
#[track_caller]
pub fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", db])
        .args(["-v", "ON_ERROR_STOP=1", "-qtAc", sql])
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql ({e}); install the PostgreSQL client"));
    assert!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `gantry ARGS` in `dir`: its exit code and stdout followed by stderr.
pub fn gantry_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(gantry())
        .args(args)
        .current_dir(dir)
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

/// A minimal HTTP/1.1 request over loopback: (status, body).
pub fn http(addr: &str, method: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http_with(addr, method, path, &headers, "")
}

/// [`http`] with any headers and a body.
pub fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// The address the instance in `dir` bound its API to (waits for `.gantry/api.addr`).
pub fn api_addr_in(dir: &Path) -> String {
    let file = dir.join(".gantry/api.addr");
    assert!(eventually(10, || file.exists()), "api.addr was not written");
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

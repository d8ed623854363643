//! Tests for the `gantry-fixture` binary: each one runs the built binary and
//! checks that it does what its flags say. No fixed sleeps: every wait polls
//! against a deadline, and every spawned process is killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Generous upper bound for anything that should happen "soon".
const PATIENCE: Duration = Duration::from_secs(20);

fn fixture() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gantry-fixture"))
}

/// A port that was free a moment ago (bound to port 0, then released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

/// A path in the temp dir unique to this test process and call.
fn temp_path(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "gantry-fixture-test-{}-{n}-{tag}",
        std::process::id()
    ))
}

fn signal(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// Runs the fixture to completion (it must exit by itself), with a deadline.
fn run_to_end(args: &[&str]) -> Output {
    let mut child = Running::spawn(fixture().args(args));
    let status = child.wait_exit(PATIENCE);
    let (stdout, stderr) = child.drain();
    Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Out,
    Err,
}

/// A running fixture with its output read line by line; killed on drop, along
/// with any extra pids registered in `also_kill`.
struct Running {
    child: Child,
    lines: Receiver<(Stream, String)>,
    stdout: String,
    stderr: String,
    also_kill: Vec<u32>,
}

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gantry-fixture");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx_err = tx.clone();
        thread::spawn(move || forward(out, Stream::Out, &tx));
        thread::spawn(move || forward(err, Stream::Err, &tx_err));
        Running {
            child,
            lines,
            stdout: String::new(),
            stderr: String::new(),
            also_kill: Vec::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn record(&mut self, stream: Stream, line: &str) {
        let buf = match stream {
            Stream::Out => &mut self.stdout,
            Stream::Err => &mut self.stderr,
        };
        buf.push_str(line);
        buf.push('\n');
    }

    /// Returns the first stdout line, seen so far or still to come, that
    /// satisfies `pred`.
    fn wait_stdout(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.stdout.lines().find(|l| pred(l)) {
            return line.to_owned();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((stream, line)) => {
                    let hit = matches!(stream, Stream::Out) && pred(&line);
                    self.record(stream, &line);
                    if hit {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no stdout line {what} within {PATIENCE:?}; stdout:\n{}stderr:\n{}",
                    self.stdout, self.stderr
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "output closed before stdout line {what}; stdout:\n{}stderr:\n{}",
                    self.stdout, self.stderr
                ),
            }
        }
    }

    fn wait_ready(&mut self, name: &str) {
        let want = format!("fixture {name} ready");
        self.wait_stdout(&want, |l| l == want);
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Polls until the process exits; panics after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gantry-fixture pid {} did not exit within {limit:?}",
                self.pid()
            );
            thread::park_timeout(Duration::from_millis(5));
        }
    }

    /// Collects the rest of the output (the process must have exited and left
    /// no other holder of its pipes).
    fn drain(mut self) -> (String, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((stream, line)) => self.record(stream, &line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("output never closed"),
            }
        }
        (
            std::mem::take(&mut self.stdout),
            std::mem::take(&mut self.stderr),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for pid in &self.also_kill {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(pipe: impl Read, stream: Stream, tx: &mpsc::Sender<(Stream, String)>) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if tx.send((stream, line)).is_err() {
            break;
        }
    }
}

/// Polls `connect` to 127.0.0.1:`port` until it succeeds or `limit` passes.
fn connect_within(port: u16, limit: Duration) -> TcpStream {
    let deadline = Instant::now() + limit;
    loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(stream) => return stream,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "could not connect to port {port} within {limit:?}: {e}"
                );
                thread::park_timeout(Duration::from_millis(5));
            }
        }
    }
}

/// Sends one HTTP/1.1 GET and returns the whole response.
fn http_get(port: u16, path: &str) -> String {
    let mut stream = connect_within(port, PATIENCE);
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn listen_accepts_after_delay_and_keeps_accepting() {
    let (a, b) = (free_port(), free_port());
    let started = Instant::now();
    let mut fx = Running::spawn(fixture().args([
        "--name",
        "lis",
        "--delay",
        "300",
        "--listen",
        &a.to_string(),
        "--listen",
        &b.to_string(),
    ]));
    fx.wait_stdout("started", |l| l.starts_with("fixture lis started pid "));
    let first = connect_within(a, PATIENCE);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "port open before --delay passed ({:?})",
        started.elapsed()
    );
    drop(first);
    // The listener keeps accepting, on every port, and closes what it accepts.
    for port in [a, b, a, b] {
        let mut conn = connect_within(port, PATIENCE);
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = [0u8; 8];
        let n = conn.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "accepted connection should be closed at once");
    }
    fx.wait_ready("lis");
    assert!(fx.try_exit().is_none(), "fixture exited on its own");
}

#[test]
fn exit_after_uses_exit_code() {
    let out = run_to_end(&["--name", "ex", "--exit-after", "50", "--exit-code", "7"]);
    assert_eq!(out.status.code(), Some(7));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("fixture ex ready"), "{stdout}");
    assert!(
        stdout.contains("fixture ex: exiting with code 7"),
        "{stdout}"
    );

    let out = run_to_end(&["--exit-after", "0"]);
    assert_eq!(out.status.code(), Some(0));

    let out = run_to_end(&["--crash-after", "20"]);
    assert_eq!(out.status.code(), Some(1));

    let out = run_to_end(&["--crash-after", "20", "--exit-code", "3"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn exit_after_is_measured_from_start_not_ready() {
    // The exit time comes before the ready time: it exits without becoming ready.
    let out = run_to_end(&["--name", "early", "--delay", "5000", "--exit-after", "50"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("fixture early ready"), "{stdout}");
}

#[test]
fn fail_times_counts_starts() {
    let state = temp_path("state");
    let state_s = state.to_str().unwrap();
    let args = [
        "--name",
        "flaky",
        "--fail-times",
        "2",
        "--state-file",
        state_s,
        "--exit-after",
        "0",
    ];
    for k in 1..=2 {
        let out = run_to_end(&args);
        assert_eq!(out.status.code(), Some(1), "start {k}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = format!("fixture flaky: failing on purpose (start {k} of 2)");
        assert!(stderr.contains(&want), "start {k}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("ready"), "start {k}: {stdout}");
    }
    let out = run_to_end(&args);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("fixture flaky ready"));
    assert_eq!(std::fs::read_to_string(&state).unwrap().trim(), "3");
    std::fs::remove_file(&state).unwrap();
}

#[test]
fn fail_times_needs_state_file() {
    let out = run_to_end(&["--fail-times", "1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ready_line_is_printed_after_started_and_before_ready() {
    let out = run_to_end(&[
        "--name",
        "rl",
        "--delay",
        "10",
        "--ready-line",
        "Server is UP on port 1",
        "--exit-after",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let pos = |want: &str| lines.iter().position(|l| *l == want);
    let started = lines
        .iter()
        .position(|l| l.starts_with("fixture rl started pid "))
        .expect("started line");
    let ready_line = pos("Server is UP on port 1").expect("ready line");
    let ready = pos("fixture rl ready").expect("ready");
    assert!(started < ready_line && ready_line < ready, "{stdout}");
}

#[test]
fn http_health_200_and_404() {
    let port = free_port();
    let mut fx = Running::spawn(fixture().args(["--name", "web", "--http", &port.to_string()]));
    let health = http_get(port, "/health");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(health.contains("Connection: close"), "{health}");
    assert_eq!(body(&health), "ok");
    let other = http_get(port, "/nope");
    assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
    let query = http_get(port, "/health?probe=1");
    assert!(query.starts_with("HTTP/1.1 200 "), "{query}");
    fx.wait_ready("web");
}

#[test]
fn http_status_overrides_health() {
    let port = free_port();
    let _fx = Running::spawn(fixture().args(["--http", &port.to_string(), "--http-status", "503"]));
    let health = http_get(port, "/health");
    assert!(
        health.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{health}"
    );
}

#[test]
fn unready_file_turns_health_off_while_it_exists() {
    let port = free_port();
    let flag = temp_path("unready");
    let _fx = Running::spawn(fixture().args([
        "--http",
        &port.to_string(),
        "--unready-file",
        flag.to_str().unwrap(),
    ]));
    assert!(http_get(port, "/health").starts_with("HTTP/1.1 200 OK\r\n"));
    std::fs::write(&flag, "").unwrap();
    let off = http_get(port, "/health");
    assert!(off.starts_with("HTTP/1.1 503 "), "{off}");
    assert_eq!(body(&off), "not ready");
    std::fs::remove_file(&flag).unwrap();
    assert!(http_get(port, "/health").starts_with("HTTP/1.1 200 OK\r\n"));
}

#[cfg(target_os = "linux")]
#[test]
fn notify_sends_ready_to_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;

    let name = format!(
        "gantry-fixture-test-notify-{}-{}",
        std::process::id(),
        free_port()
    );
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract socket");
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut fx = Running::spawn(
        fixture()
            .args(["--name", "nt", "--notify"])
            .env("NOTIFY_SOCKET", format!("@{name}")),
    );
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("notify datagram");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(msg.lines().any(|l| l == "STATUS=ready"), "{msg:?}");
    fx.wait_ready("nt");
}

#[test]
fn notify_sends_ready_to_path_socket() {
    let path = temp_path("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind socket");
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let _fx = Running::spawn(fixture().arg("--notify").env("NOTIFY_SOCKET", &path));
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("notify datagram");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn notify_extend_is_sent_at_start_before_the_delay_then_ready() {
    let path = temp_path("notify-extend.sock");
    let sock = UnixDatagram::bind(&path).expect("bind socket");
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut fx = Running::spawn(
        fixture()
            .args(["--name", "ext", "--notify-extend", "2000000"])
            .args(["--delay", "300", "--notify"])
            .env("NOTIFY_SOCKET", &path),
    );
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("extend datagram");
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        "EXTEND_TIMEOUT_USEC=2000000\n"
    );
    // Sent at start: the fixture is not ready yet (the delay is 300 ms).
    let n = sock.recv(&mut buf).expect("ready datagram");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    fx.wait_ready("ext");
    std::fs::remove_file(&path).unwrap();
}

/// Datagrams received on `sock` until `until` holds for the list (or PATIENCE runs out).
fn datagrams(sock: &UnixDatagram, until: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !until(&got) {
        let Ok(n) = sock.recv(&mut buf) else { break };
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

#[test]
fn watchdog_pings_every_half_interval_then_stops_after_n() {
    let path = temp_path("watchdog.sock");
    let sock = UnixDatagram::bind(&path).expect("bind socket");
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut fx = Running::spawn(
        fixture()
            .args(["--name", "wd", "--watchdog-stop-after", "3"])
            .env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", "40000"),
    );
    let line = fx.wait_stdout("watchdog", |l| l.contains("watchdog every"));
    assert!(
        line.starts_with("fixture wd: watchdog every 40000 us, WATCHDOG_PID=unset, pid "),
        "{line}"
    );
    let got = datagrams(&sock, |g| g.len() >= 3);
    assert_eq!(got, ["WATCHDOG=1\n"; 3]);
    fx.wait_stdout("stopped", |l| l == "fixture wd: watchdog stopped after 3");
    // Hung from here on: nothing more arrives.
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(sock.recv(&mut buf).is_err(), "a keep-alive after the stop");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn watchdog_trigger_is_sent_after_its_delay_and_a_foreign_watchdog_pid_is_respected() {
    let path = temp_path("watchdog-trigger.sock");
    let sock = UnixDatagram::bind(&path).expect("bind socket");
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut fx = Running::spawn(
        fixture()
            .args(["--name", "wt", "--watchdog-trigger-after", "50"])
            .env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", "10000000"),
    );
    let got = datagrams(&sock, |g| g.last().is_some_and(|m| m != "WATCHDOG=1\n"));
    assert_eq!(got, ["WATCHDOG=1\n", "WATCHDOG=trigger\n"]);
    fx.wait_stdout("trigger", |l| l == "fixture wt: watchdog trigger sent");

    // WATCHDOG_PID of another process: not this one's watchdog.
    let mut fx = Running::spawn(
        fixture()
            .args(["--name", "wp", "--watchdog", "--exit-after", "100"])
            .env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", "10000")
            .env("WATCHDOG_PID", "1"),
    );
    assert_eq!(fx.wait_exit(PATIENCE).code(), Some(0));
    let (_, stderr) = fx.drain();
    assert!(
        stderr.contains("WATCHDOG_PID=1 is not this process"),
        "{stderr}"
    );
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(sock.recv(&mut buf).is_err(), "pinged for another pid");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn notify_without_socket_warns_and_goes_on() {
    let mut cmd = fixture();
    cmd.args(["--name", "nn", "--notify", "--exit-after", "0"])
        .env_remove("NOTIFY_SOCKET");
    let mut fx = Running::spawn(&mut cmd);
    assert_eq!(fx.wait_exit(PATIENCE).code(), Some(0));
    let (stdout, stderr) = fx.drain();
    assert!(stdout.contains("fixture nn ready"), "{stdout}");
    assert!(stderr.contains("NOTIFY_SOCKET"), "{stderr}");
}

#[test]
fn sigterm_stops_with_code_0() {
    let mut fx = Running::spawn(fixture().args(["--name", "term"]));
    fx.wait_ready("term");
    signal("TERM", fx.pid());
    let status = fx.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{status:?}");
    let (stdout, _) = fx.drain();
    assert!(stdout.contains("fixture term: stopping"), "{stdout}");
}

#[test]
fn sigint_stops_with_code_0() {
    let mut fx = Running::spawn(fixture().args(["--name", "int"]));
    fx.wait_ready("int");
    signal("INT", fx.pid());
    assert_eq!(fx.wait_exit(PATIENCE).code(), Some(0));
}

#[test]
fn sigterm_during_delay_stops() {
    let mut fx = Running::spawn(fixture().args(["--name", "slowstart", "--delay", "60000"]));
    fx.wait_stdout("started", |l| l.starts_with("fixture slowstart started"));
    signal("TERM", fx.pid());
    assert_eq!(fx.wait_exit(PATIENCE).code(), Some(0));
}

#[test]
fn stop_delay_slows_shutdown() {
    let mut fx = Running::spawn(fixture().args(["--name", "slow", "--stop-delay", "300"]));
    fx.wait_ready("slow");
    let sent = Instant::now();
    signal("TERM", fx.pid());
    let status = fx.wait_exit(PATIENCE);
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "exited after {:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(0));
}

#[test]
fn ignore_sigterm_needs_sigkill() {
    let port = free_port();
    let mut fx = Running::spawn(fixture().args([
        "--name",
        "stubborn",
        "--ignore-sigterm",
        "--http",
        &port.to_string(),
    ]));
    fx.wait_ready("stubborn");
    signal("TERM", fx.pid());
    // A SIGTERM with the default action would have killed it by now; it still answers.
    for _ in 0..3 {
        assert!(http_get(port, "/health").starts_with("HTTP/1.1 200 "));
    }
    assert!(fx.try_exit().is_none(), "fixture died of SIGTERM");
    signal("KILL", fx.pid());
    let status = fx.wait_exit(PATIENCE);
    assert_eq!(status.signal(), Some(9), "{status:?}");
    let (stdout, _) = fx.drain();
    assert!(!stdout.contains("stopping"), "{stdout}");
}

#[test]
fn unknown_flag_is_usage_error() {
    let out = run_to_end(&["--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("usage:"), "{stderr}");
    assert!(stderr.contains("--frobnicate"), "{stderr}");

    for bad in [
        &["--delay"][..],
        &["--delay", "soon"],
        &["--notify=yes"],
        &["--notify-extend"],
        &["--notify-extend", "-1"],
        &["--ready-fd", "1"],
        &["--ready-fd", "x"],
    ] {
        assert_eq!(run_to_end(bad).status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn start_time_flags() {
    let pidfile = temp_path("pid");
    let touched = temp_path("touched");
    let out = run_to_end(&[
        "--name",
        "misc",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--touch",
        touched.to_str().unwrap(),
        "--print-env",
        "GANTRY_FIXTURE_TEST_VAR",
        "--print-env",
        "GANTRY_FIXTURE_TEST_UNSET",
        "--stdout-lines",
        "3",
        "--stderr-lines",
        "2",
        "--marker",
        "find-me",
        "--exit-after=0",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        stdout.contains(&format!("fixture misc started pid {pid}\n")),
        "{stdout}"
    );
    assert!(touched.exists(), "--touch did not create the file");
    assert!(
        stdout.contains("GANTRY_FIXTURE_TEST_UNSET unset\n"),
        "{stdout}"
    );
    assert!(stdout.contains("line 1\nline 2\nline 3\n"), "{stdout}");
    assert_eq!(stderr, "line 1\nline 2\n");
    std::fs::remove_file(&pidfile).unwrap();
    std::fs::remove_file(&touched).unwrap();

    let mut cmd = fixture();
    cmd.args([
        "--print-env",
        "GANTRY_FIXTURE_TEST_VAR",
        "--exit-after",
        "0",
    ])
    .env("GANTRY_FIXTURE_TEST_VAR", "a b=c");
    let mut fx = Running::spawn(&mut cmd);
    assert_eq!(fx.wait_exit(PATIENCE).code(), Some(0));
    let (stdout, _) = fx.drain();
    assert!(
        stdout.contains("GANTRY_FIXTURE_TEST_VAR=a b=c\n"),
        "{stdout}"
    );
}

/// Reads the process group id of `pid` from /proc.
#[cfg(target_os = "linux")]
fn pgid(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after the `(comm)`: state ppid pgrp ...
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(2).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn spawn_grandchild_and_daemon() {
    let mut fx = Running::spawn(
        fixture()
            .args(["--name", "parent", "--spawn-grandchild", "--spawn-daemon"])
            .process_group(0),
    );
    let line = fx.wait_stdout("grandchild", |l| l.starts_with("grandchild "));
    let grandchild: u32 = line["grandchild ".len()..].parse().unwrap();
    fx.also_kill.push(grandchild);
    let line = fx.wait_stdout("daemon", |l| l.starts_with("daemon "));
    let daemon: u32 = line["daemon ".len()..].parse().unwrap();
    fx.also_kill.push(daemon);
    // The grandchild shares the stdout pipe and says it is ready under its own name.
    fx.wait_stdout("grandchild ready", |l| {
        l == "fixture parent-grandchild ready"
    });
    fx.wait_ready("parent");

    let parent = fx.pid();
    assert_eq!(pgid(parent), parent);
    assert_eq!(pgid(grandchild), parent, "grandchild left the group");
    assert_eq!(pgid(daemon), daemon, "daemon did not get its own group");
    // The spawn returns once the daemon's exec has switched address spaces,
    // which is before the kernel has written its argv: /proc shows an empty
    // cmdline for that moment, so poll.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let cmdline = std::fs::read(format!("/proc/{daemon}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
        if cmdline.contains("parent-daemon") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "daemon {daemon} cmdline is {cmdline:?} after {PATIENCE:?}"
        );
        thread::park_timeout(Duration::from_millis(2));
    }
}

/// s6's readiness protocol: a newline on the descriptor the supervisor passes (here a
/// shell opens fd 3 on a file), written only once the listener accepts.
#[test]
fn ready_fd_gets_a_newline_once_listening() {
    let port = free_port();
    let file = temp_path("ready-fd");
    std::fs::write(&file, "").unwrap();
    let script = format!(
        "exec {} --name s6 --delay 50 --listen {port} --ready-fd 3 3>>{}",
        env!("CARGO_BIN_EXE_gantry-fixture"),
        file.display()
    );
    let mut fx = Running::spawn(Command::new("sh").args(["-c", &script]));
    let deadline = Instant::now() + PATIENCE;
    while std::fs::read_to_string(&file).unwrap() != "\n" {
        assert!(Instant::now() < deadline, "no newline on fd 3");
        thread::park_timeout(Duration::from_millis(1));
    }
    // The newline comes after the bind, so one connect (no retry) must succeed now.
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("listening when fd 3 said ready");
    fx.wait_ready("s6");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn ready_fd_that_is_not_open_is_a_warning() {
    let out = run_to_end(&["--name", "nofd", "--ready-fd", "57", "--exit-after", "0"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("fixture nofd ready"), "{stdout}");
    assert!(stderr.contains("--ready-fd 57 is not open"), "{stderr}");
}

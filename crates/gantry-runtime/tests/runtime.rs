//! Integration tests of the runtime pieces against real processes and sockets.
//!
//! One process may run only one Reaper (two `waitpid(-1)` loops would steal each other's
//! statuses), so every test here shares one tokio runtime and one Reaper, and nothing in
//! this file may wait for children any other way (no `Command::output()`!). The test
//! process makes itself a child subreaper, so orphaned grandchildren come back to it and
//! the Reaper has orphans to reap.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gantry_runtime::notify::NotifySocket;
use gantry_runtime::probe;
use gantry_runtime::process::{LineStream, SpawnError, SpawnSpec, StreamKind, signal_group, spawn};
use gantry_runtime::reaper::{ExitStatus, Reaper, ReaperError};
use gantry_runtime::{Signal, nsinit};

/// No TLS keys: plain http probes.
fn no_tls() -> gantry_spec::TlsOptions {
    gantry_spec::TlsOptions::default()
}
use gantry_state::logfmt::LogFile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[path = "runtime/spawn_table.rs"]
mod spawn_table;

const DEADLINE: Duration = Duration::from_secs(5);

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build tokio runtime")
    })
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        nsinit::subreaper_fallback().expect("become a child subreaper");
        let _guard = rt().enter();
        Reaper::start().expect("start the reaper")
    })
}

/// Run a test body on the shared runtime (with the reaper started).
fn run<F: Future>(f: F) -> F::Output {
    reaper();
    rt().block_on(f)
}

fn env() -> gantry_runtime::envset::Env {
    vec![(
        "PATH".to_string(),
        "/usr/local/bin:/usr/bin:/bin".to_string(),
    )]
    .into()
}

fn sh(script: &str) -> SpawnSpec {
    SpawnSpec {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        env: env(),
        ..Default::default()
    }
}

async fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// True while /proc has an entry for `pid` (zombies included: gone means reaped).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

async fn all_lines(s: &mut LineStream) -> Vec<String> {
    let mut v = Vec::new();
    let read = async {
        while let Some(l) = s.next_line().await.expect("read line") {
            v.push(l);
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("stream reached EOF in time");
    v
}

async fn exit_of(watch: gantry_runtime::reaper::ExitWatch) -> ExitStatus {
    tokio::time::timeout(DEADLINE, watch)
        .await
        .expect("exit in time")
        .expect("reaper alive")
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gantry-runtime-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

#[test]
fn reaper_delivers_exit_code_and_signal() {
    run(async {
        let s = spawn(&sh("exit 3"), reaper()).expect("spawn");
        let st = exit_of(s.exit).await;
        assert_eq!(st, ExitStatus::exited(3));
        assert_eq!(st.to_string(), "exit code 3");

        let s = spawn(&sh("kill -9 $$"), reaper()).expect("spawn");
        let st = exit_of(s.exit).await;
        assert_eq!(st, ExitStatus::signaled(9));
        assert_eq!(st.to_string(), "killed by signal 9 (SIGKILL)");
    });
}

#[test]
fn second_reaper_is_refused() {
    run(async {
        assert!(matches!(Reaper::start(), Err(ReaperError::AlreadyRunning)));
    });
}

#[test]
fn spawn_outside_runtime_is_an_error() {
    let r = reaper();
    let err = std::thread::scope(|s| s.spawn(|| spawn(&sh("true"), r)).join())
        .expect("thread")
        .unwrap_err();
    assert!(matches!(err, SpawnError::NoRuntime { .. }), "{err}");
}

#[test]
fn command_not_found_and_not_executable() {
    run(async {
        let spec = SpawnSpec {
            program: "no-such-command-gantry".into(),
            env: vec![("PATH".into(), "/nonexistent/bin".into())].into(),
            ..Default::default()
        };
        let err = spawn(&spec, reaper()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "command not found: no-such-command-gantry (searched PATH=/nonexistent/bin:"
            ),
            "{msg}"
        );
        let spec = SpawnSpec {
            program: "/etc/passwd".into(),
            ..Default::default()
        };
        let err = spawn(&spec, reaper()).unwrap_err();
        assert_eq!(err.to_string(), "not executable: /etc/passwd");
        let mut spec = sh("true");
        spec.cwd = Some("/nonexistent-dir".into());
        let err = spawn(&spec, reaper()).unwrap_err();
        assert!(matches!(err, SpawnError::BadCwd { .. }), "{err}");
    });
}

#[test]
fn env_is_exactly_what_was_given() {
    run(async {
        let spec = SpawnSpec {
            program: "env".into(),
            args: vec![],
            env: vec![
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "two words".to_string()),
            ]
            .into(),
            cwd: Some("/tmp".into()),
            notify_socket: Some("@gantry/test".into()),
            watchdog: None,
            confine: None,
        };
        let mut s = spawn(&spec, reaper()).expect("spawn env");
        let mut lines = all_lines(&mut s.stdout).await;
        lines.sort();
        assert_eq!(
            lines,
            vec![
                "A=1",
                "B=two words",
                "NOTIFY_SOCKET=@gantry/test",
                "PATH=/usr/bin:/bin"
            ]
        );
        assert!(exit_of(s.exit).await.success());

        // cwd is applied.
        let mut spec = sh("pwd");
        spec.cwd = Some("/tmp".into());
        let mut s = spawn(&spec, reaper()).expect("spawn pwd");
        assert_eq!(all_lines(&mut s.stdout).await, vec!["/tmp"]);
        exit_of(s.exit).await;
    });
}

#[test]
fn a_watchdog_service_gets_its_interval_and_its_own_pid() {
    run(async {
        // The program is a shell too, so `$$` is the service's own pid after the shim's exec.
        let mut spec = sh("echo \"$WATCHDOG_USEC $WATCHDOG_PID $$\"; env | grep -c WATCHDOG_");
        spec.watchdog = Some(Duration::from_millis(1500));
        let mut s = spawn(&spec, reaper()).expect("spawn with a watchdog");
        let lines = all_lines(&mut s.stdout).await;
        assert_eq!(
            lines,
            [format!("1500000 {0} {0}", s.pid), "2".to_string()],
            "WATCHDOG_USEC, WATCHDOG_PID = the pid gantry supervises = the service's own"
        );
        assert!(exit_of(s.exit).await.success());

        // Without a watchdog: neither variable, and no shell in between.
        let mut s = spawn(&sh("env | grep -c WATCHDOG_; exit 0"), reaper()).expect("spawn");
        assert_eq!(all_lines(&mut s.stdout).await, ["0"]);
        exit_of(s.exit).await;
    });
}

#[test]
fn each_service_leads_its_own_process_group() {
    run(async {
        let a = spawn(&sh("exec sleep 30"), reaper()).expect("spawn a");
        let b = spawn(&sh("exec sleep 30"), reaper()).expect("spawn b");
        for s in [&a, &b] {
            let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(s.pid as i32)))
                .expect("getpgid");
            assert_eq!(pgid.as_raw() as u32, s.pid, "pid {} leads its group", s.pid);
        }
        signal_group(a.pid, Signal::SIGKILL).expect("kill a");
        signal_group(b.pid, Signal::SIGKILL).expect("kill b");
        assert_eq!(exit_of(a.exit).await, ExitStatus::signaled(9));
        assert_eq!(exit_of(b.exit).await, ExitStatus::signaled(9));
        // Signalling a group that is gone is not an error.
        signal_group(a.pid, Signal::SIGTERM).expect("ESRCH is fine");
    });
}

#[test]
fn signal_group_kills_child_and_grandchild() {
    run(async {
        let mut s = spawn(&sh("sleep 300 & echo $!; wait"), reaper()).expect("spawn");
        let gc: u32 = s
            .stdout
            .next_line()
            .await
            .expect("read")
            .expect("grandchild pid line")
            .parse()
            .expect("pid");
        assert!(exists(gc));
        signal_group(s.pid, Signal::SIGTERM).expect("killpg");
        assert_eq!(exit_of(s.exit).await, ExitStatus::signaled(15));
        // The grandchild died too, and (re-parented to us as subreaper) was reaped.
        assert!(
            wait_until(|| !exists(gc)).await,
            "grandchild {gc} still there"
        );
    });
}

#[test]
fn line_streams() {
    run(async {
        let script = r#"printf 'a\nb\r\n\n'; printf 'e1\n' >&2; printf '\377ok\n'; printf 'last'"#;
        let mut s = spawn(&sh(script), reaper()).expect("spawn");
        assert_eq!(s.stdout.kind(), StreamKind::Out);
        let out = all_lines(&mut s.stdout).await;
        let err = all_lines(&mut s.stderr).await;
        assert_eq!(out, vec!["a", "b", "", "\u{FFFD}ok", "last"]);
        assert_eq!(err, vec!["e1"]);
        exit_of(s.exit).await;

        // A 70000-byte line comes out as a 64 KiB chunk plus the rest.
        let mut s = spawn(
            &sh("head -c 70000 /dev/zero | tr '\\0' x; echo; echo next"),
            reaper(),
        )
        .expect("spawn");
        let out = all_lines(&mut s.stdout).await;
        let lens: Vec<usize> = out.iter().map(String::len).collect();
        assert_eq!(lens, vec![65536, 70000 - 65536, 4]);
        assert_eq!(out[2], "next");
        exit_of(s.exit).await;
    });
}

#[test]
fn reaper_reaps_orphans_and_parks_early_exits() {
    run(async {
        // The grandchild outlives sh, is re-parented to us (subreaper) and must not stay a
        // zombie once it exits.
        let mut s = spawn(&sh("sleep 0.3 & echo $!"), reaper()).expect("spawn");
        let gc: u32 = s
            .stdout
            .next_line()
            .await
            .expect("read")
            .expect("pid line")
            .parse()
            .expect("pid");
        assert!(exit_of(s.exit).await.success());
        assert!(wait_until(|| !exists(gc)).await, "orphan {gc} not reaped");

        // An orphan's status is parked; a late watch still gets it. The orphan must
        // outlive its parent shell, or the shell itself may reap it.
        let mut s = spawn(&sh("sh -c 'sleep 0.2; exit 7' & echo $!"), reaper()).expect("spawn");
        let gc: u32 = s
            .stdout
            .next_line()
            .await
            .expect("read")
            .expect("pid line")
            .parse()
            .expect("pid");
        exit_of(s.exit).await;
        assert!(wait_until(|| !exists(gc)).await, "orphan {gc} not reaped");
        assert_eq!(exit_of(reaper().watch(gc)).await, ExitStatus::exited(7));
    });
}

/// The expected failure against a closed port. About 1 in 40,000 connects to a closed
/// ephemeral port self-connects (notes §C); the probe reports that as a failure too.
fn refused(message: &str, addr: &str) -> bool {
    message == format!("connection refused ({addr})") || message.starts_with("self-connect")
}

/// The listen watch's confirming connect (for a `[::]` listener behind an IPv4 probe):
/// same outcomes and messages as the async probe.
#[test]
fn tcp_loopback_now_matches_the_async_probe() {
    let listener = std::net::TcpListener::bind("[::]:0")
        .or_else(|_| std::net::TcpListener::bind("0.0.0.0:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let target: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let o = probe::tcp_loopback_now(target).expect("finishes at once on loopback");
    assert!(o.ok, "{}", o.message);
    assert_eq!(o.message, format!("connected to {target}"));
    drop(listener);
    let o = probe::tcp_loopback_now(target).expect("refused at once");
    assert!(!o.ok);
    assert!(refused(&o.message, &target.to_string()), "{}", o.message);
}

#[test]
fn tcp_probe() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let o = probe::tcp(&addr, Duration::from_secs(1)).await;
        assert!(o.ok, "{}", o.message);
        assert_eq!(o.message, format!("connected to {addr}"));
        // The probe connection was closed at once: the service reads EOF.
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 1];
        assert_eq!(conn.read(&mut buf).await.expect("read"), 0);

        drop(listener);
        let o = probe::tcp(&addr, Duration::from_secs(1)).await;
        assert!(!o.ok);
        assert!(refused(&o.message, &addr), "{}", o.message);

        let o = probe::tcp("no-port-here", Duration::from_secs(1)).await;
        assert!(!o.ok);
        assert!(
            o.message.starts_with("cannot resolve no-port-here"),
            "{}",
            o.message
        );
    });
}

/// Minimal HTTP server: `/ok` 200 "all good", `/fail` 503, `/hang` never answers.
async fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&req);
                let path = req.split(' ').nth(1).unwrap_or("/").to_string();
                let (status, body) = match path.as_str() {
                    "/ok" => ("200 OK", "all good"),
                    "/fail" => ("503 Service Unavailable", "down"),
                    "/hang" => {
                        // Hold the connection open without answering.
                        let _ = conn.read(&mut buf).await;
                        return;
                    }
                    _ => ("404 Not Found", ""),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    base
}

#[test]
fn http_probe() {
    run(async {
        let base = http_server().await;
        let t = Duration::from_secs(2);

        let o = probe::http(
            &format!("{base}/ok"),
            None,
            None,
            &no_tls(),
            Path::new("."),
            t,
        )
        .await;
        assert!(o.ok, "{}", o.message);
        assert_eq!(o.message, format!("HTTP 200 from {base}/ok"));

        let o = probe::http(
            &format!("{base}/ok"),
            None,
            Some("good".into()),
            &no_tls(),
            Path::new("."),
            t,
        )
        .await;
        assert!(o.ok, "{}", o.message);

        let url = format!("{base}/fail");
        let o = probe::http(&url, None, None, &no_tls(), Path::new("."), t).await;
        assert!(!o.ok);
        assert_eq!(o.message, format!("HTTP 503 from {url} (expected 2xx/3xx)"));

        let o = probe::http(&url, Some(503), None, &no_tls(), Path::new("."), t).await;
        assert!(o.ok, "{}", o.message);
        let o = probe::http(
            &format!("{base}/ok"),
            Some(204),
            None,
            &no_tls(),
            Path::new("."),
            t,
        )
        .await;
        assert_eq!(o.message, format!("HTTP 200 from {base}/ok (expected 204)"));

        let o = probe::http(
            &format!("{base}/ok"),
            None,
            Some("ready".into()),
            &no_tls(),
            Path::new("."),
            t,
        )
        .await;
        assert!(!o.ok);
        assert_eq!(
            o.message,
            format!("HTTP 200 from {base}/ok, but the body does not contain \"ready\"")
        );

        let started = Instant::now();
        let o = probe::http(
            &format!("{base}/hang"),
            None,
            None,
            &no_tls(),
            Path::new("."),
            Duration::from_millis(300),
        )
        .await;
        assert!(!o.ok);
        assert_eq!(
            o.message,
            format!("timed out after 300ms (GET {base}/hang)")
        );
        assert!(started.elapsed() < DEADLINE);

        // Nothing listening.
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        let o = probe::http(
            &format!("http://{addr}/"),
            None,
            None,
            &no_tls(),
            Path::new("."),
            t,
        )
        .await;
        assert!(!o.ok);
        assert!(refused(&o.message, &addr.to_string()), "{}", o.message);
    });
}

#[test]
fn exec_probe_status_and_output() {
    run(async {
        let t = Duration::from_secs(5);
        let argv = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        let o = probe::exec(argv("echo fine"), env(), None, t, reaper()).await;
        assert!(o.ok, "{}", o.message);
        assert_eq!(o.message, "exit code 0: fine");

        let o = probe::exec(
            argv("echo out; echo 'bad thing' >&2; echo; exit 1"),
            env(),
            None,
            t,
            reaper(),
        )
        .await;
        assert!(!o.ok);
        assert_eq!(o.message, "exit code 1: bad thing");

        let o = probe::exec(vec!["no-such-probe-cmd".into()], env(), None, t, reaper()).await;
        assert!(!o.ok);
        assert!(
            o.message
                .starts_with("cannot start probe: command not found: no-such-probe-cmd"),
            "{}",
            o.message
        );

        let o = probe::exec(vec![], env(), None, t, reaper()).await;
        assert!(!o.ok);
    });
}

#[test]
fn a_command_that_prints_without_pause_still_times_out() {
    // `yes` keeps stdout ready forever: the deadline must still win, and what a secret
    // command printed past the cap is refused, not truncated.
    run(async {
        let guard = Duration::from_secs(20);
        let yes = || vec!["yes".to_string(), "y".to_string()];
        let t = Duration::from_millis(300);
        let o = tokio::time::timeout(guard, probe::exec(yes(), env(), None, t, reaper()))
            .await
            .expect("the exec probe ignored its timeout");
        assert!(!o.ok);
        assert!(
            o.message.starts_with("timed out after 300ms"),
            "{}",
            o.message
        );
        let (o, kept) =
            tokio::time::timeout(guard, probe::capture(yes(), env(), None, t, reaper()))
                .await
                .expect("capture ignored its timeout");
        assert!(!o.ok);
        assert!(kept.is_none(), "more than the cap was printed");
        let argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            "head -c 70000 /dev/zero | tr '\\0' x; echo".to_string(),
        ];
        let (o, kept) = probe::capture(argv, env(), None, Duration::from_secs(10), reaper()).await;
        assert!(o.ok, "{}", o.message);
        assert!(kept.is_none(), "a 70,000-byte line is over the 64 KiB cap");
        let argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            "echo a; echo b".to_string(),
        ];
        let (_, kept) = probe::capture(argv, env(), None, Duration::from_secs(10), reaper()).await;
        assert_eq!(kept.unwrap(), ["a", "b"]);
    });
}

#[test]
fn exec_probe_timeout_kills_the_group() {
    run(async {
        let dir = temp_dir("exec-timeout");
        let pidfile = dir.join("pids");
        let script = format!(
            "sleep 10 & echo $! > {p}.gc; echo $$ > {p}; exec sleep 10",
            p = pidfile.display()
        );
        let started = Instant::now();
        let o = probe::exec(
            vec!["sh".into(), "-c".into(), script],
            env(),
            None,
            Duration::from_millis(200),
            reaper(),
        )
        .await;
        assert!(!o.ok);
        assert_eq!(o.message, "timed out after 200ms (process group killed)");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let read_pid = |p: PathBuf| -> u32 {
            std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .trim()
                .parse()
                .expect("pid")
        };
        let pid = read_pid(pidfile.clone());
        let gc = read_pid(dir.join("pids.gc"));
        assert!(!exists(pid), "probe process {pid} still exists");
        assert!(
            wait_until(|| !exists(gc)).await,
            "probe helper {gc} survived"
        );
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn notify_socket_from_a_child() {
    run(async {
        let sock = NotifySocket::bind("web").expect("bind notify socket");
        let value = sock.env_value();
        assert!(value.starts_with("@gantry/"), "{value}");
        assert!(value.ends_with("/web"), "{value}");
        let py = r#"
import os, socket
a = os.environ["NOTIFY_SOCKET"]
if a.startswith("@"):
    a = "\0" + a[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=serving on 8080", a)
"#;
        let spec = SpawnSpec {
            program: "python3".into(),
            args: vec!["-c".into(), py.into()],
            env: env(),
            notify_socket: Some(value),
            ..Default::default()
        };
        let s = spawn(&spec, reaper()).expect("spawn python3");
        let msg = tokio::time::timeout(DEADLINE, sock.recv())
            .await
            .expect("message in time")
            .expect("recv");
        assert!(msg.ready);
        assert_eq!(msg.status.as_deref(), Some("serving on 8080"));
        let sender = msg.sender.expect("credentials");
        assert_eq!(sender.pid as u32, s.pid, "sender is the service");
        assert!(exit_of(s.exit).await.success());
    });
}

#[test]
fn notify_socket_drains_several_datagrams() {
    run(async {
        let sock = NotifySocket::bind("batch").expect("bind");
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(sock.name().as_bytes())
            .expect("addr");
        let tx = std::os::unix::net::UnixDatagram::unbound().expect("socket");
        for payload in [
            "STATUS=one",
            "STATUS=two\nWATCHDOG=1",
            "EXTEND_TIMEOUT_USEC=5000000",
        ] {
            tx.send_to_addr(payload.as_bytes(), &addr).expect("send");
        }
        let a = sock.recv().await.expect("recv 1");
        assert_eq!(a.status.as_deref(), Some("one"));
        assert_eq!(a.sender.map(|s| s.pid as u32), Some(std::process::id()));
        // The wake-up drained the others: they are already here.
        let rest = sock.try_recv_all().expect("drain");
        assert_eq!(rest.len(), 2);
        assert!(rest[0].watchdog);
        assert_eq!(rest[1].extend_timeout_usec, Some(5_000_000));
        assert!(sock.try_recv_all().expect("drain").is_empty());
    });
}

#[test]
fn log_file_lines() {
    let dir = temp_dir("logs");
    {
        let mut log = LogFile::open(&dir, "api").expect("open");
        log.write_batch(StreamKind::Out, ["hello", "world"])
            .expect("write");
        log.write_line(StreamKind::Err, "oops").expect("write");
        log.flush().expect("flush");
    }
    // Reopening appends.
    let mut log = LogFile::open(&dir, "api").expect("reopen");
    log.write_batch(StreamKind::Out, ["again"]).expect("write");
    let text = std::fs::read_to_string(dir.join("logs/api.log")).expect("read log");
    let re = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (out|err) (.*)$")
        .expect("regex");
    let got: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let c = re
                .captures(l)
                .unwrap_or_else(|| panic!("bad log line {l:?}"));
            (c[1].to_string(), c[2].to_string())
        })
        .collect();
    let want = [
        ("out", "hello"),
        ("out", "world"),
        ("err", "oops"),
        ("out", "again"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Not a pass/fail test: prints how long `spawn` blocks the caller and how long a whole
/// spawn → exit → reaped cycle takes (run with --nocapture). Sequential, so the children
/// do not compete with the measurement for the CPUs.
#[test]
fn spawn_latency_report() {
    run(async {
        let spec = SpawnSpec {
            program: "/bin/true".into(),
            env: env(),
            ..Default::default()
        };
        let n = 200;
        let mut call = Vec::with_capacity(n);
        let mut cycle = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let s = spawn(&spec, reaper()).expect("spawn /bin/true");
            call.push(t.elapsed());
            assert!(exit_of(s.exit).await.success());
            cycle.push(t.elapsed());
        }
        call.sort();
        cycle.sort();
        eprintln!(
            "spawn_latency_report: /bin/true, n={n}: spawn() median {:?} p90 {:?}; spawn→reaped median {:?} p90 {:?}",
            call[n / 2],
            call[n * 9 / 10],
            cycle[n / 2],
            cycle[n * 9 / 10]
        );
    });
}

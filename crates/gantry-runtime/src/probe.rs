//! Probe executors: TCP connect, HTTP(S) GET, exec, and log-line matching.
//!
//! Every probe is cut at its timeout, never panics, and reports a [`ProbeOutcome`] whose
//! message says precisely what happened: `connection refused (127.0.0.1:9)`, `timed out
//! after 1s`, `HTTP 503 from http://… (expected 2xx/3xx)`, `exit code 1: <last line>`.
//!
//! TCP probes disturb the service (notes §C): every connect is accepted, and a closed probe
//! keeps an accept-queue slot until the service accepts it. So each probe opens one
//! connection, closes it immediately and stops at the first success; the scheduler
//! (driver/engine) should stop probing once a service is ready. A connect to a closed port
//! in the ephemeral range can self-connect (TCP simultaneous open with itself); that is
//! detected (local address == peer address) and reported as a failure.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use nix::sys::signal::Signal;
use tokio::net::TcpStream;

use crate::process::{SpawnSpec, Spawned, signal_group, spawn};
use crate::reaper::{ExitStatus, Reaper};
use gantry_engine::HumanDuration;

/// How much of an HTTP response body is read for the `expect_body` check.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long an exec probe waits for its remaining output after the command exited.
const EXEC_DRAIN_GRACE: Duration = Duration::from_millis(200);

/// Bound on waiting for a killed exec probe to be reaped (a process stuck in
/// uninterruptible sleep cannot die; the reaper still collects it later).
const EXEC_KILL_WAIT: Duration = Duration::from_secs(2);

/// Longest output line quoted in an exec probe message.
const MAX_QUOTED_LINE: usize = 300;

/// Result of one probe run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub ok: bool,
    /// What happened, for humans (and the event log).
    pub message: String,
    /// Wall time the probe took.
    pub duration: Duration,
}

impl ProbeOutcome {
    fn new(ok: bool, message: String, started: Instant) -> Self {
        Self {
            ok,
            message,
            duration: started.elapsed(),
        }
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", HumanDuration(timeout))
}

/// TCP probe: resolve `addr` ("host:port"), connect, close at once. Ok on the first address
/// that accepts; a self-connect counts as failure.
pub async fn tcp(addr: &str, timeout: Duration) -> ProbeOutcome {
    let started = Instant::now();
    match tokio::time::timeout(timeout, connect(addr)).await {
        Ok(Ok((stream, peer))) => {
            // Close immediately: the service sees EOF and the accept-queue slot is freed
            // as soon as it accepts.
            drop(stream);
            ProbeOutcome::new(true, format!("connected to {peer}"), started)
        }
        Ok(Err(msg)) => ProbeOutcome::new(false, msg, started),
        Err(_) => ProbeOutcome::new(false, timed_out(timeout), started),
    }
}

/// TCP probe of one loopback address that something is known to listen on (the listen
/// watch saw it), done at once on the calling thread: a loopback handshake completes
/// within the connect call, so this costs microseconds and saves the event loop a task
/// and a round trip. `None` when it could not finish within a millisecond or two (e.g.
/// a full accept queue): the caller then runs the ordinary async [`tcp`] probe.
pub fn tcp_loopback_now(target: std::net::SocketAddr) -> Option<ProbeOutcome> {
    let started = Instant::now();
    match std::net::TcpStream::connect_timeout(&target, Duration::from_millis(2)) {
        Ok(stream) => {
            let local = stream.local_addr().ok();
            let peer = stream.peer_addr().ok();
            drop(stream);
            if local.is_some() && local == peer {
                return Some(ProbeOutcome::new(false, self_connect(target), started));
            }
            Some(ProbeOutcome::new(
                true,
                format!("connected to {target}"),
                started,
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(ProbeOutcome::new(
            false,
            format!("connection refused ({target})"),
            started,
        )),
        Err(_) => None,
    }
}

fn self_connect(sa: std::net::SocketAddr) -> String {
    format!("self-connect ({sa}: nothing is listening; the kernel connected the probe to itself)")
}

/// Connect to the first address of `addr` that accepts. The error is a finished message.
async fn connect(addr: &str) -> Result<(TcpStream, std::net::SocketAddr), String> {
    let addrs: Vec<_> = match tokio::net::lookup_host(addr).await {
        Ok(it) => it.collect(),
        Err(e) => return Err(format!("cannot resolve {addr}: {e}")),
    };
    if addrs.is_empty() {
        return Err(format!("cannot resolve {addr}: no addresses"));
    }
    let mut failures = Vec::new();
    for sa in addrs {
        match TcpStream::connect(sa).await {
            Ok(stream) => {
                let local = stream.local_addr().ok();
                let peer = stream.peer_addr().ok();
                if local.is_some() && local == peer {
                    drop(stream);
                    failures.push(self_connect(sa));
                    continue;
                }
                return Ok((stream, sa));
            }
            Err(e) => failures.push(match e.kind() {
                std::io::ErrorKind::ConnectionRefused => format!("connection refused ({sa})"),
                _ => format!("{e} ({sa})"),
            }),
        }
    }
    Err(failures.join("; "))
}

/// HTTP probe: `GET url` over http/1.1 (`Connection: close`), over TLS for `https://`
/// (verified against `tls.ca_file` or the system roots; files relative to `base`). Success
/// is the `expect_status` when given, else any 2xx/3xx; with `expect_body`, the first
/// [`MAX_BODY`] bytes of the body must also contain that substring.
pub async fn http(
    url: &str,
    expect_status: Option<u16>,
    expect_body: Option<String>,
    tls: &gantry_spec::TlsOptions,
    base: &std::path::Path,
    timeout: Duration,
) -> ProbeOutcome {
    let started = Instant::now();
    let check = Check {
        url,
        expect_status,
        expect_body: expect_body.as_deref(),
    };
    match tokio::time::timeout(timeout, http_inner(&check, tls, base)).await {
        Ok(Ok(msg)) => ProbeOutcome::new(true, msg, started),
        Ok(Err(msg)) => ProbeOutcome::new(false, msg, started),
        Err(_) => ProbeOutcome::new(
            false,
            format!("{} (GET {url})", timed_out(timeout)),
            started,
        ),
    }
}

/// What one http probe asks for.
struct Check<'a> {
    url: &'a str,
    expect_status: Option<u16>,
    expect_body: Option<&'a str>,
}

/// Where an http(s) URL connects: host (IPv6 brackets kept), port, and whether over TLS.
pub(crate) fn http_target(url: &str) -> Result<(hyper::Uri, String, u16, bool), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => return Err(format!("unsupported URL scheme {other:?} in {url}")),
        None => return Err(format!("invalid URL {url:?}: missing http:// scheme")),
    };
    let host = match uri.host() {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => return Err(format!("invalid URL {url:?}: missing host")),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    Ok((uri, host, port, https))
}

/// The TLS endpoint of an `https://` probe, for the pre-flight's certificate check.
pub fn http_tls_endpoint(
    url: &str,
    tls: &gantry_spec::TlsOptions,
) -> Option<crate::tls::inspect::Endpoint> {
    let (_, host, port, https) = http_target(url).ok()?;
    https.then(|| crate::tls::inspect::Endpoint {
        host,
        port,
        preamble: crate::tls::inspect::Preamble::None,
        verify: crate::tls::Verify::Full.with(tls),
        tls: tls.clone(),
    })
}

async fn http_inner(
    check: &Check<'_>,
    tls: &gantry_spec::TlsOptions,
    base: &std::path::Path,
) -> Result<String, String> {
    let url = check.url;
    let (uri, host, port, https) = http_target(url)?;
    // Host header and connect target: host[:port] (IPv6 literals keep their brackets).
    let host_header = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let target = format!("{host}:{port}");
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::USER_AGENT, "gantry-probe")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;

    let config = if https {
        let verify = crate::tls::Verify::Full.with(tls);
        Some(crate::tls::client_config(tls, base, verify).await?)
    } else {
        None
    };
    let (stream, _) = connect(&target).await?;
    match config {
        None => exchange(TokioIo::new(stream), &target, req, check).await,
        Some(config) => {
            let stream = crate::tls::handshake(stream, &host, std::sync::Arc::new(config)).await?;
            exchange(TokioIo::new(stream), &target, req, check).await
        }
    }
}

/// One request and its answer on a connected (plain or TLS) stream.
async fn exchange<IO>(
    io: IO,
    target: &str,
    req: hyper::Request<Empty<Bytes>>,
    check: &Check<'_>,
) -> Result<String, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let url = check.url;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake with {target} failed: {e}"))?;
    tokio::pin!(conn);
    let mut conn_done = false;

    // Over TLS 1.3 a server refuses a client certificate after the handshake: its alert
    // arrives with the answer.
    let failed = |e: hyper::Error| match crate::tls::find_error(&e) {
        Some(tls) => crate::tls::describe(tls, target.rsplit_once(':').map_or(target, |(h, _)| h))
            .to_string(),
        None => format!("GET {url} failed: {e}"),
    };
    let resp = with_conn(conn.as_mut(), &mut conn_done, sender.send_request(req))
        .await
        .map_err(failed)?
        .map_err(failed)?;
    let status = resp.status().as_u16();
    let (status_ok, expected) = match check.expect_status {
        Some(want) => (status == want, format!("{want}")),
        None => ((200..400).contains(&status), "2xx/3xx".to_string()),
    };
    if !status_ok {
        return Err(format!("HTTP {status} from {url} (expected {expected})"));
    }
    let Some(needle) = check.expect_body else {
        return Ok(format!("HTTP {status} from {url}"));
    };

    let mut body = resp.into_body();
    let mut collected: Vec<u8> = Vec::new();
    let read_body = async {
        while collected.len() < MAX_BODY {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        collected.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(())
    };
    with_conn(conn.as_mut(), &mut conn_done, read_body)
        .await
        .map_err(|e| format!("reading body of {url} failed: {e}"))?
        .map_err(|e| format!("reading body of {url} failed: {e}"))?;
    collected.truncate(MAX_BODY);
    let text = String::from_utf8_lossy(&collected);
    if text.contains(needle) {
        Ok(format!(
            "HTTP {status} from {url}, body contains {needle:?}"
        ))
    } else {
        Err(format!(
            "HTTP {status} from {url}, but the body does not contain {:?}",
            shorten(needle, MAX_QUOTED_LINE)
        ))
    }
}

/// Await `fut` while also driving the hyper connection (which moves the bytes). Once the
/// connection future has finished, `fut` is awaited alone.
async fn with_conn<C, F>(
    conn: Pin<&mut C>,
    conn_done: &mut bool,
    fut: F,
) -> Result<F::Output, hyper::Error>
where
    C: Future<Output = Result<(), hyper::Error>>,
    F: Future,
{
    tokio::pin!(fut);
    if !*conn_done {
        tokio::select! {
            biased;
            out = &mut fut => return Ok(out),
            res = conn => {
                *conn_done = true;
                res?;
            }
        }
    }
    Ok(fut.await)
}

/// Exec probe: run `program_and_args` in its own process group with exactly `env`; ok when
/// it exits 0. On timeout the whole group is SIGKILLed. After the command exits its group
/// is SIGKILLed too, so a probe cannot leave helpers behind (a `setsid` daemon escapes the
/// group; the PID namespace still bounds its life to gantry's).
///
/// The exit status is collected through `reaper` (gantry owns all reaping).
pub async fn exec(
    program_and_args: Vec<String>,
    env: crate::envset::Env,
    cwd: Option<PathBuf>,
    timeout: Duration,
    reaper: &Reaper,
) -> ProbeOutcome {
    run_command(program_and_args, env, cwd, timeout, reaper, false)
        .await
        .0
}

/// The most standard output [`capture`] keeps.
pub const CAPTURE_CAP: usize = 64 * 1024;

/// Runs a command like [`exec`] and also returns its standard output lines, or `None`
/// when it printed more than [`CAPTURE_CAP`] bytes: for secrets from a command.
pub async fn capture(
    program_and_args: Vec<String>,
    env: crate::envset::Env,
    cwd: Option<PathBuf>,
    timeout: Duration,
    reaper: &Reaper,
) -> (ProbeOutcome, Option<Vec<String>>) {
    run_command(program_and_args, env, cwd, timeout, reaper, true).await
}

async fn run_command(
    program_and_args: Vec<String>,
    env: crate::envset::Env,
    cwd: Option<PathBuf>,
    timeout: Duration,
    reaper: &Reaper,
    keep_stdout: bool,
) -> (ProbeOutcome, Option<Vec<String>>) {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut argv = program_and_args.into_iter();
    let Some(program) = argv.next() else {
        return (
            ProbeOutcome::new(false, "exec probe has no command".into(), started),
            None,
        );
    };
    let spec = SpawnSpec {
        program,
        args: argv.collect(),
        env,
        cwd,
        notify_socket: None,
        watchdog: None,
        confine: None,
    };
    let Spawned {
        pid,
        mut stdout,
        mut stderr,
        mut exit,
    } = match spawn(&spec, reaper) {
        Ok(s) => s,
        Err(e) => {
            return (
                ProbeOutcome::new(false, format!("cannot start probe: {e}"), started),
                None,
            );
        }
    };

    let mut last = LastLines {
        keep: keep_stdout.then(Vec::new),
        ..LastLines::default()
    };
    let (mut out_open, mut err_open) = (true, true);
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    let status = loop {
        tokio::select! {
            // The deadline first: a command that prints without pause (`yes`) keeps its
            // stdout ready forever and would otherwise never be timed out.
            biased;
            _ = &mut sleep => break None,
            st = &mut exit => break Some(st),
            line = stdout.next_line(), if out_open => match line {
                Ok(Some(l)) => last.note_out(l),
                _ => out_open = false,
            },
            line = stderr.next_line(), if err_open => match line {
                Ok(Some(l)) => last.note_err(l),
                _ => err_open = false,
            },
        }
    };

    // Either way nothing of the probe may outlive it: kill what is left of its group.
    let _ = signal_group(pid, Signal::SIGKILL);
    let status = match status {
        Some(st) => st,
        None => {
            let reaped = tokio::time::timeout(EXEC_KILL_WAIT, &mut exit).await;
            let suffix = match reaped {
                Ok(_) => "process group killed".to_string(),
                Err(_) => format!(
                    "process group killed, pid {pid} not gone after {}",
                    HumanDuration(EXEC_KILL_WAIT)
                ),
            };
            let mut msg = format!("{} ({suffix})", timed_out(timeout));
            if let Some(line) = last.best() {
                msg.push_str(": ");
                msg.push_str(&line);
            }
            let kept = last.kept();
            return (ProbeOutcome::new(false, msg, started), kept);
        }
    };

    // Output still in the pipes after the exit: read it (bounded, since a setsid daemon
    // could hold the write end open forever).
    let drain = async {
        while out_open || err_open {
            tokio::select! {
                line = stdout.next_line(), if out_open => match line {
                    Ok(Some(l)) => last.note_out(l),
                    _ => out_open = false,
                },
                line = stderr.next_line(), if err_open => match line {
                    Ok(Some(l)) => last.note_err(l),
                    _ => err_open = false,
                },
            }
        }
    };
    let _ = tokio::time::timeout(EXEC_DRAIN_GRACE, drain).await;

    let best = last.best();
    let kept = last.kept();
    match status {
        Ok(st) => (exec_outcome(st, best, started), kept),
        Err(e) => (
            ProbeOutcome::new(false, format!("exec probe: {e}"), started),
            kept,
        ),
    }
}

fn exec_outcome(st: ExitStatus, line: Option<String>, started: Instant) -> ProbeOutcome {
    let mut msg = st.to_string();
    if let Some(line) = line {
        msg.push_str(": ");
        msg.push_str(&line);
    }
    ProbeOutcome::new(st.success(), msg, started)
}

/// Last non-blank line of each stream; stderr is preferred for messages as it usually
/// carries the reason for a failure.
#[derive(Default)]
struct LastLines {
    out: Option<String>,
    err: Option<String>,
    /// Every stdout line, when the caller wants the output itself (bounded).
    keep: Option<Vec<String>>,
    /// Bytes of stdout seen (lines plus their newlines).
    kept_bytes: usize,
}

impl LastLines {
    fn note_out(&mut self, line: String) {
        self.kept_bytes = self.kept_bytes.saturating_add(line.len() + 1);
        if let Some(keep) = &mut self.keep {
            if self.kept_bytes <= CAPTURE_CAP + 1 {
                keep.push(line.clone());
            } else if !keep.is_empty() {
                // Over the cap: what was kept is not the output; free it.
                *keep = Vec::new();
            }
        }
        if !line.trim().is_empty() {
            self.out = Some(line);
        }
    }
    fn note_err(&mut self, line: String) {
        if !line.trim().is_empty() {
            self.err = Some(line);
        }
    }
    /// The kept stdout lines; `None` when not kept or over [`CAPTURE_CAP`].
    fn kept(&mut self) -> Option<Vec<String>> {
        let keep = self.keep.take()?;
        (self.kept_bytes <= CAPTURE_CAP + 1).then_some(keep)
    }

    fn best(&self) -> Option<String> {
        self.err
            .as_deref()
            .or(self.out.as_deref())
            .map(|l| shorten(l.trim_end(), MAX_QUOTED_LINE))
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// An invalid log-probe pattern.
#[derive(Debug, thiserror::Error)]
#[error("invalid log pattern {pattern:?}: {source}")]
pub struct LogPatternError {
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

/// Log probe: the driver feeds every service output line to [`LogMatcher::matches`].
#[derive(Debug, Clone)]
pub struct LogMatcher(pub regex::Regex);

impl LogMatcher {
    /// Compile `pattern` (Rust `regex` syntax, unanchored).
    pub fn new(pattern: &str) -> Result<Self, LogPatternError> {
        regex::Regex::new(pattern)
            .map(LogMatcher)
            .map_err(|source| LogPatternError {
                pattern: pattern.to_string(),
                source,
            })
    }

    /// Whether `line` contains a match.
    pub fn matches(&self, line: &str) -> bool {
        self.0.is_match(line)
    }
}

/// The pattern the file decoder already compiled: no second compile.
impl From<gantry_spec::LogPattern> for LogMatcher {
    fn from(pattern: gantry_spec::LogPattern) -> LogMatcher {
        LogMatcher(pattern.into_regex())
    }
}

/// Runs one polled probe of any kind, cut at `timeout`: the one dispatch the driver and
/// the pre-flight share. `env` and `cwd` are an exec probe's; store probes resolve paths
/// (SQLite) against `base`. Pushed kinds (log, notify) have nothing to run: they pass
/// with a note, since they are answered by the service itself.
pub async fn run(
    kind: &gantry_spec::ProbeKind,
    env: crate::envset::Env,
    cwd: Option<std::path::PathBuf>,
    timeout: Duration,
    reaper: &Reaper,
    base: &std::path::Path,
) -> ProbeOutcome {
    use gantry_spec::ProbeKind;
    match kind {
        ProbeKind::Tcp(addr) => tcp(addr, timeout).await,
        ProbeKind::Http {
            url,
            expect_status,
            expect_body,
            tls,
        } => http(url, *expect_status, expect_body.clone(), tls, base, timeout).await,
        ProbeKind::Exec(argv) => exec(argv.clone(), env, cwd, timeout, reaper).await,
        k if crate::stores::is_store(k) => crate::stores::check(k, timeout, base).await,
        other => ProbeOutcome {
            ok: true,
            message: format!("{} probe is answered by the service itself", other.name()),
            duration: Duration::ZERO,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        // Messages use the engine's one human duration format.
        let fmt_duration = |d| HumanDuration(d).to_string();
        assert_eq!(fmt_duration(Duration::from_secs(1)), "1s");
        assert_eq!(fmt_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_micros(350)), "350µs");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn log_matcher() {
        let m = LogMatcher::new(r"listening on :\d+").expect("valid");
        assert!(m.matches("server listening on :8080"));
        assert!(!m.matches("starting"));
        let err = LogMatcher::new("(").unwrap_err();
        assert!(err.to_string().starts_with("invalid log pattern \"(\""));
    }

    #[test]
    fn log_matcher_from_the_decoded_pattern() {
        let pattern = gantry_spec::LogPattern::new(r"ready in \d+ms").expect("valid");
        assert_eq!(pattern.as_str(), r"ready in \d+ms");
        let m = LogMatcher::from(pattern);
        assert!(m.matches("db ready in 12ms"));
        assert!(!m.matches("ready soon"));
    }

    #[test]
    fn shorten_respects_char_boundaries() {
        assert_eq!(shorten("ééé", 3), "é…");
        assert_eq!(shorten("abc", 3), "abc");
    }

    #[tokio::test]
    async fn http_rejects_garbage() {
        let none = gantry_spec::TlsOptions::default();
        let base = std::path::Path::new("/");
        let o = http(
            "ftp://127.0.0.1/",
            None,
            None,
            &none,
            base,
            Duration::from_secs(1),
        )
        .await;
        assert!(!o.ok);
        assert!(
            o.message.contains("unsupported URL scheme"),
            "{}",
            o.message
        );
        let o = http("not a url", None, None, &none, base, Duration::from_secs(1)).await;
        assert!(!o.ok);
        assert!(o.message.starts_with("invalid URL"), "{}", o.message);
    }
}

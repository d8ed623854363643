//! `gantry-fixture`: a tiny fake "service" that gantry's integration tests,
//! benchmarks and quickstart example spawn and supervise.
//!
//! It starts fast (std plus `signal-hook`, no async runtime), does exactly what
//! its flags say and prints clear lines. All times are in milliseconds.
//!
//! # Lines it prints
//!
//! - stdout, at start: `fixture NAME started pid PID`
//! - stdout, once ready: the `--ready-line` texts, then `fixture NAME ready`
//! - stdout, on SIGTERM/SIGINT: `fixture NAME: stopping`
//! - stdout, on a timed exit: `fixture NAME: exiting with code N`
//! - stderr, on a planned failure: `fixture NAME: failing on purpose (start K of N)`
//!
//! # Flags
//!
//! Every flag that takes a value accepts `--flag VALUE` and `--flag=VALUE`.
//! An unknown flag or a bad value prints a usage line to stderr and exits 2.
//!
//! | flag | effect |
//! | --- | --- |
//! | `--name NAME` | label used in printed lines (default `fixture`) |
//! | `--delay MS` | wait this long before becoming ready (default 0) |
//! | `--listen PORT` | after the delay, bind 127.0.0.1:PORT and accept (and at once close) connections forever; repeatable |
//! | `--http PORT` | after the delay, serve HTTP/1.1 on 127.0.0.1:PORT: `GET /health` answers `200 OK` with body `ok`, other paths 404; repeatable |
//! | `--http-status CODE` | status code of `/health` (default 200); a non-2xx code answers with body `not ready` |
//! | `--unready-file PATH` | while PATH exists, `/health` answers `503` with body `not ready` (checked at every request: create the file to turn readiness off, remove it to turn it on again) |
//! | `--ready-line TEXT` | once ready (listeners bound), print TEXT on its own line to stdout; repeatable |
//! | `--notify` | once ready, send `READY=1` and `STATUS=ready` to the datagram socket in `NOTIFY_SOCKET` (`@` = abstract) |
//! | `--notify-extend USEC` | at start, before the `--delay` wait, send `EXTEND_TIMEOUT_USEC=USEC` to `NOTIFY_SOCKET` (asks the supervisor for that many microseconds more start time); independent of `--notify` |
//! | `--watchdog` | once ready, send `WATCHDOG=1` to `NOTIFY_SOCKET` at once and then every half of `WATCHDOG_USEC` (as systemd advises), on a thread of its own; prints `fixture NAME: watchdog every USEC us, WATCHDOG_PID=PID, pid PID`. Not at all when `WATCHDOG_PID` names another process |
//! | `--watchdog-stop-after N` | implies `--watchdog`; after N keep-alives, stop sending them (prints `fixture NAME: watchdog stopped after N`) and play hung |
//! | `--watchdog-trigger-after MS` | implies `--watchdog`; MS after ready, send `WATCHDOG=trigger` (prints `fixture NAME: watchdog trigger sent`) and stop the keep-alives |
//! | `--ready-fd N` | once ready, write a newline to file descriptor N (N >= 3), the readiness protocol of s6's `notification-fd` |
//! | `--touch PATH` | once ready, create or truncate PATH; repeatable |
//! | `--pidfile PATH` | at start, write own pid to PATH |
//! | `--exit-after MS` | exit this long after process start (code from `--exit-code`, default 0) |
//! | `--crash-after MS` | same, but the default exit code is 1 |
//! | `--exit-code N` | exit code for `--exit-after` / `--crash-after` (0..=255) |
//! | `--fail-times N` | with `--state-file PATH`: bump the counter in PATH at each start and exit 1 at once while it is <= N |
//! | `--state-file PATH` | counter file for `--fail-times` (created if missing) |
//! | `--ignore-sigterm` | ignore SIGTERM, so a supervisor must escalate to SIGKILL (SIGINT still stops it) |
//! | `--stop-delay MS` | on SIGTERM/SIGINT, wait this long before exiting 0 |
//! | `--spawn-grandchild` | at start, spawn a copy of itself (`--name NAME-grandchild`, sleeps forever) in the same process group; prints `grandchild PID` |
//! | `--spawn-daemon` | at start, spawn a copy of itself (`--name NAME-daemon`) in a new process group with stdio on /dev/null; prints `daemon PID` |
//! | `--print-env VAR` | at start, print `VAR=value` or `VAR unset`; repeatable |
//! | `--stdout-lines N` | at start, print `line 1` .. `line N` to stdout |
//! | `--stderr-lines N` | at start, print `line 1` .. `line N` to stderr |
//! | `FIXTURE_ERROR_PERCENT` (env) | 0-100: that share of the HTTP requests to `/app` answers `500` (every request's turn counted, so 20 is exactly one in five); `/health` is never affected |
//! | `VERSION` (env) | every HTTP answer carries it in an `X-Fixture-Version` header; `GET /app` answers `200` with body `version VERSION` |
//! | `--marker TEXT` | ignored; lets tests find the process by its command line |
//! | `--help` | print the usage line to stdout and exit 0 |
//!
//! `--listen` and `--http` also accept port 0 and print the port they got as
//! `fixture NAME: listening on ADDR` / `fixture NAME: http on ADDR`.
//!
//! Without `--exit-after`/`--crash-after` the process runs until signalled.
//! SIGTERM and SIGINT print `fixture NAME: stopping` and exit 0 (after
//! `--stop-delay`).

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{self, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: gantry-fixture [--name NAME] [--delay MS] [--listen PORT]... \
[--http PORT]... [--http-status CODE] [--unready-file PATH] [--ready-line TEXT]... [--notify] \
[--notify-extend USEC] [--watchdog] [--watchdog-stop-after N] \
[--watchdog-trigger-after MS] [--ready-fd N] [--touch PATH]... \
[--pidfile PATH] [--exit-after MS] [--crash-after MS] [--exit-code N] \
[--fail-times N --state-file PATH] [--ignore-sigterm] [--stop-delay MS] \
[--spawn-grandchild] [--spawn-daemon] [--print-env VAR]... [--stdout-lines N] \
[--stderr-lines N] [--marker TEXT]";

/// Everything the command line asked for.
#[derive(Debug)]
struct Config {
    name: String,
    delay: Duration,
    listen: Vec<u16>,
    http: Vec<u16>,
    http_status: u16,
    unready_file: Option<PathBuf>,
    ready_lines: Vec<String>,
    notify: bool,
    notify_extend: Option<u64>,
    watchdog: bool,
    watchdog_stop_after: Option<u64>,
    watchdog_trigger_after: Option<Duration>,
    ready_fd: Option<u32>,
    touch: Vec<PathBuf>,
    pidfile: Option<PathBuf>,
    exit_after: Option<Duration>,
    crash_after: Option<Duration>,
    exit_code: Option<i32>,
    fail_times: Option<u64>,
    state_file: Option<PathBuf>,
    ignore_sigterm: bool,
    stop_delay: Duration,
    spawn_grandchild: bool,
    spawn_daemon: bool,
    print_env: Vec<OsString>,
    stdout_lines: u64,
    stderr_lines: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "fixture".to_owned(),
            delay: Duration::ZERO,
            listen: Vec::new(),
            http: Vec::new(),
            http_status: 200,
            unready_file: None,
            ready_lines: Vec::new(),
            notify: false,
            notify_extend: None,
            watchdog: false,
            watchdog_stop_after: None,
            watchdog_trigger_after: None,
            ready_fd: None,
            touch: Vec::new(),
            pidfile: None,
            exit_after: None,
            crash_after: None,
            exit_code: None,
            fail_times: None,
            state_file: None,
            ignore_sigterm: false,
            stop_delay: Duration::ZERO,
            spawn_grandchild: false,
            spawn_daemon: false,
            print_env: Vec::new(),
            stdout_lines: 0,
            stderr_lines: 0,
        }
    }
}

/// What parsing the command line led to.
enum Parsed {
    Run(Box<Config>),
    Help,
}

/// Writes one line to stdout and flushes; a closed stdout is not an error here.
fn emit_out(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{args}");
    let _ = out.flush();
}

/// Writes one line to stderr; a closed stderr is not an error here.
fn emit_err(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{args}");
    let _ = err.flush();
}

macro_rules! say {
    ($($arg:tt)*) => { $crate::emit_out(format_args!($($arg)*)) };
}

macro_rules! warn {
    ($($arg:tt)*) => { $crate::emit_err(format_args!($($arg)*)) };
}

mod http;
mod notify;

use http::{Health, accept_and_drop, bind, serve_http};
use notify::{sd_notify, sd_notify_ready, start_watchdog};

fn main() {
    let start = Instant::now();
    let cfg = match parse_args(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(cfg)) => cfg,
        Ok(Parsed::Help) => {
            say!("{USAGE}");
            process::exit(0);
        }
        Err(msg) => {
            warn!("gantry-fixture: {msg}");
            warn!("{USAGE}");
            process::exit(2);
        }
    };
    run(&cfg, start);
}

/// Takes the value of `flag`: the inline `--flag=VALUE` part, or the next argument.
fn take_value(
    flag: &str,
    inline: &mut Option<OsString>,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<OsString, String> {
    inline
        .take()
        .or_else(|| args.next())
        .ok_or_else(|| format!("{flag} needs a value"))
}

fn take_string(
    flag: &str,
    inline: &mut Option<OsString>,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<String, String> {
    take_value(flag, inline, args)?
        .into_string()
        .map_err(|v| format!("{flag}: value is not UTF-8: {v:?}"))
}

fn take_number<T: std::str::FromStr>(
    flag: &str,
    inline: &mut Option<OsString>,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<T, String> {
    let text = take_string(flag, inline, args)?;
    text.trim()
        .parse()
        .map_err(|_| format!("{flag}: not a valid number: {text:?}"))
}

fn take_ms(
    flag: &str,
    inline: &mut Option<OsString>,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<Duration, String> {
    take_number(flag, inline, args).map(Duration::from_millis)
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut cfg = Config::default();
    let mut args = args.into_iter();
    while let Some(raw) = args.next() {
        let Some(text) = raw.to_str() else {
            return Err(format!("argument is not UTF-8: {raw:?}"));
        };
        let (flag, mut inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(OsString::from(value)))
            }
            _ => (text.to_owned(), None),
        };
        let f = flag.as_str();
        let a = &mut args;
        let i = &mut inline;
        match f {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--name" => cfg.name = take_string(f, i, a)?,
            "--delay" => cfg.delay = take_ms(f, i, a)?,
            "--listen" => cfg.listen.push(take_number(f, i, a)?),
            "--http" => cfg.http.push(take_number(f, i, a)?),
            "--http-status" => {
                let code: u16 = take_number(f, i, a)?;
                if !(100..=999).contains(&code) {
                    return Err(format!("--http-status: {code} is not in 100..=999"));
                }
                cfg.http_status = code;
            }
            "--unready-file" => cfg.unready_file = Some(take_value(f, i, a)?.into()),
            "--ready-line" => cfg.ready_lines.push(take_string(f, i, a)?),
            "--notify" => cfg.notify = true,
            "--notify-extend" => cfg.notify_extend = Some(take_number(f, i, a)?),
            "--watchdog" => cfg.watchdog = true,
            "--watchdog-stop-after" => {
                cfg.watchdog = true;
                cfg.watchdog_stop_after = Some(take_number(f, i, a)?);
            }
            "--watchdog-trigger-after" => {
                cfg.watchdog = true;
                cfg.watchdog_trigger_after = Some(take_ms(f, i, a)?);
            }
            "--ready-fd" => {
                let fd: u32 = take_number(f, i, a)?;
                if fd < 3 {
                    return Err(format!(
                        "--ready-fd: {fd} is stdin, stdout or stderr; give the descriptor the supervisor opened (3 or more)"
                    ));
                }
                cfg.ready_fd = Some(fd);
            }
            "--touch" => cfg.touch.push(take_value(f, i, a)?.into()),
            "--pidfile" => cfg.pidfile = Some(take_value(f, i, a)?.into()),
            "--exit-after" => cfg.exit_after = Some(take_ms(f, i, a)?),
            "--crash-after" => cfg.crash_after = Some(take_ms(f, i, a)?),
            "--exit-code" => {
                let code: i32 = take_number(f, i, a)?;
                if !(0..=255).contains(&code) {
                    return Err(format!("--exit-code: {code} is not in 0..=255"));
                }
                cfg.exit_code = Some(code);
            }
            "--fail-times" => cfg.fail_times = Some(take_number(f, i, a)?),
            "--state-file" => cfg.state_file = Some(take_value(f, i, a)?.into()),
            "--ignore-sigterm" => cfg.ignore_sigterm = true,
            "--stop-delay" => cfg.stop_delay = take_ms(f, i, a)?,
            "--spawn-grandchild" => cfg.spawn_grandchild = true,
            "--spawn-daemon" => cfg.spawn_daemon = true,
            "--print-env" => cfg.print_env.push(take_value(f, i, a)?),
            "--stdout-lines" => cfg.stdout_lines = take_number(f, i, a)?,
            "--stderr-lines" => cfg.stderr_lines = take_number(f, i, a)?,
            "--marker" => {
                take_value(f, i, a)?;
            }
            _ => return Err(format!("unknown argument: {text}")),
        }
        if inline.is_some() {
            return Err(format!("{flag} takes no value"));
        }
    }
    if cfg.fail_times.is_some() && cfg.state_file.is_none() {
        return Err("--fail-times needs --state-file PATH".to_owned());
    }
    Ok(Parsed::Run(Box::new(cfg)))
}

/// Why a wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Wake {
    /// SIGTERM (unless ignored) or SIGINT arrived.
    Signal,
    /// The deadline passed.
    Deadline,
}

/// Blocks the main thread until a stop signal or a deadline.
///
/// The signal handlers (installed by `signal-hook`) write a byte into the other
/// end of `rx`, so waiting is a plain blocking read with a timeout.
struct Waiter {
    rx: Option<UnixStream>,
}

impl Waiter {
    fn install(name: &str, ignore_sigterm: bool) -> Waiter {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook::low_level::pipe;

        let rx = (|| -> io::Result<UnixStream> {
            let (rx, tx) = UnixStream::pair()?;
            pipe::register(SIGINT, tx.try_clone()?)?;
            if ignore_sigterm {
                // A handler that only sets a flag nobody reads: SIGTERM is caught
                // and has no effect.
                signal_hook::flag::register(SIGTERM, Arc::new(AtomicBool::new(false)))?;
            } else {
                pipe::register(SIGTERM, tx)?;
            }
            Ok(rx)
        })();
        match rx {
            Ok(rx) => Waiter { rx: Some(rx) },
            Err(e) => {
                warn!("fixture {name}: warning: cannot install signal handlers: {e}");
                Waiter { rx: None }
            }
        }
    }

    /// Waits until a stop signal arrives or `deadline` passes (`None`: forever).
    fn wait_until(&mut self, deadline: Option<Instant>) -> Wake {
        loop {
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Wake::Deadline;
                    }
                    Some(d - now)
                }
            };
            let Some(rx) = self.rx.as_mut() else {
                park(timeout);
                continue;
            };
            // A socket read timeout is rounded up to the kernel's tick (4 ms at HZ=250)
            // and its wake-up can come late on a busy machine, which made `--delay 50`
            // take ~55 ms. Wait out the last 10 ms with a precise park instead (a
            // margin of 5 ms was too small: one tick plus a late wake-up overshot it);
            // a signal that arrives then stays queued in the pipe for the next wait.
            let timeout = match (timeout, deadline) {
                (Some(t), Some(d)) if t <= Duration::from_millis(12) => {
                    park_until(d);
                    return Wake::Deadline;
                }
                (Some(t), _) => Some(t - Duration::from_millis(10)),
                (None, _) => None,
            };
            if rx.set_read_timeout(timeout).is_err() {
                park(timeout);
                continue;
            }
            let mut buf = [0u8; 16];
            match rx.read(&mut buf) {
                Ok(n) if n > 0 => return Wake::Signal,
                Ok(_) => {
                    // The write end can't close (the handlers keep it), but never spin.
                    self.rx = None;
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::Interrupted
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut => {}
                    _ => self.rx = None,
                },
            }
        }
    }
}

/// Parks the current thread for `timeout` (`None`: until unparked, i.e. forever).
fn park(timeout: Option<Duration>) {
    match timeout {
        Some(t) => thread::park_timeout(t),
        None => thread::park(),
    }
}

/// Parks until `deadline`, whatever wakes the thread in between.
fn park_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        thread::park_timeout(deadline - now);
    }
}

fn run(cfg: &Config, start: Instant) {
    let name = cfg.name.as_str();
    let pid = process::id();
    let mut waiter = Waiter::install(name, cfg.ignore_sigterm);

    if let Some(path) = &cfg.pidfile {
        write_pidfile(name, path, pid);
    }

    say!("fixture {name} started pid {pid}");

    if let Some(usec) = cfg.notify_extend {
        sd_notify(
            name,
            "--notify-extend",
            &format!("EXTEND_TIMEOUT_USEC={usec}\n"),
        );
    }

    if let (Some(limit), Some(path)) = (cfg.fail_times, &cfg.state_file) {
        let count = bump_counter(name, path);
        if count <= limit {
            warn!("fixture {name}: failing on purpose (start {count} of {limit})");
            process::exit(1);
        }
    }

    for var in &cfg.print_env {
        let shown = var.to_string_lossy();
        match std::env::var_os(var) {
            Some(value) => say!("{shown}={}", value.to_string_lossy()),
            None => say!("{shown} unset"),
        }
    }
    print_numbered(io::stdout().lock(), cfg.stdout_lines);
    print_numbered(io::stderr().lock(), cfg.stderr_lines);

    if cfg.spawn_grandchild {
        let child_pid = spawn_copy(name, "grandchild", false);
        say!("grandchild {child_pid}");
    }
    if cfg.spawn_daemon {
        let child_pid = spawn_copy(name, "daemon", true);
        say!("daemon {child_pid}");
    }

    // --exit-after and --crash-after: whichever comes first wins.
    let timed_exit = [
        cfg.exit_after.map(|d| (d, 0)),
        cfg.crash_after.map(|d| (d, 1)),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|&(d, _)| d)
    .map(|(d, default_code)| (start + d, cfg.exit_code.unwrap_or(default_code)));
    let exit_deadline = timed_exit.map(|(at, _)| at);

    let ready_at = start + cfg.delay;
    let first = exit_deadline.map_or(ready_at, |at| at.min(ready_at));
    match waiter.wait_until(Some(first)) {
        Wake::Signal => stop(cfg),
        Wake::Deadline => {
            // Become ready first when the ready time is not later than the exit time.
            if let Some((_, code)) = timed_exit.filter(|&(at, _)| at < ready_at) {
                exit_now(name, code);
            }
        }
    }

    become_ready(cfg);

    match waiter.wait_until(exit_deadline) {
        Wake::Signal => stop(cfg),
        Wake::Deadline => {
            let code = timed_exit.map_or(0, |(_, code)| code);
            exit_now(name, code);
        }
    }
}

/// Binds listeners, starts the servers, notifies and prints the ready lines.
fn become_ready(cfg: &Config) {
    let name = cfg.name.as_str();

    let mut tcp = Vec::with_capacity(cfg.listen.len());
    for &port in &cfg.listen {
        let listener = bind(name, port);
        if let Ok(addr) = listener.local_addr() {
            say!("fixture {name}: listening on {addr}");
        }
        tcp.push(listener);
    }
    let mut http = Vec::with_capacity(cfg.http.len());
    for &port in &cfg.http {
        let listener = bind(name, port);
        if let Ok(addr) = listener.local_addr() {
            say!("fixture {name}: http on {addr}");
        }
        http.push(listener);
    }
    for listener in tcp {
        thread::spawn(move || accept_and_drop(listener));
    }
    for listener in http {
        let health = Health {
            status: cfg.http_status,
            unready_file: cfg.unready_file.clone().map(Arc::new),
        };
        thread::spawn(move || serve_http(listener, health));
    }

    if cfg.notify {
        sd_notify_ready(name);
    }
    if cfg.watchdog {
        start_watchdog(cfg);
    }
    if let Some(fd) = cfg.ready_fd {
        notify_fd(name, fd);
    }

    for line in &cfg.ready_lines {
        say!("{line}");
    }
    say!("fixture {name} ready");

    for path in &cfg.touch {
        if let Err(e) = fs::File::create(path) {
            warn!(
                "fixture {name}: warning: cannot touch {}: {e}",
                path.display()
            );
        }
    }
}

/// Handles SIGTERM/SIGINT: prints, waits `--stop-delay`, exits 0.
fn stop(cfg: &Config) -> ! {
    say!("fixture {}: stopping", cfg.name);
    if !cfg.stop_delay.is_zero() {
        park_until(Instant::now() + cfg.stop_delay);
    }
    process::exit(0);
}

fn exit_now(name: &str, code: i32) -> ! {
    say!("fixture {name}: exiting with code {code}");
    process::exit(code);
}

fn write_pidfile(name: &str, path: &std::path::Path, pid: u32) {
    if let Err(e) = fs::write(path, format!("{pid}\n")) {
        warn!(
            "fixture {name}: cannot write pidfile {}: {e}",
            path.display()
        );
        process::exit(1);
    }
}

/// Increments the counter stored in `path` (missing or empty: 0) and returns it.
fn bump_counter(name: &str, path: &std::path::Path) -> u64 {
    let old = match fs::read_to_string(path) {
        Ok(text) => text.trim().parse::<u64>().unwrap_or_else(|_| {
            if !text.trim().is_empty() {
                warn!(
                    "fixture {name}: warning: state file {} does not hold a number; counting from 0",
                    path.display()
                );
            }
            0
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => {
            warn!(
                "fixture {name}: cannot read state file {}: {e}",
                path.display()
            );
            process::exit(1);
        }
    };
    let count = old.saturating_add(1);
    if let Err(e) = fs::write(path, format!("{count}\n")) {
        warn!(
            "fixture {name}: cannot write state file {}: {e}",
            path.display()
        );
        process::exit(1);
    }
    count
}

fn print_numbered(out: impl Write, count: u64) {
    if count == 0 {
        return;
    }
    let mut out = BufWriter::new(out);
    for k in 1..=count {
        if writeln!(out, "line {k}").is_err() {
            return;
        }
    }
    let _ = out.flush();
}

/// Spawns a copy of this binary that only sleeps; returns its pid.
fn spawn_copy(name: &str, role: &str, new_group: bool) -> u32 {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            warn!("fixture {name}: cannot find own executable: {e}");
            process::exit(1);
        }
    };
    let mut cmd = Command::new(exe);
    cmd.arg("--name")
        .arg(format!("{name}-{role}"))
        .stdin(Stdio::null());
    if new_group {
        // setsid() is not in stable std; a new process group escapes the
        // supervisor's group kill all the same. A daemon keeps no stdio either.
        cmd.process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    match cmd.spawn() {
        // The Child handle is dropped on purpose: nobody waits for it.
        Ok(child) => child.id(),
        Err(e) => {
            warn!("fixture {name}: cannot spawn {role}: {e}");
            process::exit(1);
        }
    }
}

/// s6-style readiness: a newline on the descriptor the supervisor handed over. It is
/// reopened through /proc, so a descriptor that is not open is a warning, not a
/// process that writes to (or closes) a number it does not own.
fn notify_fd(name: &str, fd: u32) {
    let path = format!("/proc/self/fd/{fd}");
    match fs::OpenOptions::new().write(true).open(&path) {
        Ok(mut f) => {
            if let Err(e) = f.write_all(b"\n") {
                warn!("fixture {name}: warning: --ready-fd {fd}: {e}");
            }
        }
        Err(e) => warn!("fixture {name}: warning: --ready-fd {fd} is not open: {e}"),
    }
}

//! Orphan-proofing test of `nsinit`: SIGKILL the supervisor, then no service process may survive.
//!
//! `become_namespace_init` must run in a single-threaded process, which the libtest harness
//! is not, so this is a `harness = false` target that re-executes itself in roles chosen
//! by the `GANTRY_ORPHANS_MODE` environment variable:
//! - (unset) **top**: the test driver. For each case it starts a supervisor, waits until the
//!   service tree is up, kills something, and polls /proc until no process carrying the
//!   case's marker in its argv is left (deadline 5 s).
//! - `supervisor`: calls `become_namespace_init()` first thing, starts tokio and a Reaper,
//!   spawns `sh -c` as a service that starts a background grandchild and a `setsid`
//!   daemon, then waits for SIGTERM (exits 42 on it).
//! - `sleeper`: a marked process that blocks forever (grandchild / daemon role).
//!
//! Prints `orphans: N passed, M failed[, K skipped]` and exits non-zero on failure.
//!
//! A case that cannot run here (no PID namespace, or not root for the user-namespace
//! case) FAILS, naming the reason: a machine without namespace rights must not look like
//! a pass. Set `GANTRY_TEST_NO_NAMESPACES=1` on a machine known not to allow them (some
//! containers and CI sandboxes); those cases are then reported as skipped.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gantry_runtime::nsinit::{self, NsMode};
use gantry_runtime::process::{SpawnSpec, spawn};
use gantry_runtime::reaper::Reaper;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const MODE: &str = "GANTRY_ORPHANS_MODE";
const MARKER: &str = "GANTRY_ORPHANS_MARKER";
/// Set for the control case: run the supervisor without a namespace.
const NO_NAMESPACE: &str = "GANTRY_ORPHANS_NO_NAMESPACE";
/// Says the machine cannot create namespaces: cases that need them are skipped, not failed.
const NO_NAMESPACES_OK: &str = "GANTRY_TEST_NO_NAMESPACES";
const DEADLINE: Duration = Duration::from_secs(5);
/// Exit code of a supervisor that found no namespace support (case is skipped).
const EXIT_UNAVAILABLE: i32 = 3;
/// Exit code of a supervisor that got SIGTERM.
const EXIT_ON_TERM: i32 = 42;

fn main() {
    match std::env::var(MODE).as_deref() {
        Ok("supervisor") => supervisor(),
        Ok("sleeper") => loop {
            nix::unistd::pause();
        },
        _ => top(),
    }
}

// ---------------------------------------------------------------- supervisor role

fn supervisor() -> ! {
    if std::env::var_os(NO_NAMESPACE).is_some() {
        // Control case: the un-namespaced fallback, which cannot survive SIGKILL.
        if let Err(e) = nsinit::subreaper_fallback() {
            eprintln!("orphans: supervisor: {e}");
            std::process::exit(1);
        }
    } else {
        // Must be the very first thing: still single-threaded.
        match nsinit::become_namespace_init() {
            NsMode::Init => {}
            NsMode::Unavailable(reason) => {
                eprintln!("orphans: supervisor: no PID namespace: {reason}");
                std::process::exit(EXIT_UNAVAILABLE);
            }
        }
    }
    let code = match supervise() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("orphans: supervisor failed: {e}");
            1
        }
    };
    std::process::exit(code)
}

fn supervise() -> Result<i32, String> {
    let marker = std::env::var(MARKER).map_err(|e| format!("{MARKER}: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    rt.block_on(async move {
        // PID 1 of a namespace ignores signals it has no handler for: install first.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("SIGTERM handler: {e}"))?;
        let reaper = Reaper::start().map_err(|e| e.to_string())?;
        if std::env::var_os(NO_NAMESPACE).is_none() && std::process::id() != 1 {
            return Err(format!("expected to be pid 1, am {}", std::process::id()));
        }
        let script = format!(r#""$EXE" {marker}-gc & setsid "$EXE" {marker}-daemon & wait"#);
        let spec = SpawnSpec {
            program: "sh".into(),
            args: vec!["-c".into(), script, format!("{marker}-svc")],
            env: vec![
                ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
                ("EXE".into(), exe.display().to_string()),
                (MODE.into(), "sleeper".into()),
            ]
            .into(),
            ..Default::default()
        };
        let svc = spawn(&spec, &reaper).map_err(|e| e.to_string())?;
        tokio::select! {
            _ = term.recv() => Ok(EXIT_ON_TERM),
            st = svc.exit => Err(format!("service exited early: {st:?}")),
        }
    })
}

// ---------------------------------------------------------------- top role

#[derive(Clone, Copy, Debug)]
enum Kill {
    /// SIGKILL the outer stub.
    Stub,
    /// SIGKILL the inner namespace init.
    Init,
    /// SIGTERM the stub: forwarded to the init, which exits 42.
    TermStub,
}

struct Case {
    name: &'static str,
    kill: Kill,
    /// Run the supervisor as this uid/gid (exercises the user-namespace path).
    as_user: Option<u32>,
    /// Control case: no namespace, so survivors are *expected*; proves the test can see
    /// orphans at all.
    control: bool,
}

enum Outcome {
    Passed,
    Skipped(String),
    Failed(String),
}

fn top() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("orphans: cannot build tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let cases = [
        Case {
            name: "sigkill-stub",
            kill: Kill::Stub,
            as_user: None,
            control: false,
        },
        Case {
            name: "sigkill-init",
            kill: Kill::Init,
            as_user: None,
            control: false,
        },
        Case {
            name: "sigterm-forwarded",
            kill: Kill::TermStub,
            as_user: None,
            control: false,
        },
        Case {
            name: "sigkill-stub-userns",
            kill: Kill::Stub,
            as_user: Some(65534),
            control: false,
        },
        Case {
            name: "control-no-namespace-leaks",
            kill: Kill::Stub,
            as_user: None,
            control: true,
        },
    ];
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let may_skip = std::env::var(NO_NAMESPACES_OK).is_ok_and(|v| v == "1");
    for case in &cases {
        let outcome = match rt.block_on(run_case(case)) {
            Outcome::Skipped(why) if !may_skip => Outcome::Failed(format!(
                "cannot run: {why} (set {NO_NAMESPACES_OK}=1 only on a machine that cannot \
                 create namespaces, to report this case as skipped)"
            )),
            other => other,
        };
        match outcome {
            Outcome::Passed => {
                passed += 1;
                println!("orphans: {} ... ok", case.name);
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                println!("orphans: {} ... skipped ({why})", case.name);
            }
            Outcome::Failed(why) => {
                failed += 1;
                println!("orphans: {} ... FAILED: {why}", case.name);
            }
        }
    }
    if skipped > 0 {
        println!("orphans: {passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("orphans: {passed} passed, {failed} failed");
    }
    std::process::exit(if failed > 0 { 1 } else { 0 });
}

async fn run_case(case: &Case) -> Outcome {
    let marker = format!("gantry-orphans-{}-{}", std::process::id(), case.name);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Outcome::Failed(format!("current_exe: {e}")),
    };
    let mut cmd = Command::new(exe);
    cmd.arg(format!("{marker}-sup"))
        .env(MODE, "supervisor")
        .env(MARKER, &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if case.control {
        cmd.env(NO_NAMESPACE, "1");
    }
    if let Some(id) = case.as_user {
        if !nix::unistd::geteuid().is_root() {
            return Outcome::Skipped("needs root to switch to an unprivileged uid".into());
        }
        // Supplementary groups stay (clearing them is unstable in std); without
        // capabilities they grant no namespace privileges.
        cmd.uid(id).gid(id);
    }
    let mut stub = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot start supervisor: {e}")),
    };
    let outcome = exercise(case, &marker, &mut stub).await;
    // Whatever happened, leave nothing behind.
    let _ = stub.kill();
    let _ = stub.wait();
    for pid in marked(&marker) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    outcome
}

async fn exercise(case: &Case, marker: &str, stub: &mut Child) -> Outcome {
    let stub_pid = stub.id();
    // 1. Wait for the whole tree: service, grandchild, and a daemon that has really left
    //    the service's session (else the test proves less). Polled, because `setsid(1)`
    //    shows the marker in its argv before it has called setsid() and exec'd.
    let up = poll(|| {
        if let Ok(Some(st)) = stub.try_wait() {
            return Some(Err(st));
        }
        let all = marked(marker);
        let has = |role: &str| {
            all.iter()
                .any(|&p| cmdline_has(p, &format!("{marker}-{role}")))
        };
        let daemon_detached = all
            .iter()
            .any(|&p| cmdline_has(p, &format!("{marker}-daemon")) && session_of(p) == Some(p));
        (has("svc") && has("gc") && daemon_detached).then_some(Ok(()))
    })
    .await;
    match up {
        None => {
            return Outcome::Failed(
                "service tree (service, grandchild, setsid daemon) did not come up within 5 s"
                    .into(),
            );
        }
        Some(Err(st)) if st.code() == Some(EXIT_UNAVAILABLE) => {
            return Outcome::Skipped("no PID namespace available here".into());
        }
        Some(Err(st)) => return Outcome::Failed(format!("supervisor exited early: {st}")),
        Some(Ok(())) => {}
    }

    // 2. Kill.
    let (target, sig, expect) = match case.kill {
        Kill::Stub => (stub_pid, Signal::SIGKILL, Expect::Signal(9)),
        Kill::TermStub => (stub_pid, Signal::SIGTERM, Expect::Code(EXIT_ON_TERM)),
        Kill::Init => match init_of(stub_pid) {
            Some(p) => (p, Signal::SIGKILL, Expect::Code(128 + 9)),
            None => return Outcome::Failed(format!("no child found under stub {stub_pid}")),
        },
    };
    if let Err(e) = kill(Pid::from_raw(target as i32), sig) {
        return Outcome::Failed(format!("kill({target}, {sig}): {e}"));
    }

    // 3. The stub ends with the expected status...
    let status = poll(|| stub.try_wait().ok().flatten()).await;
    let Some(status) = status else {
        return Outcome::Failed("stub did not exit within 5 s".into());
    };
    let as_expected = match expect {
        Expect::Signal(s) => status.signal() == Some(s),
        Expect::Code(c) => status.code() == Some(c),
    };
    if !as_expected {
        return Outcome::Failed(format!("stub ended with {status}, expected {expect:?}"));
    }
    // 4. ...and nothing marked survives.
    if case.control {
        // Without a namespace the SIGKILLed supervisor's tree lives on.
        let survivors = marked(marker);
        return if survivors.is_empty() {
            Outcome::Failed("control: expected survivors without a namespace, saw none".into())
        } else {
            Outcome::Passed
        };
    }
    let gone = poll(|| marked(marker).is_empty().then_some(())).await;
    if gone.is_none() {
        let survivors: Vec<String> = marked(marker)
            .into_iter()
            .map(|p| format!("{p} ({})", cmdline(p).unwrap_or_default()))
            .collect();
        return Outcome::Failed(format!("survivors after 5 s: {}", survivors.join(", ")));
    }
    Outcome::Passed
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Signal(i32),
    Code(i32),
}

/// Poll `f` every 10 ms until it yields `Some`, or give up after [`DEADLINE`].
async fn poll<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Host pids of processes whose argv contains `marker` (not counting zombies, which have
/// an empty cmdline; they are dead, only not reaped yet).
fn marked(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != me && cmdline_has(p, marker))
        .collect()
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .replace('\0', " ")
            .trim()
            .to_string(),
    )
}

fn cmdline_has(pid: u32, needle: &str) -> bool {
    cmdline(pid).is_some_and(|c| c.contains(needle))
}

/// The stub's child (the namespace init), in host pids, via /proc/<stub>/task/*/children.
fn init_of(stub: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{stub}/task")).ok()?;
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .next()
}

/// Session id (field 6 of /proc/<pid>/stat; the command name may contain spaces).
fn session_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(3)?.parse().ok()
}

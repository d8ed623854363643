//! Spawning services: cheap launches (a small descriptor table, or `posix_spawn`), async line streams, process-group signals.
//!
//! Spawn cost (notes §B): Rust's std `Command` uses `posix_spawn` (glibc: `clone(CLONE_VM |
//! CLONE_VFORK)`, no page-table copy) unless a `pre_exec` closure, `uid`/`gid`/`groups`/
//! `chroot`, or an `env("PATH")` with a bare program name forces fork+exec, which costs
//! milliseconds in a large parent and grows with its RSS. So [`spawn`]:
//! - resolves the program to an absolute path itself (searching the service's PATH);
//! - uses only `env_clear`, `envs`, `current_dir`, `process_group(0)` and stdio setup, all of
//!   which stay on the `posix_spawn` path;
//! - never uses `pre_exec`, except for a service with `memory_max` or `cpu_max`: its child
//!   joins its cgroup (or sets its rlimit) before exec, which takes the fork path for that
//!   service only (see [`crate::resource`] for why). Other per-child setup that needs code
//!   in the child (PDEATHSIG, credentials) belongs in an exec'd shim, not here. The one shim
//!   so far: a service with a watchdog gets `WATCHDOG_PID`, its own pid, which only the
//!   child knows; `/bin/sh` sets it from `$$` and execs the program in the same process
//!   ([`WATCHDOG_SHIM`]), at the cost of one more exec for those services only.
//!
//! - starts the child with [`crate::launch`] where it can: like `posix_spawn`, but the child
//!   gets a table of its three stdio descriptors instead of a copy of gantry's whole table,
//!   which at 1,000 services (two pipes each) cost more than the rest of the spawn. The
//!   child also gets no descriptor gantry holds without close-on-exec. `posix_spawn` remains
//!   the fallback (kernels before 5.9) and the path of a service with limits.
//!
//! Measured on the 2-vCPU dev VM (test `spawn_latency_report`: 200 sequential spawns of
//! `/bin/true`, with path resolution, pipes and tokio registration included): `spawn()`
//! blocks the caller for a median of 110–150 µs (p90 ≈ 0.6 ms) when the machine is quiet;
//! a full spawn → exit → reaped cycle takes ≈ 0.6 ms, most of it glibc start-up of the
//! child in this VM (notes §B). With other builds loading both cores, medians of ~0.5 ms
//! and p90s of several ms were seen.
//!
//! Each service is the leader of its own process group (pgid = pid), so [`signal_group`]
//! reaches its helpers too. A daemon that calls `setsid()` leaves the group; only the PID
//! namespace (see [`crate::nsinit`]) or a cgroup catches those.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{AccessFlags, Pid, access};
use tokio::net::unix::pipe;

use crate::reaper::{ExitWatch, Reaper};

/// Longest line a [`LineStream`] yields; longer lines are split into chunks of at most this
/// many bytes, so a service printing megabytes without a newline cannot exhaust memory.
pub const MAX_LINE: usize = 64 * 1024;

/// PATH used when neither the service environment nor gantry's own has one.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to run. The child gets exactly `env` (plus `NOTIFY_SOCKET` when `notify_socket` is
/// set), nothing inherited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnSpec {
    /// Program name or path; bare names are looked up in PATH (the spec's, then gantry's).
    pub program: String,
    /// Arguments after `argv[0]` (`argv[0]` is `program` as written).
    pub args: Vec<String>,
    /// The full environment of the child.
    pub env: crate::envset::Env,
    /// Working directory; gantry's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Value for `NOTIFY_SOCKET`, from [`crate::notify::NotifySocket::env_value`].
    pub notify_socket: Option<String>,
    /// A watchdog interval: the child gets `WATCHDOG_USEC` and `WATCHDOG_PID` (its pid,
    /// set through [`WATCHDOG_SHIM`]; left out when there is no `/bin/sh`, which
    /// `sd_watchdog_enabled()` accepts).
    pub watchdog: Option<std::time::Duration>,
    /// The groups to join and the rlimit to set in the child before exec, from
    /// [`crate::resource::Limiter::prepare`].
    pub confine: Option<crate::resource::Confine>,
}

/// The shell that sets `WATCHDOG_PID`.
const SHELL: &str = "/bin/sh";

/// `sh -c WATCHDOG_SHIM PROGRAM ARGS...`: `$$` is the shell's pid, and `exec` runs the
/// program in that same process, so `WATCHDOG_PID` is the service's own pid (what
/// systemd's `sd_watchdog_enabled()` compares with `getpid()`). The program's `argv[0]`
/// becomes its resolved path.
pub const WATCHDOG_SHIM: &str = "WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$0\" \"$@\"";

/// A running service.
#[derive(Debug)]
pub struct Spawned {
    /// Pid as seen by gantry (a namespace pid when gantry is a namespace init). It is also
    /// the service's process-group id.
    pub pid: u32,
    /// Lines the service writes to stdout.
    pub stdout: LineStream,
    /// Lines the service writes to stderr.
    pub stderr: LineStream,
    /// Resolves when the service exits, registered with the reaper before `spawn` returned.
    /// Do not call [`Reaper::watch`] again for this pid: the status goes to this watch.
    pub exit: ExitWatch,
}

/// Why a service could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("spawn: empty program name")]
    EmptyProgram,
    #[error("command not found: {program} (searched PATH={searched})")]
    NotFound { program: String, searched: String },
    #[error("not executable: {}", path.display())]
    NotExecutable { path: PathBuf },
    #[error("spawn {program}: working directory {} is not usable: {reason}", cwd.display())]
    BadCwd {
        program: String,
        cwd: PathBuf,
        reason: String,
    },
    #[error("spawn {program}: must be called inside a tokio runtime")]
    NoRuntime { program: String },
    #[error("spawn {} failed: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spawn {program} (pid {pid}): cannot set up the {stream} pipe: {source}")]
    Pipe {
        program: String,
        pid: u32,
        stream: StreamKind,
        #[source]
        source: std::io::Error,
    },
}

/// Which output stream a line came from: the log-line format's stream (its tag `out`/`err`
/// is what the log files carry).
pub use gantry_state::logfmt::Stream as StreamKind;

/// A read error on a service's output pipe.
#[derive(Debug, thiserror::Error)]
#[error("reading {stream} of pid {pid}: {source}")]
pub struct StreamError {
    pub pid: u32,
    pub stream: StreamKind,
    #[source]
    pub source: std::io::Error,
}

/// Why a signal could not be sent. A target that no longer exists is not an error.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("refusing to signal {what} {id}: not a valid target")]
    InvalidTarget { what: &'static str, id: u32 },
    #[error("sending {signal} to {what} {id}: {errno}")]
    Failed {
        what: &'static str,
        id: u32,
        signal: Signal,
        errno: Errno,
    },
}

/// Start a service (see the module docs for why it is built this way).
///
/// The call blocks its thread until the child has exec'd (that is how `posix_spawn` works):
/// a median of 110–150 µs here (see the module docs).
pub fn spawn(spec: &SpawnSpec, reaper: &Reaper) -> Result<Spawned, SpawnError> {
    let SpawnedFds {
        pid,
        stdout,
        stderr,
        exit,
    } = spawn_fds(spec, reaper)?;
    let make = |fd: OwnedFd, stream: StreamKind| -> Result<LineStream, SpawnError> {
        let rx = pipe::Receiver::from_owned_fd(fd).map_err(|source| SpawnError::Pipe {
            program: spec.program.clone(),
            pid,
            stream,
            source,
        })?;
        Ok(LineStream::new(rx, pid, stream))
    };
    let streams =
        make(stdout, StreamKind::Out).and_then(|o| Ok((o, make(stderr, StreamKind::Err)?)));
    match streams {
        Ok((stdout, stderr)) => Ok(Spawned {
            pid,
            stdout,
            stderr,
            exit,
        }),
        Err(e) => {
            // Without its pipes the service is unusable; do not leave it running.
            let _ = signal_group(pid, Signal::SIGKILL);
            Err(e)
        }
    }
}

/// A started service whose output pipes are left to the caller as plain descriptors (the
/// driver reads every service's pipes from one epoll set, driver/output.rs).
#[derive(Debug)]
pub struct SpawnedFds {
    /// As [`Spawned::pid`].
    pub pid: u32,
    /// The read ends of the service's stdout and stderr pipes (close-on-exec, blocking).
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// As [`Spawned::exit`].
    pub exit: ExitWatch,
}

/// [`spawn`] without the async line streams.
pub fn spawn_fds(spec: &SpawnSpec, reaper: &Reaper) -> Result<SpawnedFds, SpawnError> {
    if spec.program.is_empty() {
        return Err(SpawnError::EmptyProgram);
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(SpawnError::NoRuntime {
            program: spec.program.clone(),
        });
    }
    let cwd = match &spec.cwd {
        Some(dir) => {
            let abs = absolutize(dir);
            match std::fs::metadata(&abs) {
                Ok(m) if m.is_dir() => Some(abs),
                Ok(_) => {
                    return Err(SpawnError::BadCwd {
                        program: spec.program.clone(),
                        cwd: dir.clone(),
                        reason: "not a directory".into(),
                    });
                }
                Err(e) => {
                    return Err(SpawnError::BadCwd {
                        program: spec.program.clone(),
                        cwd: dir.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        None => None,
    };
    let path = resolve_program(&spec.program, &spec.env, cwd.as_deref())?;

    let shim = spec.watchdog.is_some() && Path::new(SHELL).exists();
    // Taken before the spawn: any status parked with a lower counter belongs to an earlier
    // process that had the same pid number, not to this child.
    let seq = reaper.reap_seq();
    let (pid, out, err) = if spec.confine.is_none() {
        match spawn_small_table(spec, &path, shim, cwd.as_deref())? {
            Some(started) => started,
            None => spawn_std(spec, &path, shim, cwd.as_deref())?,
        }
    } else {
        spawn_std(spec, &path, shim, cwd.as_deref())?
    };
    let exit = reaper.watch_since(pid, seq);
    Ok(SpawnedFds {
        pid,
        stdout: out,
        stderr: err,
        exit,
    })
}

/// The program's argv (argv[0] first) and its environment, as the child gets them.
fn child_argv_env(
    spec: &SpawnSpec,
    path: &Path,
    shim: bool,
) -> (Vec<OsString>, Vec<(OsString, OsString)>) {
    let mut argv: Vec<OsString> = Vec::with_capacity(spec.args.len() + 4);
    if shim {
        argv.extend([SHELL.into(), "-c".into(), WATCHDOG_SHIM.into(), path.into()]);
    } else {
        argv.push(spec.program.clone().into());
    }
    argv.extend(spec.args.iter().map(OsString::from));
    let mut extra: Vec<(OsString, OsString)> = Vec::new();
    if let Some(sock) = &spec.notify_socket {
        extra.push(("NOTIFY_SOCKET".into(), sock.into()));
    }
    if let Some(interval) = spec.watchdog {
        extra.push((
            "WATCHDOG_USEC".into(),
            interval.as_micros().max(1).to_string().into(),
        ));
    }
    let mut env: Vec<(OsString, OsString)> = spec
        .env
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    env.extend(extra);
    (argv, env)
}

/// The spawn with a small descriptor table ([`crate::launch`]): `None` where this kernel
/// cannot do it (the caller uses `posix_spawn`).
fn spawn_small_table(
    spec: &SpawnSpec,
    path: &Path,
    shim: bool,
    cwd: Option<&Path>,
) -> Result<Option<(u32, OwnedFd, OwnedFd)>, SpawnError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let failed = |source: std::io::Error| SpawnError::Spawn {
        path: path.to_path_buf(),
        source,
    };
    let c = |b: &[u8]| {
        CString::new(b).map_err(|_| {
            failed(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "nul byte found in provided data",
            ))
        })
    };
    let (argv, env) = child_argv_env(spec, path, shim);
    let exe = c(if shim {
        SHELL.as_bytes()
    } else {
        path.as_os_str().as_bytes()
    })?;
    let argv = argv
        .iter()
        .map(|a| c(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = env
        .iter()
        .map(|(k, v)| {
            let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
            kv.extend_from_slice(k.as_bytes());
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            c(&kv)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = cwd.map(|d| c(d.as_os_str().as_bytes())).transpose()?;
    let (out_r, out_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| failed(e.into()))?;
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| failed(e.into()))?;
    let program = crate::launch::Program {
        path: &exe,
        argv: &argv,
        envp: &envp,
        cwd: cwd.as_deref(),
    };
    use std::os::fd::AsFd;
    match crate::launch::launch(&program, out_w.as_fd(), err_w.as_fd()).map_err(failed)? {
        crate::launch::Launched::Started(pid) => Ok(Some((pid, out_r, err_r))),
        crate::launch::Launched::Unsupported => Ok(None),
    }
}

/// The spawn through std's `Command` (`posix_spawn`, or fork + exec for a child that must
/// join its limits first).
fn spawn_std(
    spec: &SpawnSpec,
    path: &Path,
    shim: bool,
    cwd: Option<&Path>,
) -> Result<(u32, OwnedFd, OwnedFd), SpawnError> {
    let (argv, env) = child_argv_env(spec, path, shim);
    let mut cmd = Command::new(if shim { Path::new(SHELL) } else { path });
    cmd.arg0(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(env)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(confine) = &spec.confine {
        let setup = confine.child_setup();
        // SAFETY: the closure runs in the forked child and only calls write(2) and
        // setrlimit(2), both async-signal-safe; it allocates nothing.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(setup);
        }
    }
    let mut child = cmd.spawn().map_err(|source| SpawnError::Spawn {
        path: path.to_path_buf(),
        source,
    })?;
    let pid = child.id();
    // Dropping std's Child neither kills nor waits; the reaper owns the exit status.
    let out = child.stdout.take().map(OwnedFd::from);
    let err = child.stderr.take().map(OwnedFd::from);
    drop(child);
    match (out, err) {
        (Some(o), Some(e)) => Ok((pid, o, e)),
        _ => {
            let _ = signal_group(pid, Signal::SIGKILL);
            Err(SpawnError::Spawn {
                path: path.to_path_buf(),
                source: std::io::Error::other("pipe missing after spawn"),
            })
        }
    }
}

/// Drops the `.` components a join of relative paths collects (`././app.sh` →
/// `./app.sh`), keeping one leading `./` so a relative path still names a file and is
/// never searched for in PATH.
fn tidy(p: PathBuf) -> PathBuf {
    use std::path::Component;
    if !p.components().any(|c| c == Component::CurDir) {
        return p;
    }
    let rest: PathBuf = p.components().filter(|c| *c != Component::CurDir).collect();
    if rest.is_relative() {
        Path::new(".").join(rest)
    } else {
        rest
    }
}

fn absolutize(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cur) => cur.join(p),
            Err(_) => p.to_path_buf(),
        }
    }
}

/// Turn `program` into an absolute path the way `execvp` would, but in the parent, so the
/// spawn itself needs no PATH search (which would force the fork path).
///
/// Search order: the `PATH` in the service environment (the last one, as `envs` keeps the
/// last duplicate), then gantry's own `PATH`, then a default. Empty PATH entries are
/// skipped (the historical "empty means cwd" rule is a foot-gun); relative entries are
/// taken relative to the service's working directory, as `execvp` in the child would.
pub fn resolve_program(
    program: &str,
    env: &crate::envset::Env,
    cwd: Option<&Path>,
) -> Result<PathBuf, SpawnError> {
    if program.is_empty() {
        return Err(SpawnError::EmptyProgram);
    }
    let base = cwd
        .map(Path::to_path_buf)
        .unwrap_or_else(|| absolutize(Path::new(".")));
    if program.contains('/') {
        let path = tidy(base.join(program));
        return match check_executable(&path) {
            Candidate::Ok => Ok(path),
            Candidate::NotExecutable => Err(SpawnError::NotExecutable { path }),
            Candidate::Missing => Err(SpawnError::NotFound {
                program: program.to_string(),
                searched: format!("(not searched: {} does not exist)", path.display()),
            }),
        };
    }

    let mut paths: Vec<OsString> = Vec::new();
    if let Some(p) = env.get("PATH") {
        paths.push(p.into());
    }
    match std::env::var_os("PATH") {
        Some(p) => paths.push(p),
        None => paths.push(DEFAULT_PATH.into()),
    }
    let mut searched: Vec<PathBuf> = Vec::new();
    let mut not_executable: Option<PathBuf> = None;
    for list in &paths {
        for dir in std::env::split_paths(list) {
            if dir.as_os_str().is_empty() || searched.contains(&dir) {
                continue;
            }
            let candidate = base.join(&dir).join(program);
            searched.push(dir);
            match check_executable(&candidate) {
                Candidate::Ok => return Ok(candidate),
                // Like execvp: remember it, but a later executable match wins.
                Candidate::NotExecutable => {
                    not_executable.get_or_insert(candidate);
                }
                Candidate::Missing => {}
            }
        }
    }
    if let Some(path) = not_executable {
        return Err(SpawnError::NotExecutable { path });
    }
    let searched = std::env::join_paths(&searched)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Err(SpawnError::NotFound {
        program: program.to_string(),
        searched,
    })
}

enum Candidate {
    Ok,
    NotExecutable,
    Missing,
}

fn check_executable(path: &Path) -> Candidate {
    match std::fs::metadata(path) {
        Err(_) => Candidate::Missing,
        Ok(m) if !m.is_file() => Candidate::NotExecutable,
        // access(X_OK) applies the real permission rules (root needs one x bit, ACLs, noexec
        // mounts are caught later by exec itself).
        Ok(_) => match access(path, AccessFlags::X_OK) {
            Ok(()) => Candidate::Ok,
            Err(_) => Candidate::NotExecutable,
        },
    }
}

/// Send `sig` to every process in group `pgid` (a service's pid). A group that no longer
/// exists (ESRCH) is not an error. Groups 0 and 1 are refused: `killpg(0)` would hit
/// gantry's own group.
pub fn signal_group(pgid: u32, sig: Signal) -> Result<(), SignalError> {
    let raw = match i32::try_from(pgid) {
        Ok(raw) if raw > 1 => raw,
        _ => {
            return Err(SignalError::InvalidTarget {
                what: "process group",
                id: pgid,
            });
        }
    };
    match killpg(Pid::from_raw(raw), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(SignalError::Failed {
            what: "process group",
            id: pgid,
            signal: sig,
            errno,
        }),
    }
}

/// Send `sig` to one process. A process that no longer exists (ESRCH) is not an error.
/// Pid 0 (own group) and values that would turn negative (`kill(-1)` = everyone) are refused.
pub fn signal_pid(pid: u32, sig: Signal) -> Result<(), SignalError> {
    let raw = match i32::try_from(pid) {
        Ok(raw) if raw > 0 => raw,
        _ => {
            return Err(SignalError::InvalidTarget {
                what: "process",
                id: pid,
            });
        }
    };
    match kill(Pid::from_raw(raw), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(SignalError::Failed {
            what: "process",
            id: pid,
            signal: sig,
            errno,
        }),
    }
}

pub use crate::lines::{LineBuf, LineStream};

/// Grows the process's file-descriptor table to hold `fds` descriptors now.
///
/// The kernel grows the table by doubling when a new fd crosses the current size, and
/// with several threads sharing it that waits for the other CPUs: measured here as 5–32 ms
/// stalls of the event loop during a 50-service boot. Doing it once while the process is
/// still single-threaded (before tokio starts) avoids them.
pub fn pregrow_fd_table(fds: i32) {
    let target = fds.max(64);
    if let Ok(fd) = nix::fcntl::fcntl(std::io::stderr(), nix::fcntl::FcntlArg::F_DUPFD(target)) {
        let _ = nix::unistd::close(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_relative_paths_lose_their_extra_dots() {
        assert_eq!(tidy("././app.sh".into()), PathBuf::from("./app.sh"));
        assert_eq!(tidy("./bin/./app.sh".into()), PathBuf::from("./bin/app.sh"));
        assert_eq!(tidy("/srv/./app.sh".into()), PathBuf::from("/srv/app.sh"));
        assert_eq!(tidy("../app.sh".into()), PathBuf::from("../app.sh"));
        let resolved = resolve_program("./sh", &Default::default(), Some(Path::new("/bin/.")))
            .expect("/bin/sh");
        assert_eq!(resolved, PathBuf::from("/bin/sh"));
    }

    #[test]
    fn resolve_finds_sh_and_reports_missing() {
        let env =
            crate::envset::Env::from(vec![("PATH".to_string(), "/nonexistent:/bin".to_string())]);
        let p = resolve_program("sh", &env, None).expect("sh is in /bin");
        assert!(p.is_absolute());
        let err = resolve_program("definitely-not-a-command-xyz", &env, None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "command not found: definitely-not-a-command-xyz (searched PATH=/nonexistent:/bin"
            ),
            "{msg}"
        );
    }

    #[test]
    fn resolve_rejects_non_executable() {
        let err = resolve_program("/etc/passwd", &Default::default(), None).unwrap_err();
        assert!(matches!(err, SpawnError::NotExecutable { .. }), "{err}");
        let err = resolve_program("/etc", &Default::default(), None).unwrap_err();
        assert!(matches!(err, SpawnError::NotExecutable { .. }), "{err}");
    }

    #[test]
    fn invalid_signal_targets() {
        assert!(signal_group(0, Signal::SIGTERM).is_err());
        assert!(signal_group(1, Signal::SIGTERM).is_err());
        assert!(signal_pid(0, Signal::SIGTERM).is_err());
        assert!(signal_pid(u32::MAX, Signal::SIGTERM).is_err());
    }
}

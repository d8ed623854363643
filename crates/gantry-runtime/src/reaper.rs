//! The reaper: the one place in the process that calls `waitpid`, routing exit statuses by pid.
//!
//! gantry runs as PID 1 of its own PID namespace (or as a child subreaper), so every orphan
//! in its subtree is re-parented to it and must be reaped or it stays a zombie forever. A
//! generic `waitpid(-1)` steals statuses from anyone else waiting on a specific pid (tokio's
//! `Child::wait` then fails with ECHILD, notes §A), so the rule is: **all** reaping goes
//! through this module. Never use `tokio::process::Child::wait` or `std::process::Child::wait`
//! in a process that runs a [`Reaper`].
//!
//! Mechanism: SIGCHLD (via tokio's signal driver) wakes one task, which loops
//! `waitpid(-1, WNOHANG)` until nothing is left (signals coalesce, so one wake-up may stand
//! for many exits) and hands each status to whoever called [`Reaper::watch`] for that pid.
//! Statuses nobody watches yet are parked for a while, because a child can exit before its
//! spawner got around to calling `watch`; adopted orphans end up there too and are dropped
//! after [`UNCLAIMED_TTL`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long an exit status nobody asked for is kept. The legitimate case (a child that
/// exited between `spawn` returning and `watch` being called) is microseconds; anything
/// older is an adopted orphan.
pub const UNCLAIMED_TTL: Duration = Duration::from_secs(60);

/// Upper bound on parked statuses, so a storm of exiting orphans cannot grow memory.
const UNCLAIMED_MAX: usize = 4096;

/// Only one reaper may run per process: two `waitpid(-1)` loops would steal each other's
/// statuses and watchers would hang.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// How a process ended: exactly one of the two fields is `Some`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    /// Exit code, when the process called `exit`.
    pub code: Option<i32>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// A normal exit with `code`.
    pub fn exited(code: i32) -> Self {
        Self {
            code: Some(code),
            signal: None,
        }
    }

    /// Death by signal `signal`.
    pub fn signaled(signal: i32) -> Self {
        Self {
            code: None,
            signal: Some(signal),
        }
    }

    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The shell convention: the code, or 128 + signal number.
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            (None, None) => 255,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(sig)) => match Signal::try_from(sig) {
                Ok(s) => write!(f, "killed by signal {sig} ({})", s.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
            (None, None) => f.write_str("unknown exit status"),
        }
    }
}

/// Why the reaper could not start, or could not deliver a status.
#[derive(Debug, thiserror::Error)]
pub enum ReaperError {
    #[error("reaper: Reaper::start must be called inside a tokio runtime")]
    NoRuntime,
    #[error(
        "reaper: another Reaper is already running in this process (only one may call waitpid(-1))"
    )]
    AlreadyRunning,
    #[error("reaper: cannot listen for SIGCHLD: {0}")]
    Signal(#[source] std::io::Error),
    #[error("reaper: the reaper was stopped before pid {pid} exited")]
    Gone { pid: u32 },
}

struct Parked {
    status: ExitStatus,
    /// Value of the reap counter when this status was collected; see [`Reaper::watch_since`].
    seq: u64,
    at: Instant,
}

#[derive(Default)]
struct State {
    waiters: HashMap<i32, Vec<oneshot::Sender<ExitStatus>>>,
    unclaimed: HashMap<i32, Parked>,
}

struct Shared {
    state: Mutex<State>,
    /// Number of statuses collected so far; lets a spawner tell "this pid's status" from a
    /// parked status of an earlier process that had the same pid.
    seq: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the maps consistent (every update
        // is a single insert/remove), so poisoning is ignored rather than propagated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Collect every exited child, route the statuses. Returns how many were collected.
    fn sweep(&self) -> usize {
        let mut collected = 0;
        loop {
            // __WALL also collects children created with a non-SIGCHLD exit signal, which
            // an adopted orphan may have been.
            let flags = WaitPidFlag::WNOHANG | WaitPidFlag::__WALL;
            let (pid, status) = match waitpid(Pid::from_raw(-1), Some(flags)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::exited(code)),
                Ok(WaitStatus::Signaled(pid, sig, _core)) => {
                    (pid, ExitStatus::signaled(sig as i32))
                }
                Ok(WaitStatus::StillAlive) => break,
                // Stop/continue events are not requested; ignore whatever else shows up.
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                // ECHILD: no children at all. Anything else: nothing sensible to retry.
                Err(_) => break,
            };
            collected += 1;
            self.deliver(pid.as_raw(), status);
        }
        if collected > 0 {
            self.prune();
        }
        collected
    }

    fn deliver(&self, pid: i32, status: ExitStatus) {
        let mut state = self.lock();
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        match state.waiters.remove(&pid) {
            Some(waiters) => {
                for w in waiters {
                    // A dropped watcher is fine: nobody cares any more.
                    let _ = w.send(status);
                }
            }
            None => {
                state.unclaimed.insert(
                    pid,
                    Parked {
                        status,
                        seq,
                        at: Instant::now(),
                    },
                );
            }
        }
    }

    fn prune(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        state
            .unclaimed
            .retain(|_, p| now.duration_since(p.at) < UNCLAIMED_TTL);
        if state.unclaimed.len() > UNCLAIMED_MAX {
            let mut by_age: Vec<(i32, u64)> = state
                .unclaimed
                .iter()
                .map(|(pid, p)| (*pid, p.seq))
                .collect();
            by_age.sort_by_key(|&(_, seq)| seq);
            let excess = state.unclaimed.len() - UNCLAIMED_MAX;
            for (pid, _) in by_age.into_iter().take(excess) {
                state.unclaimed.remove(&pid);
            }
        }
    }
}

/// The process-wide reaper. Start it once, inside tokio, before spawning anything.
///
/// Dropping it stops reaping; pending [`ExitWatch`]es then resolve to [`ReaperError::Gone`].
pub struct Reaper {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Reaper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reaper")
            .field("reaped", &self.shared.seq.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Reaper {
    /// Start reaping. Must run inside a tokio runtime (it spawns a task and needs the signal
    /// driver); fails if another `Reaper` is alive in this process.
    ///
    /// The SIGCHLD listener is installed *before* the start-up sweep, so an exit between the
    /// two is never missed; the sweep collects children that exited before we listened.
    pub fn start() -> Result<Reaper, ReaperError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ReaperError::NoRuntime);
        }
        if RUNNING.swap(true, Ordering::SeqCst) {
            return Err(ReaperError::AlreadyRunning);
        }
        let mut sigchld = match signal(SignalKind::child()) {
            Ok(s) => s,
            Err(e) => {
                RUNNING.store(false, Ordering::SeqCst);
                return Err(ReaperError::Signal(e));
            }
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            seq: AtomicU64::new(0),
        });
        shared.sweep();
        let task_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                if sigchld.recv().await.is_none() {
                    break;
                }
                task_shared.sweep();
            }
        });
        Ok(Reaper { shared, task })
    }

    /// A future that resolves with `pid`'s exit status. If the process already exited and
    /// its status is parked, it resolves at once. Several watchers of one pid all get the
    /// status; a watch started *after* the status was delivered to another watcher never
    /// resolves, so keep the first one (e.g. [`crate::process::Spawned::exit`]).
    pub fn watch(&self, pid: u32) -> ExitWatch {
        self.watch_inner(pid, 0)
    }

    /// The current value of the reap counter. Take it *before* spawning and pass it to
    /// [`Reaper::watch_since`]: a parked status collected earlier cannot belong to the new
    /// process, only to an earlier holder of the same pid number.
    pub fn reap_seq(&self) -> u64 {
        self.shared.seq.load(Ordering::SeqCst)
    }

    /// Like [`Reaper::watch`] but ignores (and drops) a parked status collected at or before
    /// `seq` (from [`Reaper::reap_seq`]), which must be a previous process with this pid.
    pub fn watch_since(&self, pid: u32, seq: u64) -> ExitWatch {
        self.watch_inner(pid, seq)
    }

    fn watch_inner(&self, pid: u32, min_seq: u64) -> ExitWatch {
        let (tx, rx) = oneshot::channel();
        let Ok(raw) = i32::try_from(pid) else {
            // No such pid can exist; the watch resolves to Gone immediately.
            drop(tx);
            return ExitWatch { pid, rx };
        };
        let mut state = self.shared.lock();
        match state.unclaimed.remove(&raw) {
            Some(parked) if parked.seq > min_seq => {
                let _ = tx.send(parked.status);
            }
            _ => state.waiters.entry(raw).or_default().push(tx),
        }
        ExitWatch { pid, rx }
    }

    /// Statuses collected but not (yet) claimed by a watcher: adopted orphans, mostly.
    pub fn parked(&self) -> usize {
        self.shared.lock().unclaimed.len()
    }

    /// Total exit statuses collected since start.
    pub fn reaped(&self) -> u64 {
        self.shared.seq.load(Ordering::Relaxed)
    }

    /// Run one `waitpid` sweep now (normally SIGCHLD does this). Useful after a bulk kill.
    pub fn sweep_now(&self) -> usize {
        self.shared.sweep()
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.task.abort();
        // Dropping the senders makes every pending watch resolve to Gone.
        self.shared.lock().waiters.clear();
        RUNNING.store(false, Ordering::SeqCst);
    }
}

/// Future returned by [`Reaper::watch`]. Cancel-safe: dropping it loses nothing but itself.
#[derive(Debug)]
pub struct ExitWatch {
    pid: u32,
    rx: oneshot::Receiver<ExitStatus>,
}

impl ExitWatch {
    /// The pid being watched.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Future for ExitWatch {
    type Output = Result<ExitStatus, ReaperError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let pid = self.pid;
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.map_err(|_| ReaperError::Gone { pid }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(ExitStatus::exited(3).to_string(), "exit code 3");
        assert_eq!(
            ExitStatus::signaled(9).to_string(),
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            ExitStatus::signaled(200).to_string(),
            "killed by signal 200"
        );
        assert_eq!(ExitStatus::signaled(15).shell_code(), 143);
    }
}

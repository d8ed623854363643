//! Service output on its way to the event loop: one reader (an epoll set) for every process's pipes, a byte budget per service, drops counted instead of memory growing.
//!
//! A service can write faster than gantry can mask, log and show its lines (`yes` writes
//! hundreds of MB/s). Each service has an [`OUTPUT_BUDGET`] of bytes in flight: a line
//! the reader cannot fit is dropped and counted, never queued, so gantry's memory stays
//! bounded and the pipe keeps draining (the service is never blocked on a full pipe).
//! The count reaches the log as a marker line and `/metrics` as
//! `gantry_output_dropped_lines_total`. Output travels on its own channel, which the
//! loop serves after signals, API commands, probe results and timers: a flood can delay
//! only output.

use crate::process::{LineBuf, StreamKind};
use crate::reaper::{ExitStatus, ExitWatch};
use gantry_engine as eng;
use gantry_engine::UnitId;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::collections::BTreeSet;
use std::future::Future as _;
use std::os::fd::{AsFd as _, OwnedFd};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::time::Instant;

/// Bytes of one service's output that may wait for the event loop at once.
pub(super) const OUTPUT_BUDGET: usize = 1 << 20;

/// What the reader reports, in the order it happened for each process.
pub(super) enum Out {
    Line {
        unit: UnitId,
        stream: StreamKind,
        line: String,
        /// A [`crate::process::MAX_LINE`] chunk that the next line of this stream continues.
        cut: bool,
        /// Budget held by this line; the loop gives it back once the line is handled.
        cost: u32,
    },
    /// Lines dropped since the last report, because the budget was spent.
    Dropped { unit: UnitId, lines: u64 },
    /// The process exited and its output has drained (sent last, so the final lines —
    /// usually the ones that explain a failure — are handled before the exit).
    Exited {
        unit: UnitId,
        r#gen: eng::Gen,
        status: ExitStatus,
    },
}

/// The budget a line costs: its bytes plus the bookkeeping around it.
fn cost(line: &str) -> u32 {
    u32::try_from(line.len() + 64).unwrap_or(u32::MAX)
}

/// A fresh budget for one service.
pub(super) fn budget() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(OUTPUT_BUDGET))
}

/// How long after a process's exit its pipes may stay open (a daemon that keeps them) before
/// the exit is reported anyway.
const EXIT_GRACE: Duration = Duration::from_millis(200);
/// Bytes read from one pipe per readiness before the others get their turn.
const READ_TURN: usize = 64 * 1024;
/// Readiness events taken per wait.
const EVENTS: usize = 64;

/// The reader of every service's output: one task and one epoll set for all pipes.
///
/// A task per process with two pipes registered with tokio cost about 1.3 KB a service
/// (the task, 768 bytes, and two 256-byte registrations), more than anything else a
/// running service keeps. Here the pipes are level-triggered members of one epoll set,
/// whose own descriptor is the only one tokio watches; a service costs its entry (two line
/// buffers, empty while quiet) and a waker for its exit.
pub(super) struct Hub {
    adds: mpsc::UnboundedSender<Add>,
}

/// A process whose output the hub reads until its exit has been reported.
struct Add {
    unit: UnitId,
    r#gen: eng::Gen,
    stdout: OwnedFd,
    stderr: OwnedFd,
    exit: ExitWatch,
    budget: Arc<Semaphore>,
}

impl Hub {
    /// Starts the hub's task (inside the runtime); its reports go to `tx`.
    pub(super) fn start(tx: mpsc::UnboundedSender<Out>) -> std::io::Result<Hub> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        // SAFETY: `EpollFd` owns the descriptor it returns, so it stays open and the same
        // for as long as the AsyncFd holds it.
        #[allow(unsafe_code)]
        let epoll = unsafe { AsyncFd::register_with_interest(EpollFd(epoll), Interest::READABLE) }?;
        let (adds, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(epoll, rx, tx));
        Ok(Hub { adds })
    }

    /// Reads both streams and the exit of one process until the output has drained (end
    /// of file on both pipes, or [`EXIT_GRACE`] after the exit for a daemon that keeps
    /// them open), then reports the exit.
    pub(super) fn add(
        &self,
        unit: UnitId,
        r#gen: eng::Gen,
        spawned: crate::process::SpawnedFds,
        budget: Arc<Semaphore>,
    ) {
        let _ = self.adds.send(Add {
            unit,
            r#gen,
            stdout: spawned.stdout,
            stderr: spawned.stderr,
            exit: spawned.exit,
            budget,
        });
    }
}

/// The epoll set, as tokio watches it.
struct EpollFd(Epoll);

impl std::os::fd::AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.0.as_raw_fd()
    }
}

/// One pipe of a process: open until end of file.
struct Pipe {
    fd: Option<OwnedFd>,
    lines: LineBuf,
}

struct Entry {
    unit: UnitId,
    r#gen: eng::Gen,
    pipes: [Pipe; 2],
    exit: Option<ExitWatch>,
    /// Wakes the hub with this entry's slot when its exit status arrives.
    waker: Waker,
    status: Option<ExitStatus>,
    grace: Option<Instant>,
    dropped: u64,
    budget: Arc<Semaphore>,
}

/// Slots whose exit watch has something to say, and the hub's wake-up.
struct Woken {
    slots: std::sync::Mutex<Vec<usize>>,
    notify: Notify,
}

struct SlotWaker {
    slot: usize,
    woken: Arc<Woken>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(self.slot);
        self.woken.notify.notify_one();
    }
}

/// The hub's state, owned by its task.
struct Reader {
    epoll: AsyncFd<EpollFd>,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    graces: BTreeSet<(Instant, usize)>,
    woken: Arc<Woken>,
    tx: mpsc::UnboundedSender<Out>,
}

async fn run(
    epoll: AsyncFd<EpollFd>,
    mut adds: mpsc::UnboundedReceiver<Add>,
    tx: mpsc::UnboundedSender<Out>,
) {
    let woken = Arc::new(Woken {
        slots: std::sync::Mutex::new(Vec::new()),
        notify: Notify::new(),
    });
    let mut r = Reader {
        epoll,
        slots: Vec::new(),
        free: Vec::new(),
        graces: BTreeSet::new(),
        woken,
        tx,
    };
    let mut events = [EpollEvent::empty(); EVENTS];
    loop {
        // Here as well as in the select: a flood keeps the epoll branch ready, and a
        // daemon's exit must still be reported when its grace is over.
        r.expire();
        let grace = r.graces.first().map(|&(t, _)| t);
        tokio::select! {
            biased;
            add = adds.recv() => match add {
                Some(add) => r.insert(add),
                // The driver is gone.
                None => return,
            },
            () = r.woken.notify.notified() => r.exits(),
            ready = r.epoll.readable() => {
                let Ok(mut guard) = ready else { return };
                match r.epoll.get_ref().0.wait(&mut events, EpollTimeout::ZERO) {
                    Ok(0) => guard.clear_ready(),
                    Ok(n) => {
                        drop(guard);
                        for ev in &events[..n] {
                            let token = ev.data() as usize;
                            r.read(token >> 1, token & 1);
                        }
                        // Level-triggered: what is left is reported by the next wait. Let
                        // the event loop run between turns of a flood.
                        tokio::task::yield_now().await;
                    }
                    Err(Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
            () = gantry_host::sleep_until_opt(grace), if grace.is_some() => r.expire(),
        }
    }
}

impl Reader {
    fn insert(&mut self, add: Add) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let waker = Waker::from(Arc::new(SlotWaker {
            slot,
            woken: self.woken.clone(),
        }));
        let mut pipes = [add.stdout, add.stderr].map(|fd| Pipe {
            fd: Some(fd),
            lines: LineBuf::default(),
        });
        for (i, p) in pipes.iter_mut().enumerate() {
            let registered = p.fd.as_ref().is_some_and(|fd| {
                nix::fcntl::fcntl(
                    fd,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                )
                .is_ok()
                    && self
                        .epoll
                        .get_ref()
                        .0
                        .add(
                            fd,
                            EpollEvent::new(EpollFlags::EPOLLIN, (slot << 1 | i) as u64),
                        )
                        .is_ok()
            });
            if !registered {
                // Not readable this way (cannot happen with a pipe): as if closed.
                p.fd = None;
                p.lines.eof = true;
            }
        }
        self.slots[slot] = Some(Entry {
            unit: add.unit,
            r#gen: add.r#gen,
            pipes,
            exit: Some(add.exit),
            waker,
            status: None,
            grace: None,
            dropped: 0,
            budget: add.budget,
        });
        // The first poll registers the waker (or finds the exit already there).
        self.poll_exit(slot);
    }

    /// Exit watches that woke the hub.
    fn exits(&mut self) {
        let slots = std::mem::take(
            &mut *self
                .woken
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for slot in slots {
            self.poll_exit(slot);
        }
    }

    fn poll_exit(&mut self, slot: usize) {
        let Some(e) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(watch) = e.exit.as_mut() else { return };
        let mut cx = Context::from_waker(&e.waker);
        let Poll::Ready(status) = std::pin::Pin::new(watch).poll(&mut cx) else {
            return;
        };
        e.exit = None;
        e.status = Some(status.unwrap_or(ExitStatus {
            code: None,
            signal: Some(9),
        }));
        if e.pipes.iter().all(|p| p.fd.is_none()) {
            self.finish(slot);
        } else {
            let at = Instant::now() + EXIT_GRACE;
            e.grace = Some(at);
            self.graces.insert((at, slot));
        }
    }

    /// Reads what one pipe has (up to [`READ_TURN`] bytes) and sends its lines.
    fn read(&mut self, slot: usize, stream: usize) {
        let Some(e) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let kind = if stream == 0 {
            StreamKind::Out
        } else {
            StreamKind::Err
        };
        let mut taken = 0;
        let mut closed = false;
        while taken < READ_TURN {
            let pipe = &mut e.pipes[stream];
            let Some(fd) = pipe.fd.as_ref() else { return };
            let more = match pipe.lines.read_from(fd.as_fd()) {
                Ok(0) => {
                    closed = true;
                    false
                }
                Ok(n) => {
                    taken += n;
                    true
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => true,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => false,
                // A read error ends the stream, as end of file does.
                Err(_) => {
                    pipe.lines.eof = true;
                    closed = true;
                    false
                }
            };
            while let Some(line) = e.pipes[stream].lines.take_line() {
                let cut = e.pipes[stream].lines.cut;
                send_line(e, &self.tx, kind, line, cut);
            }
            e.pipes[stream].lines.release_if_empty();
            if closed {
                if let Some(fd) = e.pipes[stream].fd.take() {
                    let _ = self.epoll.get_ref().0.delete(&fd);
                }
                e.pipes[stream].lines = LineBuf::default();
            }
            if !more {
                break;
            }
        }
        if closed && e.status.is_some() && e.pipes.iter().all(|p| p.fd.is_none()) {
            self.finish(slot);
        }
    }

    /// Exits whose grace is over: reported with their pipes still open.
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(&(at, slot)) = self.graces.first() {
            if at > now {
                break;
            }
            self.graces.pop_first();
            if self.slots[slot]
                .as_ref()
                .is_some_and(|e| e.grace == Some(at))
            {
                self.finish(slot);
            }
        }
    }

    /// Reports what is left and the exit, and frees the slot.
    fn finish(&mut self, slot: usize) {
        let Some(mut e) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        for p in &mut e.pipes {
            if let Some(fd) = p.fd.take() {
                let _ = self.epoll.get_ref().0.delete(&fd);
            }
        }
        if let Some(at) = e.grace {
            self.graces.remove(&(at, slot));
        }
        if e.dropped > 0 {
            let _ = self.tx.send(Out::Dropped {
                unit: e.unit,
                lines: e.dropped,
            });
        }
        if let Some(status) = e.status {
            let _ = self.tx.send(Out::Exited {
                unit: e.unit,
                r#gen: e.r#gen,
                status,
            });
        }
        self.free.push(slot);
    }
}

/// One line to the loop, within the service's budget (dropped and counted beyond it).
fn send_line(
    e: &mut Entry,
    tx: &mpsc::UnboundedSender<Out>,
    stream: StreamKind,
    line: String,
    cut: bool,
) {
    let cost = cost(&line);
    match e.budget.try_acquire_many(cost) {
        Ok(permit) => {
            permit.forget();
            if e.dropped > 0 {
                let _ = tx.send(Out::Dropped {
                    unit: e.unit,
                    lines: std::mem::take(&mut e.dropped),
                });
            }
            let _ = tx.send(Out::Line {
                unit: e.unit,
                stream,
                line,
                cut,
                cost,
            });
        }
        Err(_) => e.dropped += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_costs_its_bytes_and_never_more_than_the_budget_holds() {
        assert_eq!(cost("abc"), 67);
        let max = "x".repeat(crate::process::MAX_LINE);
        assert!((cost(&max) as usize) < OUTPUT_BUDGET / 8);
    }
}

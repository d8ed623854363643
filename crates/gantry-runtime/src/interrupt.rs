//! SIGINT / SIGTERM / SIGHUP honoured while gantry is not yet in its event loop (loading the file, the pre-flight), even when that work does not yield.
//!
//! As PID 1 of its namespace gantry ignores every signal it has no handler for, and the
//! event loop's handlers are only polled between awaits: parsing a large file, or a
//! pre-flight that reads a slow file, resolves a host or merges a large environment,
//! would leave SIGTERM unanswered.
//! [`PhaseGuard`] watches on a thread of its own: a signal during the guarded phase ends
//! gantry at once with exit code 1 and a line saying nothing was started (the kernel
//! then kills whatever the pre-flight had spawned in the namespace).

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Watches for a stop signal until dropped.
pub struct PhaseGuard {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PhaseGuard {
    /// Starts watching. `None` when the watcher cannot be set up (then the event loop's
    /// own handlers are all there is).
    pub fn start() -> Option<PhaseGuard> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).ok()?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("gantry-phase-guard".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    let name = match sig {
                        SIGINT => "interrupt",
                        SIGTERM => "SIGTERM",
                        _ => "SIGHUP",
                    };
                    eprintln!("{name} before the boot: stopped; nothing was started");
                    std::process::exit(1);
                }
            })
            .ok()?;
        Some(PhaseGuard {
            handle,
            thread: Some(thread),
        })
    }
}

impl std::fmt::Debug for PhaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhaseGuard")
    }
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

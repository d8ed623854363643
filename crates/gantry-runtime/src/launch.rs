//! Starting a child without copying gantry's descriptor table: `clone(CLONE_VM | CLONE_VFORK | CLONE_FILES)`, then `close_range(CLOSE_RANGE_UNSHARE)` in the child.
//!
//! `posix_spawn` gives the child a copy of the parent's whole descriptor table (the kernel
//! takes a reference on every open file), and the `exec` closes every close-on-exec entry of
//! it again. At 1,000 services gantry holds two pipes per running service, so every spawn
//! paid for a few thousand descriptors twice: measured here with a C loop of spawn + wait of
//! `/bin/true`, 909 µs of CPU per spawn with 2,000 open descriptors against 643 µs this way,
//! 1,090 against 655 µs with 4,000 (bench/README.md, issue 21, third round).
//!
//! Here the child shares the table until its first system call, `close_range(bound, ~0,
//! CLOSE_RANGE_UNSHARE)`, which gives it a private copy of the entries below `bound` only.
//! The descriptors it needs must therefore sit below `bound`: a small pool of reserved
//! low-numbered slots (opened on `/dev/null` at the first spawn) that a spawn fills with
//! its pipes' write ends (`dup3`) and resets to `/dev/null` when the child has exec'd.
//!
//! The child runs on its own small stack in the parent's memory (as glibc's `posix_spawn`
//! does) and makes system calls only: it resets signal handlers to their defaults (with
//! every signal blocked in the parent around the `clone`, so no handler of gantry's runs in
//! the child), takes its own table, sets up stdio, closes the rest, joins its own process
//! group, changes directory, unblocks signals and execs. A failure is written to memory the
//! parent reads after the child has exited.
//!
//! Where the kernel lacks `CLOSE_RANGE_UNSHARE` (before Linux 5.9) or the slots cannot be
//! made, [`launch`] answers [`Launched::Unsupported`] and the caller uses `posix_spawn`.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::libc;

/// Spawns that can hold slots at the same time (the driver spawns on at most four pool
/// threads and its own); a spawn that finds none free uses `posix_spawn`.
const SLOT_PAIRS: usize = 8;
/// The child's stack. It only makes system calls, so a few KiB would do.
const STACK_LEN: usize = 64 * 1024;

/// Set once the kernel has refused `CLOSE_RANGE_UNSHARE` or the slots could not be made.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
static SLOTS: Mutex<Option<Slots>> = Mutex::new(None);

/// The reserved low descriptors: `null` (on `/dev/null`, the child's stdin) and pairs of
/// slots for stdout and stderr, all close-on-exec and at least 3.
struct Slots {
    null: RawFd,
    free: Vec<[RawFd; 2]>,
    /// One above the highest slot: what the child keeps of the table.
    bound: RawFd,
}

impl Slots {
    fn open() -> io::Result<Slots> {
        let path = c"/dev/null";
        // SAFETY: plain system calls on descriptors this function owns.
        #[allow(unsafe_code)]
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut made = Vec::with_capacity(1 + 2 * SLOT_PAIRS);
            let mut fail = None;
            for _ in 0..1 + 2 * SLOT_PAIRS {
                let slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3);
                if slot < 0 {
                    fail = Some(io::Error::last_os_error());
                    break;
                }
                made.push(slot);
            }
            libc::close(fd);
            if let Some(e) = fail {
                for s in made {
                    libc::close(s);
                }
                return Err(e);
            }
            let bound = made.iter().copied().max().unwrap_or(2) + 1;
            let null = made[0];
            let free = made[1..].chunks(2).map(|c| [c[0], c[1]]).collect();
            Ok(Slots { null, free, bound })
        }
    }
}

/// A pair of slots holding a spawn's stdout and stderr; reset to `/dev/null` and given
/// back when dropped.
struct Lease {
    null: RawFd,
    pair: [RawFd; 2],
    bound: RawFd,
}

impl Lease {
    fn take() -> Option<Lease> {
        let mut slots = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        if slots.is_none() {
            match Slots::open() {
                Ok(s) => *slots = Some(s),
                Err(_) => {
                    UNSUPPORTED.store(true, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let s = slots.as_mut()?;
        let pair = s.free.pop()?;
        Some(Lease {
            null: s.null,
            pair,
            bound: s.bound,
        })
    }

    /// Puts `fd` into slot `i` (the slot's old entry is closed by the same call).
    fn fill(&self, i: usize, fd: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: dup3 onto a slot this lease holds.
        #[allow(unsafe_code)]
        let r = unsafe { libc::dup3(fd.as_raw_fd(), self.pair[i], libc::O_CLOEXEC) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        for slot in self.pair {
            // SAFETY: dup3 onto a slot this lease holds; it drops the pipe's write end, so
            // the reader sees end-of-file once the child's copies are gone.
            #[allow(unsafe_code)]
            unsafe {
                libc::dup3(self.null, slot, libc::O_CLOEXEC);
            }
        }
        let mut slots = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slots.as_mut() {
            s.free.push(self.pair);
        }
    }
}

/// The child's stack, one per spawning thread, with a guard page below it.
struct Stack {
    base: *mut c_void,
    len: usize,
}

impl Stack {
    fn map() -> Option<Stack> {
        let page = 4096;
        let len = STACK_LEN + page;
        // SAFETY: a fresh anonymous mapping; the lowest page becomes the guard.
        #[allow(unsafe_code)]
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return None;
            }
            if libc::mprotect(base, page, libc::PROT_NONE) != 0 {
                libc::munmap(base, len);
                return None;
            }
            Some(Stack { base, len })
        }
    }

    /// The top (stacks grow down on every architecture gantry builds for), 16-aligned.
    fn top(&self) -> *mut c_void {
        (self.base as usize + self.len) as *mut c_void
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `map`; no child runs on it any more (each
        // `launch` returns only after its child exec'd or exited).
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

thread_local! {
    static STACK: RefCell<Option<Stack>> = const { RefCell::new(None) };
}

/// Where the child failed.
const STAGE_NONE: i32 = 0;
const STAGE_UNSHARE: i32 = 1;
const STAGE_STDIO: i32 = 2;
const STAGE_PGID: i32 = 3;
const STAGE_CWD: i32 = 4;
const STAGE_EXEC: i32 = 5;

/// What the child reads and, on failure, writes (shared memory: `CLONE_VM`).
#[repr(C)]
struct ChildArgs {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    null: c_int,
    out: c_int,
    err: c_int,
    bound: c_int,
    stage: AtomicI32,
    errno: AtomicI32,
}

/// The result of [`launch`].
#[derive(Debug)]
pub(crate) enum Launched {
    /// Running (exec'd); its pid.
    Started(u32),
    /// This kernel or process cannot do it; use `posix_spawn`.
    Unsupported,
}

/// A program and what it gets, as C strings.
pub(crate) struct Program<'a> {
    pub path: &'a CStr,
    pub argv: &'a [CString],
    pub envp: &'a [CString],
    pub cwd: Option<&'a CStr>,
}

/// Starts `program` with stdin on `/dev/null` and stdout / stderr on the given pipe ends,
/// as the leader of a new process group. Returns once the child has exec'd (or failed).
pub(crate) fn launch(
    program: &Program<'_>,
    stdout: BorrowedFd<'_>,
    stderr: BorrowedFd<'_>,
) -> io::Result<Launched> {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return Ok(Launched::Unsupported);
    }
    let Some(lease) = Lease::take() else {
        return Ok(Launched::Unsupported);
    };
    lease.fill(0, stdout)?;
    lease.fill(1, stderr)?;
    let (argv, envp) = (pointers(program.argv), pointers(program.envp));
    let args = ChildArgs {
        path: program.path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: program.cwd.map_or(std::ptr::null(), |c| c.as_ptr()),
        null: lease.null,
        out: lease.pair[0],
        err: lease.pair[1],
        bound: lease.bound,
        stage: AtomicI32::new(STAGE_NONE),
        errno: AtomicI32::new(0),
    };
    let cloned = STACK.with(|cell| {
        let mut stack = cell.borrow_mut();
        if stack.is_none() {
            *stack = Stack::map();
        }
        let top = stack.as_ref()?.top();
        Some(clone_child(top, &args))
    });
    drop(lease);
    let pid = match cloned {
        None => return Ok(Launched::Unsupported),
        Some(Err(e)) => return Err(e),
        Some(Ok(pid)) => pid,
    };
    let stage = args.stage.load(Ordering::Acquire);
    if stage == STAGE_NONE {
        return Ok(Launched::Started(pid as u32));
    }
    // The child has exited (the vfork wait returned without an exec): reap it here, unless
    // the reaper's `waitpid(-1)` got it first (then it parks the status unclaimed).
    // SAFETY: waitpid on our own child.
    #[allow(unsafe_code)]
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    if stage == STAGE_UNSHARE {
        UNSUPPORTED.store(true, Ordering::Relaxed);
        return Ok(Launched::Unsupported);
    }
    let errno = args.errno.load(Ordering::Acquire);
    let e = io::Error::from_raw_os_error(errno);
    Err(match stage {
        STAGE_CWD => io::Error::new(e.kind(), format!("changing directory: {e}")),
        STAGE_STDIO => io::Error::new(e.kind(), format!("setting up stdio: {e}")),
        STAGE_PGID => io::Error::new(e.kind(), format!("setting the process group: {e}")),
        _ => e,
    })
}

/// A null-terminated array of the strings' pointers, as `execve` takes them.
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `clone` with every signal blocked in this thread around it, so that no signal handler
/// of gantry's can run in the child before it has reset them.
fn clone_child(stack_top: *mut c_void, args: &ChildArgs) -> io::Result<libc::pid_t> {
    // SAFETY: the child runs `child` on its own stack with `args`, which outlive it: with
    // CLONE_VFORK this thread is suspended until the child has exec'd or exited. The child
    // only makes async-signal-safe system calls and writes atomics in `args`.
    #[allow(unsafe_code)]
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child,
            stack_top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::SIGCHLD,
            args as *const ChildArgs as *mut c_void,
        );
        let e = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 { Err(e) } else { Ok(pid) }
    }
}

/// The child, between `clone` and `exec`: system calls only, no allocation, no unwinding.
#[allow(unsafe_code)]
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` the parent passed and keeps alive (see clone_child).
    let a = unsafe { &*(arg as *const ChildArgs) };
    // SAFETY: every call below is an async-signal-safe system call wrapper on values the
    // parent prepared; a failure records errno and ends the child with `_exit`.
    unsafe {
        // Handlers gantry installed would run gantry's code in gantry's memory: back to the
        // default. Ignored signals stay ignored across exec, except SIGPIPE, which Rust
        // ignores for itself (as std's Command resets it).
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let h = old.sa_sigaction;
            if h == libc::SIG_DFL || (h == libc::SIG_IGN && sig != libc::SIGPIPE) {
                continue;
            }
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
        // Until this succeeds the table is the parent's: nothing may touch a descriptor.
        if libc::syscall(
            libc::SYS_close_range,
            a.bound as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        ) != 0
        {
            fail(a, STAGE_UNSHARE);
        }
        if libc::dup2(a.null, 0) < 0 || libc::dup2(a.out, 1) < 0 || libc::dup2(a.err, 2) < 0 {
            fail(a, STAGE_STDIO);
        }
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            0,
        );
        if libc::setpgid(0, 0) != 0 {
            fail(a, STAGE_PGID);
        }
        if !a.cwd.is_null() && libc::chdir(a.cwd) != 0 {
            fail(a, STAGE_CWD);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(a.path, a.argv, a.envp);
        fail(a, STAGE_EXEC)
    }
}

/// Records where and why the child failed, for the parent, and ends the child.
#[allow(unsafe_code)]
fn fail(a: &ChildArgs, stage: i32) -> ! {
    // SAFETY: errno is the calling thread's; `_exit` skips every atexit handler and
    // destructor (they belong to the parent, whose memory this is).
    unsafe {
        a.errno.store(*libc::__errno_location(), Ordering::Release);
        a.stage.store(stage, Ordering::Release);
        libc::_exit(127)
    }
}

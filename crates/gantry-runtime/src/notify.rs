//! sd_notify support: one abstract unix datagram socket per service, and message parsing.
//!
//! Design (notes §D):
//! - Abstract names (`@gantry/<supervisor host pid>/<random token>/<service>`): nothing to
//!   unlink, nothing left behind after a SIGKILL, no directory permissions to get right. They
//!   are scoped to the network namespace and have no access control, hence the random token
//!   (the name is not guessable from outside) and the sender credentials on every message.
//! - `SO_PASSCRED` is enabled at bind time, i.e. before the service is spawned: enabled
//!   after a datagram was queued, the credentials of that datagram read pid 0.
//! - The socket queue holds only ~10 datagrams (`max_dgram_qlen`), so every wake-up drains
//!   everything that is queued.
//! - `NOTIFY_SOCKET` is inherited by the service's children, so a message may come from a
//!   descendant; [`NotifyMessage::sender`] lets the driver decide whom to trust.
//! - Any file descriptors passed along (`SCM_RIGHTS`) are closed at once.
//!
//! Not done yet: `SO_PASSPIDFD` (kernel ≥ 6.5), which would make sender identification
//! race-free for short-lived senders; nix 0.31 has no wrapper for it.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, UnixCredentials, recvmsg, setsockopt, sockopt,
};
use tokio::io::Interest;

/// Longest abstract socket name (sun_path is 108 bytes, one goes to the leading NUL).
const MAX_NAME: usize = 107;

/// Largest datagram accepted; systemd uses the same limit (PIPE_BUF).
const MAX_DATAGRAM: usize = 4096;

/// Errors of the notify socket.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notify socket for {service}: must be created inside a tokio runtime")]
    NoRuntime { service: String },
    #[error("notify socket for {service}: cannot bind @{name}: {source}")]
    Bind {
        service: String,
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("notify socket for {service}: cannot enable SO_PASSCRED: {source}")]
    PassCred {
        service: String,
        #[source]
        source: std::io::Error,
    },
    #[error("notify socket @{name}: receive failed: {source}")]
    Recv {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// Who sent a notification (from `SCM_CREDENTIALS`; pids are in gantry's PID namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// One datagram, parsed. A datagram may carry several assignments, one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyMessage {
    /// Sender credentials, when the kernel supplied them.
    pub sender: Option<Sender>,
    /// `READY=1`
    pub ready: bool,
    /// `STOPPING=1`
    pub stopping: bool,
    /// `RELOADING=1`
    pub reloading: bool,
    /// `WATCHDOG=1` (keep-alive ping)
    pub watchdog: bool,
    /// `WATCHDOG=trigger` (the service asks to be treated as hung)
    pub watchdog_trigger: bool,
    /// `STATUS=...` (the last one in the datagram)
    pub status: Option<String>,
    /// `EXTEND_TIMEOUT_USEC=n`
    pub extend_timeout_usec: Option<u64>,
    /// `MAINPID=n`
    pub main_pid: Option<u32>,
    /// Other well-formed `KEY=value` assignments, in order.
    pub other: Vec<(String, String)>,
    /// Lines that could not be understood (no `=`, bad number, ...), for logging.
    pub invalid: Vec<String>,
    /// The datagram was larger than 4096 bytes and was cut.
    pub truncated: bool,
}

impl NotifyMessage {
    /// Parse the payload of one datagram.
    pub fn parse(payload: &[u8]) -> NotifyMessage {
        let mut msg = NotifyMessage::default();
        let text = String::from_utf8_lossy(payload);
        for line in text.split('\n') {
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                msg.invalid.push(line.to_string());
                continue;
            };
            match (key, value) {
                ("READY", "1") => msg.ready = true,
                ("STOPPING", "1") => msg.stopping = true,
                ("RELOADING", "1") => msg.reloading = true,
                ("WATCHDOG", "1") => msg.watchdog = true,
                ("WATCHDOG", "trigger") => msg.watchdog_trigger = true,
                ("STATUS", v) => msg.status = Some(v.to_string()),
                ("EXTEND_TIMEOUT_USEC", v) => match v.parse::<u64>() {
                    Ok(n) => msg.extend_timeout_usec = Some(n),
                    Err(_) => msg.invalid.push(line.to_string()),
                },
                ("MAINPID", v) => match v.parse::<u32>() {
                    Ok(n) if n > 0 => msg.main_pid = Some(n),
                    _ => msg.invalid.push(line.to_string()),
                },
                (k, v) if !k.is_empty() && k.bytes().all(valid_key_byte) => {
                    msg.other.push((k.to_string(), v.to_string()))
                }
                _ => msg.invalid.push(line.to_string()),
            }
        }
        msg
    }
}

fn valid_key_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

/// A bound notify socket for one service. Create it before spawning the service and put
/// [`NotifySocket::env_value`] into the service's `NOTIFY_SOCKET`
/// ([`crate::process::SpawnSpec::notify_socket`]).
pub struct NotifySocket {
    sock: tokio::net::UnixDatagram,
    /// Abstract name without the leading NUL / '@'.
    name: String,
    /// Messages drained from the socket but not yet returned by `recv`.
    queue: Mutex<VecDeque<NotifyMessage>>,
}

impl std::fmt::Debug for NotifySocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySocket")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NotifySocket {
    /// Bind `@gantry/<host pid>/<token>/<service>` (service name sanitised and shortened to
    /// fit the 107-byte limit) with `SO_PASSCRED` on. Must run inside a tokio runtime.
    pub fn bind(service: &str) -> Result<NotifySocket, NotifyError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(NotifyError::NoRuntime {
                service: service.to_string(),
            });
        }
        let name = socket_name(host_pid(), &token(), service);
        let bind_err = |source| NotifyError::Bind {
            service: service.to_string(),
            name: name.clone(),
            source,
        };
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(bind_err)?;
        let std_sock = std::os::unix::net::UnixDatagram::bind_addr(&addr).map_err(bind_err)?;
        // Before anyone can know the name, hence before the service exists (see module docs).
        setsockopt(&std_sock, sockopt::PassCred, &true).map_err(|e| NotifyError::PassCred {
            service: service.to_string(),
            source: e.into(),
        })?;
        std_sock.set_nonblocking(true).map_err(bind_err)?;
        let sock = tokio::net::UnixDatagram::from_std(std_sock).map_err(bind_err)?;
        Ok(NotifySocket {
            sock,
            name,
            queue: Mutex::new(VecDeque::new()),
        })
    }

    /// The value for `NOTIFY_SOCKET`: `@` + the abstract name.
    pub fn env_value(&self) -> String {
        format!("@{}", self.name)
    }

    /// The abstract name (without `@`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Next message. Each wake-up drains every queued datagram (the kernel queue is short),
    /// buffering them here; they are returned one per call, in arrival order.
    ///
    /// Cancel-safe: the only await point is the readiness wait.
    pub async fn recv(&self) -> Result<NotifyMessage, NotifyError> {
        loop {
            if let Some(msg) = self.lock_queue().pop_front() {
                return Ok(msg);
            }
            self.sock.readable().await.map_err(|e| self.recv_err(e))?;
            self.drain()?;
        }
    }

    /// Everything queued right now, without waiting (possibly empty).
    pub fn try_recv_all(&self) -> Result<Vec<NotifyMessage>, NotifyError> {
        self.drain()?;
        Ok(self.lock_queue().drain(..).collect())
    }

    fn drain(&self) -> Result<(), NotifyError> {
        let fd = self.sock.as_raw_fd();
        loop {
            match self.sock.try_io(Interest::READABLE, || recv_one(fd)) {
                Ok(msg) => self.lock_queue().push_back(msg),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.recv_err(e)),
            }
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<NotifyMessage>> {
        // Plain push/pop cannot leave the queue inconsistent; ignore poisoning.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn recv_err(&self, source: std::io::Error) -> NotifyError {
        NotifyError::Recv {
            name: self.name.clone(),
            source,
        }
    }
}

/// One non-blocking `recvmsg`: payload + credentials; passed fds are closed.
fn recv_one(fd: RawFd) -> std::io::Result<NotifyMessage> {
    let mut buf = [0u8; MAX_DATAGRAM];
    // Room for credentials and the most fds one message can carry (SCM_MAX_FD = 253), so
    // the control data is never truncated and every passed fd can be closed.
    let mut cmsg = nix::cmsg_space!(UnixCredentials, [RawFd; 253]);
    let (len, truncated, sender, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            fd,
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut sender = None;
        let mut fds = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::ScmCredentials(cred) => {
                        sender = Some(Sender {
                            pid: cred.pid(),
                            uid: cred.uid(),
                            gid: cred.gid(),
                        })
                    }
                    ControlMessageOwned::ScmRights(passed) => fds.extend(passed),
                    _ => {}
                }
            }
        }
        (
            msg.bytes,
            msg.flags.contains(MsgFlags::MSG_TRUNC),
            sender,
            fds,
        )
    };
    for passed in fds {
        // Nobody asked for these; keeping them would leak descriptors.
        let _ = nix::unistd::close(passed);
    }
    let mut msg = NotifyMessage::parse(&buf[..len.min(MAX_DATAGRAM)]);
    msg.sender = sender;
    msg.truncated = truncated;
    Ok(msg)
}

/// gantry's pid as the host sees it. Inside gantry's own PID namespace `getpid()` is 1 for
/// every gantry instance, but /proc is the host's (not remounted), so /proc/self resolves
/// to the host pid: more useful in names seen by `ss -x` on the host.
fn host_pid() -> u32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(std::process::id)
}

/// A short random token. std's `RandomState` is keyed from the OS random source, so
/// hashing a counter and the time through it yields unpredictable values without reading
/// /dev/urandom (and without an error path).
fn token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(now);
    h.write_u32(std::process::id());
    // 48 bits in 12 hex digits: short, and plenty to make the name unguessable.
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

fn socket_name(pid: u32, token: &str, service: &str) -> String {
    let prefix = format!("gantry/{pid}/{token}/");
    // Keep names printable and free of NUL (they go into an environment variable).
    let mut svc: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // The token already makes the name unique, so cutting the service part is harmless.
    svc.truncate(MAX_NAME.saturating_sub(prefix.len()));
    prefix + &svc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_several_assignments() {
        let m = NotifyMessage::parse(
            b"READY=1\nSTATUS=listening on 8080\nMAINPID=42\nEXTEND_TIMEOUT_USEC=5000000\nWATCHDOG=1\nSTOPPING=1\nX_CUSTOM=a=b\n",
        );
        assert!(m.ready && m.watchdog && m.stopping && !m.reloading);
        assert_eq!(m.status.as_deref(), Some("listening on 8080"));
        assert_eq!(m.main_pid, Some(42));
        assert_eq!(m.extend_timeout_usec, Some(5_000_000));
        assert_eq!(m.other, vec![("X_CUSTOM".to_string(), "a=b".to_string())]);
        assert!(m.invalid.is_empty());
    }

    #[test]
    fn parse_garbage() {
        let m = NotifyMessage::parse(b"hello\nMAINPID=abc\nMAINPID=0\nREADY=0\n\xff\xfe=1\n=x");
        assert!(!m.ready);
        assert_eq!(m.main_pid, None);
        assert_eq!(m.invalid.len(), 5, "{:?}", m.invalid);
    }

    #[test]
    fn names_fit_the_limit() {
        let long = "x".repeat(300);
        let n = socket_name(4_000_000, "0123456789ab", &long);
        assert_eq!(n.len(), MAX_NAME);
        let n = socket_name(7, "0123456789ab", "web/api\0 1");
        assert_eq!(n, "gantry/7/0123456789ab/web_api__1");
        assert_ne!(token(), token());
    }
}

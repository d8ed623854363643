//! Is a `gantry up` already running for this state dir? One function, so a real lock file can replace it later.
//!
//! Today the evidence is the API address file a running instance writes
//! (`state_dir/api.addr`) plus a live API answering `GET /health/live` there; the pid is the
//! one holding the API's listening socket (a host pid, as `ss -ltnp` shows it).

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

/// A running instance of gantry for a state dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The API address it serves (`127.0.0.1:PORT`, or a unix socket path).
    pub api: String,
    /// Its pid when /proc tells who holds the API socket.
    pub pid: Option<u32>,
}

impl std::fmt::Display for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "already running: gantry pid {pid}, API {}", self.api),
            None => write!(f, "already running: gantry, API {}", self.api),
        }
    }
}

/// How long the probe of the API may take: it runs before every `up` and `preflight`.
const TIMEOUT: Duration = Duration::from_millis(500);

/// The instance running for `state_dir`, if one answers; `None` when there is no address
/// file or nothing live behind it (a stale file from a killed instance).
pub fn running(state_dir: &Path) -> Option<Running> {
    let addr = std::fs::read_to_string(state_dir.join("api.addr")).ok()?;
    let addr = addr.trim().to_string();
    if addr.is_empty() {
        return None;
    }
    let request = b"GET /health/live HTTP/1.0\r\nHost: gantry\r\n\r\n";
    let mut reply = Vec::new();
    let pid = if let Ok(sock) = addr.parse::<std::net::SocketAddr>() {
        let mut s = std::net::TcpStream::connect_timeout(&sock, TIMEOUT).ok()?;
        s.set_read_timeout(Some(TIMEOUT)).ok()?;
        s.set_write_timeout(Some(TIMEOUT)).ok()?;
        s.write_all(request).ok()?;
        let _ = s.take(4096).read_to_end(&mut reply);
        crate::preflight::port_holder(sock.port()).and_then(|h| holder_pid(&h))
    } else {
        let path = addr.strip_prefix("unix:").unwrap_or(&addr);
        let mut s = std::os::unix::net::UnixStream::connect(path).ok()?;
        s.set_read_timeout(Some(TIMEOUT)).ok()?;
        s.set_write_timeout(Some(TIMEOUT)).ok()?;
        s.write_all(request).ok()?;
        let _ = s.take(4096).read_to_end(&mut reply);
        None
    };
    let reply = String::from_utf8_lossy(&reply);
    reply
        .starts_with("HTTP/1.")
        .then_some(Running { api: addr, pid })
}

/// `pid 123 (gantry)` → 123.
fn holder_pid(holder: &str) -> Option<u32> {
    holder
        .strip_prefix("pid ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_or_a_stale_file_is_not_running() {
        let dir = std::env::temp_dir().join(format!("gantry-instance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(running(&dir), None);
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(dir.join("api.addr"), format!("127.0.0.1:{port}\n")).unwrap();
        assert_eq!(running(&dir), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_holder_pid_is_parsed() {
        assert_eq!(holder_pid("pid 4242 (gantry)"), Some(4242));
        assert_eq!(holder_pid("another process"), None);
    }
}

//! The fixture's side of systemd's notify protocol: `READY=1`, the watchdog's keep-alives
//! and `EXTEND_TIMEOUT_USEC`, as datagrams to `$NOTIFY_SOCKET`.

use crate::{Config, park_until};
use std::ffi::OsString;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::process;
use std::thread;
use std::time::{Duration, Instant};

/// Sends `READY=1` to `$NOTIFY_SOCKET`, as systemd's `sd_notify` does.
pub(crate) fn sd_notify_ready(name: &str) {
    sd_notify(name, "--notify", "READY=1\nSTATUS=ready\n");
}

/// `--watchdog`: keep-alives every half of `$WATCHDOG_USEC`, from a thread of their own,
/// until `--watchdog-stop-after` pings were sent or `--watchdog-trigger-after` is due.
pub(crate) fn start_watchdog(cfg: &Config) {
    let name = cfg.name.clone();
    let usec = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&u| u > 0);
    let Some(usec) = usec else {
        warn!("fixture {name}: warning: --watchdog given but WATCHDOG_USEC is not set");
        return;
    };
    let pid = process::id();
    let watchdog_pid = std::env::var("WATCHDOG_PID").ok();
    // What sd_watchdog_enabled() does: a WATCHDOG_PID of another process means "not you".
    if let Some(p) = &watchdog_pid
        && p.trim().parse::<u32>().ok() != Some(pid)
    {
        warn!(
            "fixture {name}: warning: WATCHDOG_PID={p} is not this process ({pid}); no keep-alives"
        );
        return;
    }
    say!(
        "fixture {name}: watchdog every {usec} us, WATCHDOG_PID={}, pid {pid}",
        watchdog_pid.as_deref().unwrap_or("unset")
    );
    let every = Duration::from_micros(usec) / 2;
    let stop_after = cfg.watchdog_stop_after;
    let trigger_at = cfg.watchdog_trigger_after.map(|d| Instant::now() + d);
    thread::spawn(move || {
        let mut sent = 0u64;
        let mut next = Instant::now();
        loop {
            if let Some(at) = trigger_at.filter(|&at| at <= next) {
                park_until(at);
                sd_notify(&name, "--watchdog-trigger-after", "WATCHDOG=trigger\n");
                say!("fixture {name}: watchdog trigger sent");
                return;
            }
            if stop_after.is_some_and(|n| sent >= n) {
                say!("fixture {name}: watchdog stopped after {sent}");
                if let Some(at) = trigger_at {
                    park_until(at);
                    sd_notify(&name, "--watchdog-trigger-after", "WATCHDOG=trigger\n");
                    say!("fixture {name}: watchdog trigger sent");
                }
                return;
            }
            park_until(next);
            sd_notify(&name, "--watchdog", "WATCHDOG=1\n");
            sent += 1;
            next += every;
        }
    });
}

/// Sends one datagram to `$NOTIFY_SOCKET`; warns (naming `flag`) when it cannot.
pub(crate) fn sd_notify(name: &str, flag: &str, message: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        warn!("fixture {name}: warning: {flag} given but NOTIFY_SOCKET is not set");
        return;
    };
    let result =
        UnixDatagram::unbound().and_then(|sock| send_notify(&sock, &target, message.as_bytes()));
    if let Err(e) = result {
        warn!(
            "fixture {name}: warning: cannot notify {}: {e}",
            target.to_string_lossy()
        );
    }
}

fn send_notify(sock: &UnixDatagram, target: &OsString, message: &[u8]) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = target.as_bytes();
    if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        send_abstract(sock, abstract_name, message)
    } else {
        sock.send_to(message, target).map(drop)
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(sock: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(message, &addr).map(drop)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_sock: &UnixDatagram, _name: &[u8], _message: &[u8]) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract unix sockets need Linux",
    ))
}

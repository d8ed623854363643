//! Listening: `host:port` over TCP or `unix:PATH` over a Unix socket (mode 0600), with a
//! graceful shutdown that also ends open event streams and is bounded in time.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::response::IntoResponse as _;
use axum::{Extension, Router};
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::events::ShutdownSignal;
use crate::slots::{Slots, StreamSlots, Tracked};

/// After the shutdown signal, connections get this long to finish before the server stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound listener, so a caller can learn the real address (port 0) before serving.
#[derive(Debug)]
pub enum ApiListener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

impl ApiListener {
    /// The address in the same syntax `bind` takes: `127.0.0.1:7070` or `unix:/path/api.sock`.
    pub fn local_addr(&self) -> io::Result<String> {
        match self {
            ApiListener::Tcp(l) => l.local_addr().map(|a| a.to_string()),
            ApiListener::Unix { path, .. } => Ok(format!("unix:{}", path.display())),
        }
    }
}

fn context(addr: &str, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
}

/// Binds `host:port` (TCP) or `unix:PATH`.
///
/// For a Unix socket, a stale socket file left by a dead instance is removed first; a live one
/// (something accepts connections on it) is an `AddrInUse` error, and a path that exists but is
/// not a socket is never removed. The socket is made mode 0600: owner only, like the token file.
pub async fn bind(addr: &str) -> io::Result<ApiListener> {
    if let Some(path) = addr.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "`unix:` needs a path, e.g. unix:.gantry/api.sock",
            ));
        }
        let path = PathBuf::from(path);
        remove_stale_socket(&path).map_err(|e| context(addr, &e))?;
        let listener = UnixListener::bind(&path).map_err(|e| context(addr, &e))?;
        // There is a short window between bind and chmod in which the socket has the umask's
        // mode; the state dir it normally lives in is private to the owner, which covers it.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| context(addr, &e))?;
        return Ok(ApiListener::Unix { listener, path });
    }
    if addr.trim().is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the API address is empty; expected host:port or unix:PATH",
        ));
    }
    TcpListener::bind(addr)
        .await
        .map(ApiListener::Tcp)
        .map_err(|e| context(addr, &e))
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to remove it",
                path.display()
            ),
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another process is serving on {}; stop it or pick another path",
                path.display()
            ),
        ));
    }
    std::fs::remove_file(path)
}

/// Serves `router` on `addr` (`host:port` or `unix:PATH`) until `shutdown` completes.
pub async fn serve(
    addr: &str,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = bind(addr).await?;
    serve_on(listener, router, shutdown).await
}

/// Limits of gantry's own API server against hostile or careless clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at once. When all are taken, a newcomer takes the slot of the
    /// connection that has waited longest without a request in progress (it is closed);
    /// only when every connection is busy is the newcomer closed at accept.
    pub max_connections: usize,
    /// A request head must arrive within this; an idle keep-alive connection is closed
    /// after it too.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves on an already bound listener (see [`bind`]) until `shutdown` completes, with the
/// default [`Limits`].
pub async fn serve_on(
    listener: ApiListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, router, shutdown, Limits::default()).await
}

/// Serves on an already bound listener until `shutdown` completes. Open event streams end
/// at the signal, and the server stops at most [`SHUTDOWN_GRACE`] later. A Unix socket file
/// is removed when serving ends.
///
/// Hardened for a socket other local users (or, through DNS rebinding, a web page) can
/// reach: at most `limits.max_connections` connections, a header-read and idle timeout, a
/// `Host` header that must name an IP address or `localhost` (see [`host_allowed`]), and
/// an accept loop that backs off when gantry is out of descriptors instead of spinning.
pub async fn serve_with(
    listener: ApiListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> io::Result<()> {
    let (tx, rx) = watch::channel(false);
    let router = router
        .layer(axum::middleware::from_fn(host_guard))
        .layer(Extension(ShutdownSignal(rx.clone())));
    let slots = Slots::new(limits.max_connections);
    // Event streams may keep at most a quarter of the connections busy.
    let router = router.layer(Extension(StreamSlots::new(limits.max_connections / 4)));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::ZERO;
    let mut accepted_in_row: u32 = 0;
    let path = match &listener {
        ApiListener::Unix { path, .. } => Some(path.clone()),
        ApiListener::Tcp(_) => None,
    };
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = accept(&listener) => a,
        };
        let (io, tcp) = match accepted {
            Ok(io) => {
                backoff = Duration::ZERO;
                // A burst of connections (an attack) must not hold the loop: other tasks —
                // requests in progress, the supervisor's own work — get a turn every few
                // accepts instead of after tokio's whole cooperative budget.
                accepted_in_row = accepted_in_row.wrapping_add(1);
                if accepted_in_row.is_multiple_of(8) {
                    tokio::task::yield_now().await;
                }
                io
            }
            Err(e) => {
                if is_resource_error(&e) {
                    // Out of descriptors or memory: give the connections in flight time to
                    // finish instead of spinning on accept (and never starve the loop).
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    tokio::time::sleep(backoff).await;
                }
                continue;
            }
        };
        let Ok(slot) = slots.admit() else {
            // Every connection has a request in progress: this one is closed at once.
            drop(io);
            continue;
        };
        let service = Tracked {
            inner: hyper_util::service::TowerToHyperService::new(router.clone()),
            slots: slots.clone(),
            track: slot.track.clone(),
        };
        let mut down = rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(io, service).with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let stopping = tokio::select! {
                _ = conn.as_mut() => false,
                r = down.wait_for(|d| *d) => r.is_ok(),
                // Evicted for a newcomer: closed at once unless a request raced in, which
                // is finished first.
                () = slot.track.evict.notified() => {
                    if !slot.track.has_spoken() {
                        // It never sent a request (an attacker's, most likely): reset it
                        // instead of a FIN handshake, the cheaper close under a flood.
                        if let Some(tcp) = &tcp {
                            let _ = tcp.set_zero_linger();
                        }
                        return;
                    }
                    true
                }
            };
            if stopping {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
            }
            drop(slot);
        });
    }
    let _ = tx.send(true);
    // Connections finish within the grace (event streams end at the signal).
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while slots.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(path) = path {
        // Leave no socket file behind for the next instance to trip over.
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// One accepted connection, TCP or Unix, as hyper's I/O. The TCP stream is shared so the
/// connection's task can still reach its socket options once hyper owns it.
enum Conn {
    Tcp(Arc<tokio::net::TcpStream>),
    Unix(tokio::net::UnixStream),
}

type Accepted = (
    hyper_util::rt::TokioIo<Conn>,
    Option<Arc<tokio::net::TcpStream>>,
);

async fn accept(listener: &ApiListener) -> io::Result<Accepted> {
    Ok(match listener {
        ApiListener::Tcp(l) => {
            let stream = Arc::new(l.accept().await?.0);
            let tcp = Some(stream.clone());
            (hyper_util::rt::TokioIo::new(Conn::Tcp(stream)), tcp)
        }
        ApiListener::Unix { listener, .. } => (
            hyper_util::rt::TokioIo::new(Conn::Unix(listener.accept().await?.0)),
            None,
        ),
    })
}

/// Reads from a shared TCP stream: wait until readable, then read without blocking.
fn poll_read_shared(
    s: &tokio::net::TcpStream,
    cx: &mut std::task::Context<'_>,
    buf: &mut tokio::io::ReadBuf<'_>,
) -> std::task::Poll<io::Result<()>> {
    loop {
        std::task::ready!(s.poll_read_ready(cx))?;
        match s.try_read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                return std::task::Poll::Ready(Ok(()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return std::task::Poll::Ready(Err(e)),
        }
    }
}

/// Writes to a shared TCP stream: wait until writable, then write without blocking.
fn poll_write_shared(
    s: &tokio::net::TcpStream,
    cx: &mut std::task::Context<'_>,
    buf: &[u8],
) -> std::task::Poll<io::Result<usize>> {
    loop {
        std::task::ready!(s.poll_write_ready(cx))?;
        match s.try_write(buf) {
            Ok(n) => return std::task::Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return std::task::Poll::Ready(Err(e)),
        }
    }
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => poll_read_shared(s, cx, buf),
            Conn::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => poll_write_shared(s, cx, buf),
            Conn::Unix(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(_) => std::task::Poll::Ready(Ok(())),
            Conn::Unix(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            // The write half's FIN; reads stay open, as tokio's own shutdown does.
            Conn::Tcp(s) => std::task::Poll::Ready(
                socket2::SockRef::from(&**s).shutdown(std::net::Shutdown::Write),
            ),
            Conn::Unix(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: the machine (or gantry) is out of something.
fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM)
    )
}

/// The errno values of [`is_resource_error`] (Linux).
mod libc_errno {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

/// Whether a request's `Host` may reach gantry's API: absent (HTTP/1.0, a Unix socket
/// client), an IP address literal (with or without a port), or `localhost`. A DNS name is
/// refused: a web page that rebinds its own name to 127.0.0.1 sends that name, so it
/// cannot read the API from an operator's browser.
pub fn host_allowed(host: Option<&str>) -> bool {
    let Some(host) = host else { return true };
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        match rest.split_once(']') {
            Some((v6, tail)) if tail.is_empty() || tail.starts_with(':') => {
                return v6.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.parse::<u16>().is_ok() => name,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

async fn host_guard(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"));
    if host_allowed(host) {
        return next.run(request).await;
    }
    crate::error::ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "this API answers only requests addressed to an IP address or localhost (Host header)",
        "connect to the address in the state dir's api.addr, e.g. http://127.0.0.1:7070/",
    )
    .into_response()
}

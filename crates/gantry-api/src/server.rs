//! Listening: `host:port` over TCP or `unix:PATH` over a Unix socket (mode 0600), with a
//! graceful shutdown that also ends open event streams and is bounded in time.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::{Extension, Router};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::api::ShutdownSignal;

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

/// Serves on an already bound listener (see [`bind`]) until `shutdown` completes. Open event
/// streams end at the signal, and the server stops at most [`SHUTDOWN_GRACE`] later. A Unix
/// socket file is removed when serving ends.
pub async fn serve_on(
    listener: ApiListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (tx, rx) = watch::channel(false);
    let router = router.layer(Extension(ShutdownSignal(rx.clone())));
    let signal = async move {
        shutdown.await;
        let _ = tx.send(true);
    };
    let grace = async move {
        let mut rx = rx;
        if rx.wait_for(|down| *down).await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    match listener {
        ApiListener::Tcp(l) => {
            tokio::select! {
                r = axum::serve(l, router).with_graceful_shutdown(signal).into_future() => r,
                () = grace => Ok(()),
            }
        }
        ApiListener::Unix { listener, path } => {
            let r = tokio::select! {
                r = axum::serve(listener, router).with_graceful_shutdown(signal).into_future() => r,
                () = grace => Ok(()),
            };
            // Leave no socket file behind for the next instance to trip over.
            let _ = std::fs::remove_file(&path);
            r
        }
    }
}

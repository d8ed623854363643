//! The access log: JSON lines written by a task of its own through a bounded channel; a
//! full channel drops the line and counts it (a request never waits for the disk). Only
//! the method, path (no query), status, time, instance and client address are written —
//! never a header, so Authorization, Cookie and Set-Cookie cannot leak.

use http::Method;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// One request as logged.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) route: usize,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) micros: u64,
    pub(crate) instance: Option<String>,
    pub(crate) client: IpAddr,
}

/// The sending half, cheap to use from every request.
#[derive(Debug)]
pub(crate) struct AccessLog {
    tx: mpsc::Sender<Line>,
    pub(crate) dropped: Arc<AtomicU64>,
    /// Tells the writer to write what is queued and stop (at shutdown; the senders live on).
    pub(crate) closing: Arc<tokio::sync::Notify>,
}

impl AccessLog {
    pub(crate) fn send(&self, line: Line) {
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Opens the file (append, created if missing) and returns the sender and the writer task.
pub(crate) fn open(
    path: &Path,
    routes: Vec<String>,
) -> std::io::Result<(
    AccessLog,
    impl std::future::Future<Output = ()> + Send + 'static,
)> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let (tx, mut rx) = mpsc::channel::<Line>(8192);
    let dropped = Arc::new(AtomicU64::new(0));
    let closing = Arc::new(tokio::sync::Notify::new());
    let close = closing.clone();
    let task = async move {
        let mut out =
            tokio::io::BufWriter::with_capacity(64 * 1024, tokio::fs::File::from_std(file));
        let mut buf = Vec::with_capacity(512);
        let mut closing = false;
        loop {
            let first = if closing {
                rx.try_recv().ok()
            } else {
                tokio::select! {
                    l = rx.recv() => l,
                    () = close.notified() => {
                        closing = true;
                        rx.try_recv().ok()
                    }
                }
            };
            let Some(first) = first else { break };
            let mut next = Some(first);
            while let Some(l) = next {
                buf.clear();
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                let v = serde_json::json!({
                    "ts_ms": ts,
                    "route": routes.get(l.route).map(String::as_str).unwrap_or(""),
                    "method": l.method.as_str(),
                    "path": l.path,
                    "status": l.status,
                    "duration_us": l.micros,
                    "instance": l.instance,
                    "client": l.client.to_string(),
                });
                if serde_json::to_writer(&mut buf, &v).is_ok() {
                    buf.push(b'\n');
                    if out.write_all(&buf).await.is_err() {
                        return;
                    }
                }
                next = rx.try_recv().ok();
            }
            if out.flush().await.is_err() {
                return;
            }
        }
        let _ = out.flush().await;
    };
    Ok((
        AccessLog {
            tx,
            dropped,
            closing,
        },
        task,
    ))
}

//! The upstream keep-alive pool: HTTP/1.1 connections per instance, kept per proxy thread
//! (no lock on the request path), handed back when a response body has ended cleanly.

use crate::proxy::ProxyBody;
use crate::upstream::InstanceState;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The pool's settings (one pool serves every route of the ingress).
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_idle: usize,
}

struct Idle {
    send: http1::SendRequest<ProxyBody>,
    since: Instant,
}

thread_local! {
    /// This thread's idle connections by upstream address (a short list, one per instance:
    /// a linear search beats hashing the address). Each proxy thread runs its own
    /// current-thread runtime, so a connection is only ever used by the thread that made it.
    static IDLE: RefCell<Vec<(SocketAddr, Vec<Idle>)>> = const { RefCell::new(Vec::new()) };
}

/// Why a request got no response.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made (nothing was sent).
    Connect(std::io::Error),
    /// The connection failed (the request may have reached the upstream).
    Http(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Http(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Connect(e) => Some(e),
            SendError::Http(e) => Some(e),
        }
    }
}

/// A connection on loan to one response; back to the pool when its body ended cleanly.
pub(crate) struct Lease {
    send: Option<http1::SendRequest<ProxyBody>>,
    addr: SocketAddr,
    pool: Pool,
    reusable: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(send) = self.send.take()
            && self.reusable
            && !send.is_closed()
        {
            self.pool.put(self.addr, send);
        }
    }
}

impl Pool {
    fn take(&self, addr: SocketAddr, now: Instant) -> Option<http1::SendRequest<ProxyBody>> {
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let list = &mut idle.iter_mut().find(|(a, _)| *a == addr)?.1;
            // The most recently used first: its socket is warm and least likely closed.
            while let Some(i) = list.pop() {
                if !i.send.is_closed() && now.saturating_duration_since(i.since) < self.idle_timeout
                {
                    return Some(i.send);
                }
            }
            None
        })
    }

    fn put(&self, addr: SocketAddr, send: http1::SendRequest<ProxyBody>) {
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let list = match idle.iter().position(|(a, _)| *a == addr) {
                Some(i) => &mut idle[i].1,
                None => {
                    // Forget the addresses whose lists emptied (instances replaced).
                    idle.retain(|(_, l)| !l.is_empty());
                    idle.push((addr, Vec::new()));
                    &mut idle.last_mut().expect("just pushed").1
                }
            };
            if list.len() >= self.max_idle {
                // Full: drop the ones that closed or idled out; if still full, close this one.
                let timeout = self.idle_timeout;
                list.retain(|i| !i.send.is_closed() && i.since.elapsed() < timeout);
                if list.len() >= self.max_idle {
                    return;
                }
            }
            list.push(Idle {
                send,
                since: Instant::now(),
            });
        });
    }

    /// Sends `req` to `inst` on an idle connection, or a new one. A pooled connection that
    /// turns out closed before the request was written is skipped without using up a try.
    /// `now` is the caller's clock reading (idle connections older than the timeout go).
    pub(crate) async fn send(
        &self,
        inst: &Arc<InstanceState>,
        mut req: http::Request<ProxyBody>,
        connect_timeout: Duration,
        now: Instant,
    ) -> Result<(http::Response<Incoming>, Lease), SendError> {
        while let Some(mut send) = self.take(inst.addr, now) {
            if send.ready().await.is_err() {
                continue;
            }
            match send.try_send_request(req).await {
                Ok(resp) => {
                    let lease = self.lease(inst.addr, send, resp.status());
                    return Ok((resp, lease));
                }
                Err(mut e) => match e.take_message() {
                    Some(r) => req = r,
                    None => return Err(SendError::Http(e.into_error())),
                },
            }
        }
        let mut send = self.connect(inst, connect_timeout).await?;
        match send.send_request(req).await {
            Ok(resp) => {
                let lease = self.lease(inst.addr, send, resp.status());
                Ok((resp, lease))
            }
            Err(e) => Err(SendError::Http(e)),
        }
    }

    fn lease(
        &self,
        addr: SocketAddr,
        send: http1::SendRequest<ProxyBody>,
        status: http::StatusCode,
    ) -> Lease {
        Lease {
            send: Some(send),
            addr,
            pool: self.clone(),
            // An upgraded connection belongs to the upgrade.
            reusable: status != http::StatusCode::SWITCHING_PROTOCOLS,
        }
    }

    async fn connect(
        &self,
        inst: &Arc<InstanceState>,
        timeout: Duration,
    ) -> Result<http1::SendRequest<ProxyBody>, SendError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(inst.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(SendError::Connect(e)),
            Err(_) => {
                return Err(SendError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {timeout:?}"),
                )));
            }
        };
        let _ = stream.set_nodelay(true);
        let io = Counted::new(stream, inst.connections.clone());
        let (send, conn) = http1::Builder::new()
            // One buffer per request, as toward the client (server.rs).
            .writev(false)
            .handshake(io)
            .await
            .map_err(SendError::Http)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(send)
    }
}

/// An upstream connection that decrements its instance's count when closed.
pub(crate) struct Counted {
    io: TokioIo<TcpStream>,
    counter: Arc<AtomicU64>,
}

impl Counted {
    fn new(stream: TcpStream, counter: Arc<AtomicU64>) -> Self {
        counter.fetch_add(1, Relaxed);
        Counted {
            io: TokioIo::new(stream),
            counter,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Relaxed);
    }
}

impl hyper::rt::Read for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// The upstream's response body, holding the connection's lease and whatever else must live
/// until the body is done (the in-flight guards).
pub(crate) struct Leased<G> {
    pub(crate) inner: Incoming,
    pub(crate) lease: Lease,
    /// The body returned its end (`is_end_stream` alone misses the end of a chunked body).
    pub(crate) ended: bool,
    pub(crate) _guards: G,
}

impl<G: Unpin> Body for Leased<G> {
    type Data = bytes::Bytes;
    type Error = crate::proxy::BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Err(_))) => self.lease.reusable = false,
            Poll::Ready(None) => self.ended = true,
            _ => {}
        }
        r.map_err(Into::into)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<G> Drop for Leased<G> {
    fn drop(&mut self) {
        // A body dropped before its end leaves the connection mid-message: not reusable.
        if !self.ended && !self.inner.is_end_stream() {
            self.lease.reusable = false;
        }
    }
}

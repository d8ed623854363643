//! The listening side: binding, TLS (rustls), hyper's HTTP/1 server with the header size
//! and slowloris limits, upgrades, and graceful shutdown of every connection.

use crate::StartError;
use crate::config::{Limits, TlsFiles};
use crate::proxy::{Conn, Shared, handle};
use crate::timer::{Coarse, HyperTimer};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio_rustls::TlsAcceptor;

/// Loads a TLS listener's certificate chain and key.
pub(crate) fn tls_acceptor(addr: SocketAddr, files: &TlsFiles) -> Result<TlsAcceptor, StartError> {
    let bad = |what: String| StartError::Tls {
        addr,
        message: what,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| {
            bad(format!(
                "cannot read certificate file {}: {e}",
                files.cert.display()
            ))
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            bad(format!(
                "certificate file {} is not valid PEM: {e}",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(bad(format!(
            "certificate file {} holds no CERTIFICATE block; give a PEM chain, leaf first",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        bad(format!(
            "cannot read a private key from {}: {e}; give a PEM PKCS#8, PKCS#1 or SEC1 key",
            files.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            bad(format!(
                "certificate {} and key {} do not make a usable pair: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// Binds one socket (not listening yet: see [`listen`]); with `reuse_port`, several can share
/// the address, one per thread. A bound socket reserves the port, so a taken address is an
/// error at start even when listening waits for the boot.
pub(crate) fn bind_std(addr: SocketAddr, reuse_port: bool) -> Result<socket2::Socket, StartError> {
    let err = |e: std::io::Error| StartError::Bind { addr, source: e };
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(err)?;
    sock.set_reuse_address(true).map_err(err)?;
    if reuse_port {
        sock.set_reuse_port(true).map_err(err)?;
    }
    sock.set_nonblocking(true).map_err(err)?;
    sock.bind(&addr.into()).map_err(err)?;
    Ok(sock)
}

/// Starts listening with a deep accept queue and hands the socket over as a std listener,
/// for any runtime to adopt.
pub(crate) fn listen(sock: socket2::Socket) -> std::io::Result<std::net::TcpListener> {
    sock.listen(4096)?;
    Ok(sock.into())
}

/// Counts live connections so shutdown can wait for them.
#[derive(Default)]
pub(crate) struct ConnTracker {
    live: AtomicUsize,
    gone: Notify,
}

impl ConnTracker {
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.gone.notified();
            if self.live.load(SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One live connection: counted by the tracker and, with several threads, by its
/// thread's share of the balance.
struct Live(Arc<ConnTracker>, Option<(Arc<Balance>, usize)>);

impl Drop for Live {
    fn drop(&mut self) {
        if let Some((b, me)) = &self.1 {
            b.live[*me].fetch_sub(1, SeqCst);
        }
        if self.0.live.fetch_sub(1, SeqCst) == 1 {
            self.0.gone.notify_waiters();
        }
    }
}

/// What one proxy thread serves connections with: shared by its listeners' accept loops
/// and the connections other threads hand it.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) limits: Limits,
    pub(crate) tracker: Arc<ConnTracker>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) balance: Option<Arc<Balance>>,
    /// This thread's index in `balance`.
    pub(crate) me: usize,
}

/// Connections spread evenly over the proxy threads. Each thread accepts on its own
/// `SO_REUSEPORT` socket, and the kernel picks the socket by a hash of the connection:
/// 50 connections came out as 29 and 21, and the busier thread's queue set the p99
/// (bench/README.md, Ingress). A thread that holds more connections than another hands a
/// new one over, before its first byte is read; requests never cross threads.
pub(crate) struct Balance {
    live: Vec<AtomicUsize>,
    inboxes: Vec<mpsc::UnboundedSender<Handoff>>,
}

/// An accepted connection on its way to another proxy thread.
pub(crate) struct Handoff {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    /// Which of the thread's listeners accepted it (its TLS settings).
    listener: usize,
}

impl Balance {
    /// A balance over `threads` threads, and each thread's inbox.
    pub(crate) fn new(threads: usize) -> (Arc<Balance>, Vec<mpsc::UnboundedReceiver<Handoff>>) {
        let (inboxes, rxs) = (0..threads).map(|_| mpsc::unbounded_channel()).unzip();
        let live = (0..threads).map(|_| AtomicUsize::new(0)).collect();
        (Arc::new(Balance { live, inboxes }), rxs)
    }

    /// The thread with the fewest connections, when it has fewer than `me`.
    fn lighter(&self, me: usize) -> Option<usize> {
        let mine = self.live[me].load(SeqCst);
        let (to, least) = self
            .live
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.load(SeqCst)))
            .min_by_key(|&(_, n)| n)?;
        (to != me && least < mine).then_some(to)
    }
}

/// Serves the connections other threads hand this one (see [`Balance`]).
pub(crate) async fn handoffs(
    mut inbox: mpsc::UnboundedReceiver<Handoff>,
    tls: Vec<Option<TlsAcceptor>>,
    ctx: Ctx,
) {
    let timer = Coarse::start();
    let builder = builder(&ctx.limits, &timer);
    let mut stop = ctx.stop.clone();
    loop {
        let h = tokio::select! {
            h = inbox.recv() => match h {
                Some(h) => h,
                None => return,
            },
            _ = stop.changed() => return,
        };
        let Ok(stream) = tokio::net::TcpStream::from_std(h.stream) else {
            if let Some(b) = &ctx.balance {
                b.live[ctx.me].fetch_sub(1, SeqCst);
            }
            continue;
        };
        let acceptor = tls.get(h.listener).cloned().flatten();
        // Counted for this thread by the one that handed it over.
        spawn_conn(stream, h.peer, acceptor, &ctx, &builder, &timer, true);
    }
}

fn builder(limits: &Limits, timer: &Coarse) -> Arc<http1::Builder> {
    let mut builder = http1::Builder::new();
    builder
        .timer(HyperTimer(timer.clone()))
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true)
        // The end of a client's request stream is not an abort: a client that shuts down its
        // sending side once the request is out still gets the answer. It also spares hyper a
        // read while each request is in flight, which reserved a fresh 8 KiB buffer every time
        // (3 % of a request's instructions, bench/README.md). A client gone for good is seen
        // when its answer is written, or at the route's request timeout.
        .half_close(true)
        // A response's head and body in one buffer and one `write`, not a `writev` of two:
        // 4 % less CPU per small request (bench/README.md, ingress, seventh round). A large
        // body is copied once more in user space for it.
        .writev(false);
    Arc::new(builder)
}

/// Accepts until `stop` changes; each connection is served on its own task (on this
/// thread, or on a thread with fewer connections).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    index: usize,
    tls: Option<TlsAcceptor>,
    ctx: Ctx,
) {
    let timer = Coarse::start();
    let builder = builder(&ctx.limits, &timer);
    let mut stop = ctx.stop.clone();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                // Out of descriptors and the like: back off a little, keep serving.
                Err(_) => { tokio::time::sleep(std::time::Duration::from_millis(10)).await; continue; }
            },
            _ = stop.changed() => return,
        };
        if let Some(b) = &ctx.balance
            && let Some(to) = b.lighter(ctx.me)
        {
            // A stream that cannot leave this runtime is dropped (its client reconnects).
            if let Ok(stream) = stream.into_std() {
                // Counted for the other thread now, so the next accepts see it.
                b.live[to].fetch_add(1, SeqCst);
                let h = Handoff {
                    stream,
                    peer,
                    listener: index,
                };
                // Only fails once that thread has stopped: serve it here then.
                if let Err(back) = b.inboxes[to].send(h) {
                    b.live[to].fetch_sub(1, SeqCst);
                    if let Ok(s) = tokio::net::TcpStream::from_std(back.0.stream) {
                        spawn_conn(s, peer, tls.clone(), &ctx, &builder, &timer, false);
                    }
                }
            }
            continue;
        }
        spawn_conn(stream, peer, tls.clone(), &ctx, &builder, &timer, false);
    }
}

/// Serves one connection on its own task, counted for shutdown and for the balance.
fn spawn_conn(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    ctx: &Ctx,
    builder: &Arc<http1::Builder>,
    timer: &Coarse,
    counted: bool,
) {
    let _ = stream.set_nodelay(true);
    ctx.tracker.live.fetch_add(1, SeqCst);
    if let Some(b) = &ctx.balance
        && !counted
    {
        b.live[ctx.me].fetch_add(1, SeqCst);
    }
    let live = Live(
        ctx.tracker.clone(),
        ctx.balance.clone().map(|b| (b, ctx.me)),
    );
    let shared = ctx.shared.clone();
    let builder = builder.clone();
    let stop = ctx.stop.clone();
    let timer = timer.clone();
    let hs_timeout = ctx.limits.header_read_timeout;
    tokio::spawn(async move {
        let _live = live;
        match tls {
            None => {
                serve(
                    builder,
                    TokioIo::new(stream),
                    shared,
                    peer,
                    false,
                    timer,
                    stop,
                )
                .await
            }
            Some(acc) => {
                if let Ok(Ok(s)) = tokio::time::timeout(hs_timeout, acc.accept(stream)).await {
                    serve(builder, TokioIo::new(s), shared, peer, true, timer, stop).await;
                }
            }
        }
    });
}

async fn serve<I>(
    builder: Arc<http1::Builder>,
    io: I,
    shared: Arc<Shared>,
    peer: SocketAddr,
    tls: bool,
    timer: Coarse,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = Arc::new(Conn::new(peer, tls, timer));
    let svc = service_fn(move |req| handle(shared.clone(), req, conn.clone()));
    let conn = builder.serve_connection(io, svc).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_goes_to_a_thread_with_fewer_and_stays_when_even() {
        let (b, _inboxes) = Balance::new(3);
        let set = |counts: [usize; 3]| {
            for (i, n) in counts.iter().enumerate() {
                b.live[i].store(*n, SeqCst);
            }
        };
        set([0, 0, 0]);
        assert_eq!(b.lighter(0), None, "even: served where accepted");
        assert_eq!(b.lighter(2), None);
        set([3, 2, 3]);
        assert_eq!(b.lighter(0), Some(1));
        assert_eq!(b.lighter(2), Some(1));
        assert_eq!(b.lighter(1), None, "the lightest keeps its own");
        set([5, 5, 4]);
        assert_eq!(b.lighter(1), Some(2));
    }

    #[tokio::test]
    async fn handed_off_connections_even_out_29_and_21() {
        // What the kernel's hash did to 50 connections: every accept on the busier thread
        // goes over until the two are even.
        let (b, mut inboxes) = Balance::new(2);
        b.live[0].store(29, SeqCst);
        b.live[1].store(21, SeqCst);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut moved = 0;
        for _ in 0..10 {
            let _client = std::net::TcpStream::connect(addr).unwrap();
            let (stream, peer) = listener.accept().unwrap();
            if let Some(to) = b.lighter(0) {
                b.live[to].fetch_add(1, SeqCst);
                b.inboxes[to]
                    .send(Handoff {
                        stream,
                        peer,
                        listener: 0,
                    })
                    .map_err(|_| ())
                    .unwrap();
                moved += 1;
            } else {
                b.live[0].fetch_add(1, SeqCst);
            }
        }
        // 8 over (29/29), one kept (30/29), one over (30/30).
        assert_eq!(moved, 9);
        assert_eq!(b.live[0].load(SeqCst), 30);
        assert_eq!(b.live[1].load(SeqCst), 30);
        let mut got = 0;
        while inboxes[1].try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 9);
    }
}

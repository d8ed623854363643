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
use tokio::sync::{Notify, watch};
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

struct Live(Arc<ConnTracker>);

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, SeqCst) == 1 {
            self.0.gone.notify_waiters();
        }
    }
}

/// Accepts until `stop` changes; each connection is served on its own task.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    limits: Limits,
    tracker: Arc<ConnTracker>,
    mut stop: watch::Receiver<bool>,
) {
    let timer = Coarse::start();
    let mut builder = http1::Builder::new();
    builder
        .timer(HyperTimer(timer.clone()))
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                // Out of descriptors and the like: back off a little, keep serving.
                Err(_) => { tokio::time::sleep(std::time::Duration::from_millis(10)).await; continue; }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        tracker.live.fetch_add(1, SeqCst);
        let live = Live(tracker.clone());
        let shared = shared.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        let timer = timer.clone();
        let hs_timeout = limits.header_read_timeout;
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

//! The upstream keep-alive pool against a hand-written HTTP/1.1 upstream: one connection is
//! reused across fixed-length and chunked bodies, and a connection the upstream closed is
//! never used for a request (a POST, which is never retried, sees no error).

mod common;

use common::*;
use gantry_ingress::{RouteConfig, RuntimeFlavor};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A raw upstream: counts accepted connections; answers every request (reading its
/// Content-Length body) alternately with a fixed-length and a chunked body; with
/// `close_after` it closes the connection after each response without saying so.
async fn raw_upstream(close_after: bool) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let acc = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            acc.fetch_add(1, SeqCst);
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                let mut n = 0u64;
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    // Request line and headers.
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    n += 1;
                    let resp = if n.is_multiple_of(2) {
                        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_owned()
                    } else {
                        "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world".to_owned()
                    };
                    if w.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                    if close_after {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_serves_sequential_requests_with_fixed_and_chunked_bodies() {
    let (up, accepted) = raw_upstream(false).await;
    // One proxy thread: each thread keeps its own pool.
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    cfg.runtime = RuntimeFlavor::Threads { threads: 1 };
    let (h, addr) = start(cfg);
    h.set_instances("api", vec![inst("api#1", up)]);
    h.set_open(true);
    let cl = client();
    for i in 0..30 {
        let method = if i % 3 == 0 { "POST" } else { "GET" };
        let r = send(&cl, method, addr, "/x", &[], "payload").await;
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
        assert_eq!(r.body, "hello world");
    }
    assert_eq!(
        accepted.load(SeqCst),
        1,
        "every request after the first reuses the pooled connection"
    );
    assert_eq!(h.snapshot().instances[0].connections, 1);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_upstream_closed_is_never_used() {
    let (up, accepted) = raw_upstream(true).await;
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances("api", vec![inst("api#1", up)]);
    h.set_open(true);
    let cl = client();
    for i in 0..20 {
        let r = send(&cl, "POST", addr, "/x", &[], "payload").await;
        assert_eq!(r.status, 200, "POST {i}: {}", r.body);
        // The upstream closed it: once the pool has seen that, the next POST must not use it.
        assert!(
            wait_until(5, || h.snapshot().instances[0].connections == 0).await,
            "the closed connection is let go"
        );
    }
    assert_eq!(accepted.load(SeqCst), 20, "a new connection per request");
    h.shutdown();
}

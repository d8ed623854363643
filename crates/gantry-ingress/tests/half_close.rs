//! Clients that shut down their sending side once the request is out (`shutdown(SHUT_WR)`, as
//! `curl --no-keepalive`-style scripts, `nc -N` and some HTTP/1.0 clients do) still get the
//! whole answer: the end of the request stream is not taken for an abort.

mod common;

use common::*;
use gantry_ingress::RouteConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `request` on a fresh connection, shuts down the write side and reads to the end.
async fn half_closed(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the proxy neither answered nor closed within 10 s")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let up = upstream().await;
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);

    let get = half_closed(addr, "GET /hc?x=1 HTTP/1.1\r\nHost: a.example\r\n\r\n").await;
    assert!(get.starts_with("HTTP/1.1 200"), "{get:?}");
    assert!(
        get.contains("/hc?x=1"),
        "the upstream's answer is whole: {get:?}"
    );

    let post = half_closed(
        addr,
        "POST /hc HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 200"), "{post:?}");
    assert!(post.contains("\"method\":\"POST\""), "{post:?}");
    assert!(
        post.contains("\"body_len\":5"),
        "the body reached the upstream: {post:?}"
    );
    h.shutdown();
}

//! Test harness: a small counting hyper upstream on 127.0.0.1, a client, and an ingress
//! started on an ephemeral port.
#![allow(dead_code)]

use bytes::Bytes;
use gantry_ingress::{IngressConfig, IngressHandle, Instance, ListenerConfig, RouteConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// A running upstream: counts requests, answers with a JSON echo of what it saw.
pub struct Upstream {
    pub addr: SocketAddr,
    pub count: Arc<AtomicU64>,
    /// Status to answer with (200 by default).
    pub status: Arc<AtomicU16>,
    /// `/slow` waits for this before answering.
    pub release: Arc<Notify>,
    /// Requests currently waiting in `/slow`.
    pub waiting: Arc<AtomicU64>,
}

pub async fn upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let status = Arc::new(AtomicU16::new(200));
    let release = Arc::new(Notify::new());
    let waiting = Arc::new(AtomicU64::new(0));
    let (c, s, r, w) = (
        count.clone(),
        status.clone(),
        release.clone(),
        waiting.clone(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (c, s, r, w) = (c.clone(), s.clone(), r.clone(), w.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (c, s, r, w) = (c.clone(), s.clone(), r.clone(), w.clone());
                    async move { Ok::<_, Infallible>(answer(req, addr, &c, &s, &r, &w).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Upstream {
        addr,
        count,
        status,
        release,
        waiting,
    }
}

async fn answer(
    mut req: Request<Incoming>,
    addr: SocketAddr,
    count: &AtomicU64,
    status: &AtomicU16,
    release: &Notify,
    waiting: &AtomicU64,
) -> Response<Full<Bytes>> {
    count.fetch_add(1, SeqCst);
    if req.headers().get("upgrade").is_some() {
        let up = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(u) = up.await {
                let mut io = TokioIo::new(u);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        return Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    // 2 MiB of a known pattern: the proxy reads and writes it in many pieces.
    if req.uri().path().ends_with("/big") {
        return Response::builder()
            .header("content-type", "application/octet-stream")
            .body(Full::new(big_body(2 << 20)))
            .unwrap();
    }
    if req.uri().path().ends_with("/slow") {
        let notified = release.notified();
        waiting.fetch_add(1, SeqCst);
        notified.await;
        waiting.fetch_sub(1, SeqCst);
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let v = serde_json::json!({
        "upstream": addr.to_string(),
        "method": method,
        "uri": uri,
        "headers": headers,
        "body_len": body.len(),
    });
    Response::builder()
        .status(status.load(SeqCst))
        .header("content-type", "application/json")
        .header("connection", "x-up-secret")
        .header("x-up-secret", "1")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

/// An address nothing listens on (bound then released).
pub async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

pub fn inst(id: &str, addr: SocketAddr) -> Instance {
    Instance {
        id: id.into(),
        addr,
        ready: true,
    }
}

pub fn config(routes: Vec<RouteConfig>) -> IngressConfig {
    IngressConfig {
        listeners: vec![ListenerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
        }],
        routes,
        ..IngressConfig::default()
    }
}

pub fn start(cfg: IngressConfig) -> (IngressHandle, SocketAddr) {
    let h = gantry_ingress::start(cfg).expect("ingress starts");
    let addr = h.local_addrs()[0];
    (h, addr)
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
    /// Header names the upstream saw (lower case).
    pub fn seen_header(&self, name: &str) -> Option<String> {
        self.json()["headers"]
            .as_array()?
            .iter()
            .find_map(|p| (p[0].as_str()? == name).then(|| p[1].as_str().unwrap_or("").to_owned()))
    }
}

pub async fn send(
    c: &TestClient,
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let resp = c.request(req).await.expect("the ingress answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(c: &TestClient, addr: SocketAddr, path: &str) -> Answer {
    send(c, "GET", addr, path, &[], "").await
}

/// Polls `f` until it is true, for at most `secs` seconds.
pub async fn wait_until<F: FnMut() -> bool>(secs: u64, mut f: F) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    f()
}

/// `len` bytes of a pattern that shows any byte lost, repeated or moved (`/big` answers it).
pub fn big_body(len: usize) -> Bytes {
    (0..len)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz"[(i * 7 + i / 4096) % 36])
        .collect::<Vec<u8>>()
        .into()
}

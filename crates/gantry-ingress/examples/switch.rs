//! Switch latency: from `set_mode(WriteDrain)` on the handle to the first 503 a client sees
//! on a POST, over 200 switches (an in-process upstream and a keep-alive client on
//! 127.0.0.1). Prints p50, p99 and max in microseconds.

use bytes::Bytes;
use gantry_ingress::{IngressConfig, Instance, ListenerConfig, Mode, RouteConfig};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::time::Instant;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let up = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let svc = service_fn(|_r: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        let h = gantry_ingress::start(IngressConfig {
            listeners: vec![ListenerConfig {
                listen: "127.0.0.1:0".parse().expect("addr"),
                tls: None,
            }],
            routes: vec![RouteConfig::new("api", "/", "api")],
            ..IngressConfig::default()
        })
        .expect("ingress");
        h.set_instances(
            "api",
            vec![Instance {
                id: "api#1".into(),
                addr: up,
                ready: true,
            }],
        );
        h.set_open(true);
        let addr = h.local_addrs()[0];
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let post = || {
            let req = Request::post(format!("http://{addr}/orders"))
                .body(Full::new(Bytes::from_static(b"{}")))
                .expect("request");
            let c = client.clone();
            async move {
                let r = c.request(req).await.expect("answer");
                let s = r.status().as_u16();
                let _ = r.into_body().collect().await;
                s
            }
        };
        let mut lat = Vec::new();
        for _ in 0..200 {
            h.set_mode(Mode::Normal);
            assert_eq!(post().await, 200);
            let t0 = Instant::now();
            h.set_mode(Mode::WriteDrain);
            let mut n = 0;
            while post().await != 503 {
                n += 1;
                assert!(n < 1000, "write_drain never applied");
            }
            lat.push(t0.elapsed().as_micros() as u64);
        }
        lat.sort_unstable();
        let p = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).saturating_sub(1)];
        println!(
            "switch_to_first_503_us p50={} p99={} max={} (n={})",
            p(0.5),
            p(0.99),
            lat[lat.len() - 1],
            lat.len()
        );
        h.shutdown();
    });
}

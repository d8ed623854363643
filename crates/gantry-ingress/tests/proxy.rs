//! The ingress on real sockets: routing, the open gate, modes, header hygiene, limits,
//! retries, breakers, draining, upgrades and metrics.

mod common;

use common::*;
use gantry_ingress::{BreakerConfig, Instance, Mode, RouteConfig, Split, Sticky, Tally};
use std::future::Future;
use std::sync::atomic::Ordering::SeqCst;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_and_prefix_and_strips_prefix() {
    let (a, b, c) = (upstream().await, upstream().await, upstream().await);
    let mut api = RouteConfig::new("api", "/api", "api");
    api.strip_prefix = true;
    let mut admin = RouteConfig::new("admin", "/", "admin");
    admin.host = Some("admin.example".into());
    let web = RouteConfig::new("web", "/", "web");
    let (h, addr) = start(config(vec![api, admin, web]));
    h.set_instances("api", vec![inst("api#1", a.addr)]);
    h.set_instances("admin", vec![inst("admin#1", b.addr)]);
    h.set_instances("web", vec![inst("web#1", c.addr)]);
    h.set_open(true);
    let cl = client();

    let r = get(&cl, addr, "/api/users?x=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["upstream"], a.addr.to_string());
    assert_eq!(r.json()["uri"], "/users?x=1");

    let r = get(&cl, addr, "/apix").await;
    assert_eq!(
        r.json()["upstream"],
        c.addr.to_string(),
        "/apix is not under /api"
    );

    let r = send(
        &cl,
        "GET",
        addr,
        "/anything",
        &[("host", "ADMIN.example:8080")],
        "",
    )
    .await;
    assert_eq!(r.json()["upstream"], b.addr.to_string());
    assert_eq!(r.json()["uri"], "/anything");
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_503_before_open_and_without_a_ready_instance() {
    let up = upstream().await;
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    let cl = client();
    let r = get(&cl, addr, "/x").await;
    assert_eq!(r.status, 503);
    assert!(r.headers.contains_key("retry-after"));
    assert!(
        r.body.contains("not open yet") && r.body.contains("\"api\""),
        "{}",
        r.body
    );

    h.set_open(true);
    let r = get(&cl, addr, "/x").await;
    assert_eq!(r.status, 503, "no instance yet: 503, never 502");
    assert!(r.body.contains("no ready instance"), "{}", r.body);

    h.set_instances(
        "api",
        vec![Instance {
            id: "api#1".into(),
            addr: up.addr,
            ready: false,
        }],
    );
    assert_eq!(get(&cl, addr, "/x").await.status, 503);
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    assert_eq!(get(&cl, addr, "/x").await.status, 200);
    // Readiness lost later: 503 again, not 502.
    h.set_instances(
        "api",
        vec![Instance {
            id: "api#1".into(),
            addr: up.addr,
            ready: false,
        }],
    );
    let r = get(&cl, addr, "/x").await;
    assert_eq!(r.status, 503);
    assert_eq!(up.count.load(SeqCst), 1);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_apply_to_the_next_request() {
    let up = upstream().await;
    let mut api = RouteConfig::new("api", "/api", "api");
    api.write_allow = vec!["/api/login".into()];
    let mut reports = RouteConfig::new("reports", "/reports", "api");
    reports.shed_in_brownout = true;
    let (h, addr) = start(config(vec![api, reports]));
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    let cl = client();

    h.set_mode(Mode::WriteDrain);
    assert_eq!(h.mode(), Mode::WriteDrain);
    let r = send(&cl, "POST", addr, "/api/orders", &[], "{}").await;
    assert_eq!(r.status, 503);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.json()["error"], "write_drain", "{}", r.body);
    assert_eq!(
        send(&cl, "DELETE", addr, "/api/orders/1", &[], "")
            .await
            .status,
        503
    );
    assert_eq!(
        get(&cl, addr, "/api/orders").await.status,
        200,
        "reads pass"
    );
    assert_eq!(
        send(&cl, "POST", addr, "/api/login", &[], "{}")
            .await
            .status,
        200,
        "allow-list"
    );

    h.set_mode(Mode::Brownout { shed_percent: 0 });
    let r = get(&cl, addr, "/reports/q").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "brownout");
    assert_eq!(get(&cl, addr, "/api/x").await.status, 200);
    h.set_mode(Mode::Brownout { shed_percent: 100 });
    assert_eq!(get(&cl, addr, "/api/x").await.status, 503);

    h.set_mode(Mode::Emergency);
    let r = get(&cl, addr, "/api/x").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("maintenance"), "{}", r.body);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Health paths still reach the service (this route is /api; use a health path under it).
    h.set_mode(Mode::Normal);
    assert_eq!(
        send(&cl, "POST", addr, "/api/orders", &[], "{}")
            .await
            .status,
        200
    );

    let snap = h.snapshot();
    let api = &snap.routes[0];
    assert_eq!(api.shed["write_drain"], 2);
    assert_eq!(snap.routes[1].shed["brownout"], 1);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_keeps_health_paths() {
    let up = upstream().await;
    let (h, addr) = start(config(vec![RouteConfig::new("all", "/", "api")]));
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    h.set_mode(Mode::Emergency);
    let cl = client();
    assert_eq!(get(&cl, addr, "/healthz").await.status, 200);
    assert_eq!(get(&cl, addr, "/health/db").await.status, 200);
    assert_eq!(get(&cl, addr, "/").await.status, 503);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_survives_a_mode_switch() {
    let up = upstream().await;
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    let cl = client();
    let slow = tokio::spawn({
        let cl = cl.clone();
        async move { send(&cl, "POST", addr, "/slow", &[], "{}").await }
    });
    let waiting = up.waiting.clone();
    assert!(wait_until(10, || waiting.load(SeqCst) == 1).await);
    h.set_mode(Mode::Emergency);
    assert_eq!(send(&cl, "POST", addr, "/x", &[], "{}").await.status, 503);
    up.release.notify_waiters();
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "the request in flight finished: {}", r.body);
    h.shutdown();
}

/// An upstream that reads a request, counts it and hangs up without answering.
async fn black_hole() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        c.fetch_add(1, SeqCst);
                        return; // drop: connection closed with no answer
                    }
                }
            });
        }
    });
    (addr, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_never_retried_but_get_is() {
    let good = upstream().await;
    let (hole, hole_count) = black_hole().await;
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    cfg.breaker.minimum_calls = 1000; // keep the bad instance in rotation for this test
    cfg.breaker.window = 1000;
    let (h, addr) = start(cfg);
    h.set_instances("api", vec![inst("api#1", hole), inst("api#2", good.addr)]);
    h.set_open(true);
    let cl = client();
    let posts = 20;
    let mut failed = 0;
    for _ in 0..posts {
        if send(&cl, "POST", addr, "/orders", &[], "{}").await.status != 200 {
            failed += 1;
        }
    }
    // Every POST reached exactly one upstream: none was repeated.
    assert_eq!(hole_count.load(SeqCst) + good.count.load(SeqCst), posts);
    assert_eq!(hole_count.load(SeqCst), failed);
    assert!(failed > 0, "p2c sent some POSTs to the black hole");

    let before = good.count.load(SeqCst);
    for _ in 0..10 {
        let r = get(&cl, addr, "/items").await;
        assert_eq!(
            r.status, 200,
            "a GET is retried on the other instance: {}",
            r.body
        );
    }
    assert_eq!(good.count.load(SeqCst) - before, 10);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_to_the_only_instance_is_answered_502_once() {
    // A retry goes to another instance; with one there is none, and the GET is sent once.
    let (hole, hole_count) = black_hole().await;
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    cfg.breaker.minimum_calls = 1000;
    cfg.breaker.window = 1000;
    let (h, addr) = start(cfg);
    h.set_instances("api", vec![inst("api#1", hole)]);
    h.set_open(true);
    let cl = client();
    for i in 1..=5 {
        let r = get(&cl, addr, "/items").await;
        assert_eq!(r.status, 502, "{}", r.body);
        assert!(r.body.contains("api#1"), "names the instance: {}", r.body);
        assert_eq!(hole_count.load(SeqCst), i, "sent once per GET");
    }
    assert_eq!(h.snapshot().routes[0].signals.retries, 0);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_is_retried_when_an_instance_refuses_connections() {
    let good = upstream().await;
    let refused = refused_addr().await;
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances(
        "api",
        vec![inst("api#1", refused), inst("api#2", good.addr)],
    );
    h.set_open(true);
    let cl = client();
    for _ in 0..10 {
        assert_eq!(get(&cl, addr, "/").await.status, 200);
    }
    let snap = h.snapshot();
    assert!(snap.routes[0].signals.requests.c2xx == 10);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_pass_through_whole_both_ways() {
    let up = upstream().await;
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    let cl = client();
    // A 2 MiB response, twice on the same connections (the pooled one too).
    for _ in 0..2 {
        let r = get(&cl, addr, "/big").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 2 << 20);
        assert!(
            r.body.as_bytes() == &big_body(2 << 20)[..],
            "the body arrived altered"
        );
    }
    // A 1 MiB upload (a POST body is streamed to the upstream, never buffered for a retry).
    let upload = String::from_utf8(big_body(1 << 20).to_vec()).unwrap();
    let r = send(&cl, "POST", addr, "/up", &[], &upload).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["body_len"], 1 << 20);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_stripped_and_forwarded_headers_set() {
    let up = upstream().await;
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    let cl = client();
    let r = send(
        &cl,
        "GET",
        addr,
        "/",
        &[
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("upgrade", "h2c"),
            ("x-forwarded-for", "10.1.2.3"),
            ("x-kept", "yes"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    for gone in [
        "x-private",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
        "trailer",
    ] {
        assert_eq!(r.seen_header(gone), None, "{gone} reached the upstream");
    }
    assert_eq!(r.seen_header("x-kept").as_deref(), Some("yes"));
    assert_eq!(
        r.seen_header("x-forwarded-for").as_deref(),
        Some("10.1.2.3, 127.0.0.1")
    );
    assert_eq!(r.seen_header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(r.seen_header("x-forwarded-host"), Some(addr.to_string()));
    assert!(
        r.seen_header("forwarded")
            .unwrap()
            .starts_with("for=127.0.0.1;proto=http")
    );
    // And on the way back: the upstream's Connection-named header is gone.
    assert!(!r.headers.contains_key("x-up-secret"));
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_host_header_the_upstream_gets_the_instances_address() {
    let up = upstream().await;
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    // A Host the client named hop-by-hop is removed like any other such header.
    let r = send(&client(), "GET", addr, "/", &[("connection", "host")], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.seen_header("host"), Some(up.addr.to_string()));
    // An HTTP/1.0 request without any Host.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /old HTTP/1.0\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let seen: serde_json::Value = serde_json::from_str(body).unwrap();
    let host = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "host")
        .map(|p| p[1].as_str().unwrap().to_owned());
    assert_eq!(host, Some(up.addr.to_string()), "{out}");
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_413_and_431() {
    let up = upstream().await;
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    cfg.limits.max_body_bytes = 1000;
    cfg.limits.max_header_bytes = 8192;
    let (h, addr) = start(cfg);
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    let cl = client();
    let big = "x".repeat(2000);
    assert_eq!(send(&cl, "POST", addr, "/", &[], &big).await.status, 413);
    let huge = "h".repeat(20_000);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {huge}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert_eq!(up.count.load(SeqCst), 0);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_on_a_failing_instance_and_closes_after() {
    let up = upstream().await;
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    cfg.breaker = BreakerConfig {
        window: 4,
        minimum_calls: 4,
        failure_rate: 0.5,
        open_for: Duration::from_millis(200),
        trial_calls: 1,
    };
    let (h, addr) = start(cfg);
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    let cl = client();
    up.status.store(500, SeqCst);
    for _ in 0..4 {
        assert_eq!(get(&cl, addr, "/").await.status, 500);
    }
    let r = get(&cl, addr, "/").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("circuit is open"), "{}", r.body);
    assert_eq!(h.snapshot().instances[0].breaker, "open");
    assert_eq!(up.count.load(SeqCst), 4);

    up.status.store(200, SeqCst);
    let mut closed = false;
    for _ in 0..400 {
        if get(&cl, addr, "/").await.status == 200 && h.snapshot().instances[0].breaker == "closed"
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "breaker closed after the instance recovered");
    let mut prom = String::new();
    h.render_prometheus(&mut prom);
    assert!(
        prom.contains(
            "gantry_ingress_instance_breaker_state{service=\"api\",instance=\"api#1\"} 0"
        )
    );
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_failures_ejects_an_instance_but_never_the_last_one() {
    let (bad, good) = (upstream().await, upstream().await);
    bad.status.store(500, SeqCst);
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    // The breaker judges only after 1,000 calls here: what acts is outlier detection.
    cfg.breaker = BreakerConfig {
        window: 1000,
        minimum_calls: 1000,
        ..BreakerConfig::default()
    };
    let (h, addr) = start(cfg);
    h.set_instances(
        "api",
        vec![inst("api#1", bad.addr), inst("api#2", good.addr)],
    );
    h.set_open(true);
    let cl = client();
    let mut failed = 0;
    for _ in 0..60 {
        if get(&cl, addr, "/x").await.status == 500 {
            failed += 1;
        }
    }
    assert_eq!(failed, 5, "five failures in a row eject the instance");
    let snap = h.snapshot();
    let (b, g) = (&snap.instances[0], &snap.instances[1]);
    assert!(b.ejected && b.ejections == 1, "{:?}", snap.instances);
    assert!(!g.ejected, "{:?}", snap.instances);
    let mut prom = String::new();
    h.render_prometheus(&mut prom);
    assert!(
        prom.contains("gantry_ingress_instance_ejected{service=\"api\",instance=\"api#1\"} 1"),
        "{prom}"
    );
    // Now the other one fails too: it is the last eligible instance, so it stays in.
    good.status.store(500, SeqCst);
    for _ in 0..10 {
        assert_eq!(get(&cl, addr, "/x").await.status, 500);
    }
    assert!(
        !h.snapshot().instances[1].ejected,
        "the last instance is never ejected"
    );
    // A new incarnation of the ejected one (unready, then ready) starts with a clean slate.
    h.set_instances(
        "api",
        vec![
            {
                let mut i = inst("api#1", bad.addr);
                i.ready = false;
                i
            },
            inst("api#2", good.addr),
        ],
    );
    h.set_instances(
        "api",
        vec![inst("api#1", bad.addr), inst("api#2", good.addr)],
    );
    assert!(!h.snapshot().instances[0].ejected);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_split_is_sticky_per_cookie_tallied_apart_and_never_fails_a_request() {
    let (stable, canary) = (upstream().await, upstream().await);
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances(
        "api",
        vec![inst("api#1", stable.addr), inst("api#2", canary.addr)],
    );
    h.set_split(
        "api",
        Split {
            canary: vec!["api#2".into()],
            percent: 10,
            sticky: Some(Sticky::Cookie("sid".into())),
        },
    );
    h.set_open(true);
    let cl = client();
    let on_canary = |r: &Answer| r.json()["upstream"] == canary.addr.to_string();
    // 1,000 clients: about a tenth on the canary, each always on the same side.
    let mut sides = Vec::new();
    for i in 0..1000 {
        let cookie = format!("theme=dark; sid=user-{i}");
        let r = send(&cl, "GET", addr, "/x", &[("cookie", &cookie)], "").await;
        assert_eq!(r.status, 200);
        sides.push(on_canary(&r));
    }
    let n = sides.iter().filter(|c| **c).count();
    assert!(
        (50..=150).contains(&n),
        "{n} of 1,000 clients on a 10 % canary"
    );
    for i in (0..1000).step_by(97) {
        let cookie = format!("sid=user-{i}");
        for _ in 0..5 {
            let r = send(&cl, "GET", addr, "/x", &[("cookie", &cookie)], "").await;
            assert_eq!(on_canary(&r), sides[i], "client {i} changed sides");
        }
    }
    // Tallied apart: the canary's failures show on its side only.
    let before = h.tally("api");
    canary.status.store(503, SeqCst);
    let mut canary_hits = 0;
    for i in 0..200 {
        let cookie = format!("sid=user-{i}");
        let r = send(&cl, "GET", addr, "/x", &[("cookie", &cookie)], "").await;
        if r.status == 503 {
            canary_hits += 1;
        }
    }
    let after = h.tally("api");
    let (c, st) = (
        after.canary.since(&before.canary),
        after.stable.since(&before.stable),
    );
    assert_eq!(c.requests, canary_hits);
    assert_eq!(c.failures, canary_hits);
    assert!(
        c.requests > 0 && (c.failure_ratio - 1.0).abs() < 1e-9,
        "{c:?}"
    );
    assert_eq!(st.failures, 0, "{st:?}");
    assert_eq!(st.requests + c.requests, 200);
    assert!(st.p99_ms.is_some());
    assert_eq!(Tally::default().since(&Tally::default()).p99_ms, None);
    // Its run of failures ejected it (outlier detection); a new incarnation comes back clean.
    assert!(h.snapshot().instances[1].ejected);
    canary.status.store(200, SeqCst);
    let mut down = inst("api#2", canary.addr);
    down.ready = false;
    h.set_instances("api", vec![inst("api#1", stable.addr), down]);
    h.set_instances(
        "api",
        vec![inst("api#1", stable.addr), inst("api#2", canary.addr)],
    );
    // All traffic to a canary with no ready instance still lands on stable.
    h.set_split(
        "api",
        Split {
            canary: vec!["api#2".into()],
            percent: 100,
            sticky: None,
        },
    );
    assert!(on_canary(&get(&cl, addr, "/x").await));
    let mut down = inst("api#2", canary.addr);
    down.ready = false;
    h.set_instances("api", vec![inst("api#1", stable.addr), down]);
    for _ in 0..20 {
        let r = get(&cl, addr, "/x").await;
        assert_eq!(r.status, 200);
        assert!(!on_canary(&r));
    }
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_instance_waits_for_in_flight_requests() {
    let (a, b) = (upstream().await, upstream().await);
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances("api", vec![inst("api#1", a.addr)]);
    h.set_open(true);
    let cl = client();
    let slow = tokio::spawn({
        let cl = cl.clone();
        async move { get(&cl, addr, "/slow").await }
    });
    let waiting = a.waiting.clone();
    assert!(wait_until(10, || waiting.load(SeqCst) == 1).await);
    h.set_instances("api", vec![inst("api#1", a.addr), inst("api#2", b.addr)]);
    let mut drain = Box::pin(h.drain_instance("api", "api#1"));
    let pending =
        std::future::poll_fn(|cx| Poll::Ready(drain.as_mut().poll(cx).is_pending())).await;
    assert!(pending, "drain waits while a request is in flight");
    // New requests go to the other instance.
    for _ in 0..5 {
        assert_eq!(
            get(&cl, addr, "/").await.json()["upstream"],
            b.addr.to_string()
        );
    }
    a.release.notify_waiters();
    assert_eq!(slow.await.unwrap().status, 200);
    tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .expect("drain resolves");
    let snap = h.snapshot();
    assert!(snap.instances.iter().any(|i| i.id == "api#1" && i.draining));
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_is_passed_through_both_ways() {
    let up = upstream().await;
    let (h, addr) = start(config(vec![RouteConfig::new("ws", "/", "ws")]));
    h.set_instances("ws", vec![inst("ws#1", up.addr)]);
    h.set_open(true);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /chat HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        if s.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    for msg in [&b"ping"[..], b"hello through gantry"] {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
            .await
            .expect("echo arrives")
            .unwrap();
        assert_eq!(got, msg);
    }
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_take_the_listener_down() {
    let up = upstream().await;
    let (h, addr) = start(config(vec![RouteConfig::new("api", "/", "api")]));
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let prefixes: [&[u8]; 4] = [
        b"",
        b"GET ",
        b"GET / HTTP/1.1\r\n",
        b"POST / HTTP/1.1\r\ncontent-length: ",
    ];
    for i in 0..200 {
        let mut data = prefixes[i % prefixes.len()].to_vec();
        let len = (next() % 512) as usize;
        data.extend((0..len).map(|_| next() as u8));
        if i % 3 == 0 {
            data.extend_from_slice(b"\r\n\r\n");
        }
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let _ = s.write_all(&data).await;
            let _ = s.shutdown().await;
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
        }
    }
    assert_eq!(get(&client(), addr, "/").await.status, 200, "still serving");
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_access_log() {
    let up = upstream().await;
    let dir = std::env::temp_dir().join(format!("gantry-ingress-log-{}", std::process::id()));
    let log = dir.join("ingress.log");
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    cfg.access_log = Some(log.clone());
    let (h, addr) = start(cfg);
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    h.set_open(true);
    let cl = client();
    for _ in 0..3 {
        let r = send(
            &cl,
            "GET",
            addr,
            "/p?token=secret",
            &[
                ("authorization", "Bearer hunter2"),
                ("cookie", "sid=hunter3"),
            ],
            "",
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let snap = h.snapshot();
    assert_eq!(snap.routes[0].signals.requests.c2xx, 3);
    assert!(snap.routes[0].signals.p99_ms.is_some());
    assert_eq!(snap.instances[0].signals.requests.c2xx, 3);
    assert_eq!(snap.routes[0].signals.in_flight, 0);
    assert!(
        snap.instances[0].connections >= 1,
        "a pooled connection is counted"
    );
    let json = serde_json::to_value(&snap).unwrap();
    assert_eq!(json["routes"][0]["requests"]["2xx"], 3);
    let mut prom = String::new();
    h.render_prometheus(&mut prom);
    assert!(
        prom.contains("gantry_ingress_requests_total{route=\"api\",class=\"2xx\"} 3"),
        "{prom}"
    );
    assert!(
        prom.contains(
            "gantry_ingress_request_duration_seconds_bucket{route=\"api\",le=\"+Inf\"} 3"
        )
    );
    assert!(prom.contains("# TYPE gantry_ingress_request_duration_seconds histogram"));
    h.shutdown();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        !text.contains("hunter") && !text.contains("secret"),
        "{text}"
    );
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], 200);
    assert_eq!(line["path"], "/p");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_listen_when_open_connections_are_refused_until_the_gate_opens() {
    let up = upstream().await;
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    cfg.listen_when_open = true;
    // Two threads: every SO_REUSEPORT socket must wait, not only the first.
    cfg.runtime = gantry_ingress::RuntimeFlavor::Threads { threads: 2 };
    let (h, addr) = start(cfg);
    h.set_instances("api", vec![inst("api#1", up.addr)]);
    // The port is reserved (bound) but refuses connections.
    for _ in 0..20 {
        let e = tokio::net::TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }
    h.set_open(true);
    let cl = client();
    assert!(
        wait_until(10, || std::net::TcpStream::connect(addr).is_ok()).await,
        "listening after the gate opened"
    );
    for _ in 0..20 {
        assert_eq!(get(&cl, addr, "/x").await.status, 200);
    }
    // Closing again answers 503; it never stops listening.
    h.set_open(false);
    assert_eq!(get(&cl, addr, "/x").await.status, 503);
    h.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_never_opened_shuts_down() {
    let mut cfg = config(vec![RouteConfig::new("api", "/", "api")]);
    cfg.listen_when_open = true;
    let (h, addr) = start(cfg);
    h.shutdown();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_errors_name_the_address() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = taken.local_addr().unwrap();
    let mut cfg = config(vec![]);
    cfg.listeners[0].listen = a;
    let err = gantry_ingress::start(cfg).unwrap_err().to_string();
    assert!(err.contains(&a.to_string()), "{err}");
}

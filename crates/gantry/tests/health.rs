//! The health endpoints of an embedded boot, through the router with `oneshot` (no socket): the same answers as the process API.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gantry::{Boot, BoxError, Component, Priority};
use http_body_util::BodyExt;
use support::*;
use tokio::sync::Notify;
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    content_type: String,
    body: String,
}

async fn call(router: axum::Router, request: Request<Body>) -> Answer {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn get(boot: &Boot, path: &str) -> Answer {
    let request = Request::get(path).body(Body::empty()).unwrap();
    call(boot.health_router(), request).await
}

/// A db whose init waits until the test releases it.
fn gated(gate: &Arc<Notify>) -> Component {
    let gate = gate.clone();
    Component::new("db")
        .priority(Priority::Critical)
        .init(move || {
            let gate = gate.clone();
            async move {
                gate.notified().await;
                Ok(())
            }
        })
}

#[tokio::test(start_paused = true)]
async fn ready_turns_from_503_to_200_once_the_boot_is_up() {
    let gate = Arc::new(Notify::new());
    let boot = Boot::builder()
        .name("orders")
        .component(gated(&gate))
        .component(Component::new("api").depends_on(["db"]))
        .build()
        .unwrap();

    let before = get(&boot, "/health/ready").await;
    assert_eq!(before.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(before.content_type, "text/plain; charset=utf-8");

    let starter = boot.clone();
    let start = tokio::spawn(async move { starter.start().await });
    tokio::time::sleep(ms(50)).await;
    let booting = get(&boot, "/health/ready").await;
    assert_eq!(booting.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        booting.body,
        "not ready: booting; missing db (starting), api (pending)"
    );
    let startup = get(&boot, "/health/startup").await;
    assert_eq!(startup.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&boot, "/health/live").await.status, StatusCode::OK);

    gate.notify_one();
    assert!(start.await.unwrap().success);
    let ready = get(&boot, "/health/ready").await;
    assert_eq!((ready.status, ready.body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(get(&boot, "/health/startup").await.status, StatusCode::OK);
    let verbose = get(&boot, "/health/ready?verbose").await;
    assert_eq!(
        verbose.body,
        "[+]boot go\n[+]shutdown ok\n[+]driver ok\n[+]db ok\n[+]api ok\nreadyz check passed\n"
    );

    let health = get(&boot, "/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.content_type, "application/health+json");
    let doc: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(doc["status"], "pass");
    assert_eq!(doc["serviceId"], "orders");
    assert_eq!(doc["checks"]["db:state"][0]["componentType"], "component");
    assert_eq!(doc["checks"]["db:state"][0]["observedValue"], "ready");

    boot.shutdown().await;
    // The driver is gone: not live any more, and not ready.
    assert_eq!(
        get(&boot, "/health/live").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&boot, "/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_low_priority_component_leaves_the_boot_ready_but_degraded() {
    let boot = Boot::builder()
        .component(Component::new("db"))
        .component(
            Component::new("search")
                .priority(Priority::Low)
                .retries(0)
                .init(|| async { Err::<(), BoxError>("no cluster".into()) }),
        )
        .build()
        .unwrap();
    boot.start().await;
    let ready = get(&boot, "/health/ready").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (StatusCode::OK, "ok (degraded: search failed)")
    );
    let health = get(&boot, "/health").await;
    let doc: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(
        (health.status, doc["status"].as_str()),
        (StatusCode::OK, Some("warn"))
    );
    assert_eq!(doc["checks"]["search:state"][0]["output"], "no cluster");
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_no_go_fails_startup_and_health() {
    let boot = Boot::builder()
        .component(
            Component::new("db")
                .priority(Priority::Critical)
                .retries(0)
                .init(|| async { Err::<(), BoxError>("password authentication failed".into()) }),
        )
        .build()
        .unwrap();
    boot.start().await;
    let startup = get(&boot, "/health/startup").await;
    assert_eq!(startup.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        startup.body,
        "not started: boot outcome no-go: db: password authentication failed"
    );
}

#[tokio::test(start_paused = true)]
async fn the_health_router_exposes_only_the_health_paths() {
    let boot = Boot::builder().build().unwrap();
    boot.start().await;
    for path in ["/metrics", "/api/v1/status", "/api/v1/shutdown"] {
        assert_eq!(
            get(&boot, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_full_api_reinitializes_with_the_token_and_reports_metrics() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "db", ms(5)))
        .component(timed(&t, "api", ms(5)).depends_on(["db"]))
        .build()
        .unwrap();
    boot.start().await;
    let api = boot.api_router("s3cret");

    let denied = Request::post("/api/v1/services/db/restart")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        call(api.clone(), denied).await.status,
        StatusCode::UNAUTHORIZED
    );
    let restart = Request::post("/api/v1/services/db/restart")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        call(api.clone(), restart).await.status,
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(ms(100)).await;
    assert_eq!(t.with_prefix("cleanup:"), ["api", "db"]);
    assert_eq!(t.count("end:api"), 2);

    let startup = call(
        api.clone(),
        Request::get("/api/v1/startup").body(Body::empty()).unwrap(),
    )
    .await;
    let doc: serde_json::Value = serde_json::from_str(&startup.body).unwrap();
    assert_eq!(doc["outcome"], "go");
    assert_eq!(doc["components"][0]["status"], "SUCCESS");

    let metrics = call(api, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(
        metrics
            .body
            .contains("gantry_service_restarts_total{service=\"db\"} 1"),
        "{}",
        metrics.body
    );
    boot.shutdown().await;
}

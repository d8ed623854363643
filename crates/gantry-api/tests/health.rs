//! The Kubernetes health paths and the IETF health document, driven through the router.

mod support;

use axum::http::StatusCode;
use support::*;

async fn probe(h: &Harness, uri: &str) -> (StatusCode, String) {
    let r = get(h.router(), uri).await;
    (r.status, r.body)
}

#[tokio::test]
async fn booting_is_live_but_not_ready_nor_started() {
    let h = Harness::new(booting());
    assert_eq!(
        probe(&h, "/health/live").await,
        (StatusCode::OK, "ok".to_string())
    );
    let (code, body) = probe(&h, "/health/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "not ready: booting; missing db (starting), migrate (pending), api (pending)"
    );
    let (code, body) = probe(&h, "/health/startup").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "not started: booting; waiting for db (starting), migrate (pending), api (pending), search (pending)"
    );
}

#[tokio::test]
async fn go_passes_everything() {
    let h = Harness::new(go());
    for path in ["/health/live", "/health/ready", "/health/startup"] {
        let r = get(h.router(), path).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::OK, "ok"),
            "{path}"
        );
        assert_eq!(r.content_type(), "text/plain; charset=utf-8");
        assert_eq!(
            r.headers.get("cache-control").map(|v| v.to_str().unwrap()),
            Some("no-store")
        );
    }
}

#[tokio::test]
async fn degraded_is_ready_and_says_what_is_missing() {
    let h = Harness::new(degraded());
    assert_eq!(
        probe(&h, "/health/ready").await,
        (StatusCode::OK, "ok (degraded: search failed)".to_string())
    );
    assert_eq!(
        probe(&h, "/health/startup").await,
        (StatusCode::OK, "ok".to_string())
    );
    // Excluding the failed optional service removes it from the answer.
    assert_eq!(
        probe(&h, "/health/ready?exclude=search").await,
        (StatusCode::OK, "ok".to_string())
    );
}

#[tokio::test]
async fn no_go_is_not_ready_and_not_started() {
    let h = Harness::new(no_go());
    let (code, body) = probe(&h, "/health/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "not ready: boot outcome no-go: critical service api failed; missing api (failed), worker (skipped)"
    );
    let (code, body) = probe(&h, "/health/startup").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "not started: boot outcome no-go: critical service api failed"
    );
    // Gantry itself is alive: a failed service must not get it restarted.
    assert_eq!(
        probe(&h, "/health/live").await,
        (StatusCode::OK, "ok".to_string())
    );
}

#[tokio::test]
async fn a_required_service_down_after_go_is_named() {
    let mut snap = go();
    snap.services[2] = failed("api", "high", "exit status 3");
    snap.services.push(service("worker", "skipped", "medium"));
    let h = Harness::new(snap);
    assert_eq!(
        probe(&h, "/health/ready").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: missing api (failed), worker (skipped)".to_string()
        )
    );
    // Both excluded (repeated key): ready again.
    assert_eq!(
        probe(&h, "/health/ready?exclude=api&exclude=worker").await,
        (StatusCode::OK, "ok".to_string())
    );
    // One excluded: only the other is named.
    assert_eq!(
        probe(&h, "/health/ready?exclude=api").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: missing worker (skipped)".to_string()
        )
    );
}

/// Issue 14, item 1: readiness keeps running after the boot; a required service whose
/// readiness is lost makes the stack not ready, named with what its probe said.
#[tokio::test]
async fn an_unready_service_after_go_is_named_and_ready_again_once_it_passes() {
    let mut snap = go();
    snap.services[0] = service("db", "unready", "critical");
    snap.services[0].last_error =
        Some("readiness failed 3 times: connection refused (127.0.0.1:5432)".into());
    snap.services[0].readiness_lost_total = 1;
    let h = Harness::new(snap);
    assert_eq!(
        probe(&h, "/health/ready").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: missing db (unready)".to_string()
        )
    );
    let (_, verbose) = probe(&h, "/health/ready?verbose").await;
    assert!(
        verbose.contains(
            "[-]db unready: readiness failed 3 times: connection refused (127.0.0.1:5432)\n"
        ),
        "{verbose}"
    );
    // Started and live are about the boot and gantry: unchanged.
    assert_eq!(probe(&h, "/health/startup").await.0, StatusCode::OK);
    assert_eq!(probe(&h, "/health/live").await.0, StatusCode::OK);
    let h = Harness::new(go());
    assert_eq!(
        probe(&h, "/health/ready").await,
        (StatusCode::OK, "ok".to_string())
    );
}

#[tokio::test]
async fn shutting_down_is_not_ready_but_stays_started_and_live() {
    let mut snap = go();
    snap.shutting_down = true;
    let h = Harness::new(snap);
    assert_eq!(
        probe(&h, "/health/ready").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down".to_string()
        )
    );
    assert_eq!(probe(&h, "/health/startup").await.0, StatusCode::OK);
    assert_eq!(probe(&h, "/health/live").await.0, StatusCode::OK);
    let (_, verbose) = probe(&h, "/health/ready?verbose").await;
    assert!(verbose.contains("[-]shutdown shutting down\n"), "{verbose}");
    assert!(verbose.ends_with("readyz check failed\n"), "{verbose}");
}

#[tokio::test]
async fn verbose_lists_every_check_kubernetes_style() {
    let h = Harness::new(degraded());
    let (code, body) = probe(&h, "/health/ready?verbose").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body,
        "[+]boot degraded\n[+]shutdown ok\n[+]driver ok\n[+]db ok\n[+]migrate ok\n[+]api ok\n\
         [-]search failed: connection refused\nreadyz check passed\n"
    );
    let (code, body) = probe(&h, "/health/live?verbose&exclude=search").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body,
        "[+]driver ok\n[+]db ok\n[+]migrate ok\n[+]api ok\nlivez check passed\n"
    );

    let h = Harness::new(no_go());
    let (code, body) = probe(&h, "/health/ready?verbose").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "[-]boot no-go: critical service api failed\n[+]shutdown ok\n[+]driver ok\n[+]db ok\n\
         [-]api failed: exit status 1\n[-]worker skipped\nreadyz check failed\n"
    );
    let (code, body) = probe(&h, "/health/startup?verbose=1&exclude=db,worker").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "[-]boot no-go: critical service api failed\n[-]api failed: exit status 1\nstartupz check failed\n"
    );

    let h = Harness::new(booting());
    let (_, body) = probe(&h, "/health/startup?verbose").await;
    assert!(
        body.starts_with("[-]boot booting\n[-]db starting\n"),
        "{body}"
    );
    assert!(body.ends_with("startupz check failed\n"), "{body}");
}

#[tokio::test]
async fn multi_line_errors_stay_on_one_verbose_line() {
    let mut snap = go();
    snap.services[2] = failed("api", "high", "boom\ntraceback line\r\n");
    let h = Harness::new(snap);
    let (_, body) = probe(&h, "/health/ready?verbose").await;
    assert!(
        body.contains("[-]api failed: boom traceback line\n"),
        "{body}"
    );
}

#[tokio::test]
async fn live_fails_once_the_driver_is_gone() {
    let h = Harness::new(go());
    let router = h.router();
    drop(h.snapshot);
    let r = get(router.clone(), "/health/live").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body, "not alive: the gantry driver loop has stopped");
    let r = get(router.clone(), "/health/live?verbose").await;
    assert!(
        r.body.starts_with("[-]driver stopped\n") && r.body.ends_with("livez check failed\n"),
        "{}",
        r.body
    );
    // A stale snapshot must not claim readiness.
    let r = get(router, "/health/ready").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the gantry driver has stopped"
        )
    );
}

#[tokio::test]
async fn a_new_snapshot_is_seen_by_the_next_probe() {
    let h = Harness::new(booting());
    assert_eq!(
        probe(&h, "/health/ready").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    h.snapshot.send_replace(std::sync::Arc::new(go()));
    assert_eq!(
        probe(&h, "/health/ready").await,
        (StatusCode::OK, "ok".to_string())
    );
}

#[tokio::test]
async fn health_json_has_the_ietf_shape() {
    let h = Harness::new(degraded());
    let r = get(h.router(), "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/health+json");
    let doc = r.json();
    assert_eq!(doc["status"], "warn");
    assert_eq!(doc["version"], "1");
    assert_eq!(doc["releaseId"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["serviceId"], "/srv/app/gantry.toml");
    assert_eq!(doc["description"], "gantry");
    let output = doc["output"].as_str().expect("output");
    assert!(
        output.contains("boot outcome degraded") && output.contains("search (failed)"),
        "{output}"
    );
    let checks = doc["checks"].as_object().expect("checks");
    assert_eq!(checks.len(), 4);
    let search = &checks["search:state"][0];
    assert_eq!(search["componentId"], "search");
    assert_eq!(search["componentType"], "process");
    assert_eq!(search["status"], "fail");
    assert_eq!(search["observedValue"], "failed");
    assert_eq!(search["output"], "connection refused");
    let time = search["time"].as_str().expect("time");
    // RFC 3339 UTC: 2026-01-01T12:34:56.789Z
    assert_eq!(time.len(), 24, "{time}");
    assert!(time.ends_with('Z') && &time[10..11] == "T", "{time}");
    let migrate = &checks["migrate:state"][0];
    assert_eq!(
        (
            migrate["status"].as_str(),
            migrate["componentType"].as_str()
        ),
        (Some("pass"), Some("task"))
    );
    assert!(migrate.get("output").is_none());
}

#[tokio::test]
async fn health_json_pass_warn_fail() {
    let r = get(Harness::new(go()).router(), "/health").await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (StatusCode::OK, Some("pass"))
    );
    assert!(
        r.json().get("output").is_none(),
        "no reason when passing: {}",
        r.body
    );

    let r = get(Harness::new(booting()).router(), "/health").await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (StatusCode::OK, Some("warn"))
    );

    let r = get(Harness::new(no_go()).router(), "/health").await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("fail"))
    );
    assert!(
        r.json()["output"]
            .as_str()
            .unwrap()
            .contains("required service failed: api"),
        "{}",
        r.body
    );

    // A required service failing after a go boot fails the document; excluding it turns it back to pass.
    let mut snap = go();
    snap.services[0] = failed("db", "critical", "disk full");
    let h = Harness::new(snap);
    let r = get(h.router(), "/health").await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("fail"))
    );
    let r = get(h.router(), "/health?exclude=db").await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (StatusCode::OK, Some("pass"))
    );
    assert!(r.json()["checks"].get("db:state").is_none());
}

#[tokio::test]
async fn verbose_health_json_adds_each_service_s_last_probe_and_its_latency() {
    let mut snap = go();
    snap.services[0].last_probe = Some(gantry_api::model::ProbeSample {
        role: "readiness".to_string(),
        ok: true,
        message: "127.0.0.1:5432 is listening\nand accepting".to_string(),
        duration_ms: 0.42,
        at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
    });
    let h = Harness::new(snap);
    let plain = get(h.router(), "/health").await.json();
    assert!(plain["checks"].get("db:probe").is_none(), "{plain}");
    let doc = get(h.router(), "/health?verbose").await.json();
    let probe = &doc["checks"]["db:probe"][0];
    assert_eq!(probe["componentType"], "readiness probe");
    assert_eq!(probe["status"], "pass");
    assert_eq!(probe["observedValue"], 0.42);
    assert_eq!(probe["observedUnit"], "ms");
    assert_eq!(probe["output"], "127.0.0.1:5432 is listening and accepting");
    assert_eq!(probe["time"], "2027-01-15T08:00:00.000Z");
    assert!(doc["checks"].get("api:probe").is_none(), "no probe ran yet");
}

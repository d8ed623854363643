//! The JSON API: read endpoints, errors, bearer auth on mutations and the command round trip.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gantry_api::model::ApiCommand;
use support::*;

#[tokio::test]
async fn status_lists_the_stack_and_every_service() {
    let mut snap = degraded();
    snap.services[0].probes = gantry_api::model::ProbeHistogram::of(&[0.01, 0.02]);
    let r = get(Harness::new(snap).router(), "/api/v1/status").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    let v = r.json();
    assert_eq!(v["file"], "/srv/app/gantry.toml");
    assert_eq!(v["started_at"], "2026-01-01T00:00:00.000Z");
    assert_eq!(
        v["boot"],
        serde_json::json!({"phase": "decided", "outcome": "degraded", "duration_ms": 1500, "reason": "search failed"})
    );
    assert_eq!(v["shutting_down"], false);
    assert_eq!(v["ready"], true);
    let services = v["services"].as_array().expect("services");
    assert_eq!(services.len(), 4);
    let db = &services[0];
    for key in [
        "name",
        "state",
        "pid",
        "ready",
        "restarts",
        "uptime_ms",
        "last_error",
        "attempts",
        "priority",
        "kind",
    ] {
        assert!(db.get(key).is_some(), "missing {key} in {db}");
    }
    assert_eq!(
        (db["pid"].as_u64(), db["uptime_ms"].as_u64()),
        (Some(4242), Some(60_000))
    );
    assert_eq!(
        (
            db["probe_count"].as_u64(),
            db["probe_last_seconds"].as_f64()
        ),
        (Some(2), Some(0.02))
    );
    assert!(
        db.get("probe_durations").is_none(),
        "raw samples stay out of the JSON"
    );
    assert_eq!(services[3]["last_error"], "connection refused");

    let r = get(Harness::new(booting()).router(), "/api/v1/status").await;
    assert_eq!(
        (
            r.json()["boot"]["phase"].as_str(),
            r.json()["ready"].as_bool()
        ),
        (Some("booting"), Some(false))
    );
}

#[tokio::test]
async fn one_service_or_a_404_that_lists_the_names() {
    let h = Harness::new(go());
    let r = get(h.router(), "/api/v1/services/api").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (r.json()["name"].as_str(), r.json()["state"].as_str()),
        (Some("api"), Some("running"))
    );

    let r = get(h.router(), "/api/v1/services/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let v = r.json();
    assert_eq!(v["error"], "unknown service `nope`");
    assert_eq!(v["hint"], "known services: db, migrate, api, search");

    // Percent-encoded names are decoded; invalid UTF-8 is a 400 with the JSON error, not a panic.
    let r = get(h.router(), "/api/v1/services/%61pi").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get(h.router(), "/api/v1/services/%ff%fe").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"].as_str().unwrap().starts_with("bad path"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn graph_startup_report_and_boots() {
    let h = Harness::new(no_go());
    let r = get(h.router(), "/api/v1/graph").await;
    assert_eq!(r.json()["edges"][0], serde_json::json!(["api", "db"]));

    let mut snap = degraded();
    snap.services[0].attempts = 3;
    snap.services[0].time_to_ready_ms = Some(2340);
    snap.services.push(service("ui", "starting", "medium"));
    snap.services.push(service("worker", "skipped", "high"));
    let mut deg = service("cache", "degraded", "high");
    deg.last_error = Some("Connection timeout".to_string());
    deg.attempts = 3;
    snap.services.push(deg);
    let r = get(Harness::new(snap).router(), "/api/v1/startup").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(
        (
            v["success"].as_bool(),
            v["outcome"].as_str(),
            v["duration_ms"].as_u64()
        ),
        (Some(true), Some("degraded"), Some(1500))
    );
    let c = v["components"].as_array().expect("components");
    let by_name = |n: &str| {
        c.iter()
            .find(|x| x["name"] == n)
            .unwrap_or_else(|| panic!("{n}"))
            .clone()
    };
    assert_eq!(
        by_name("db"),
        serde_json::json!({"name": "db", "status": "SUCCESS", "duration_ms": 2340, "retries": 2, "priority": "CRITICAL", "error": null})
    );
    assert_eq!(by_name("migrate")["status"], "SUCCESS");
    assert_eq!(by_name("search")["status"], "FAILED");
    assert_eq!(by_name("search")["priority"], "LOW");
    assert_eq!(by_name("search")["error"], "connection refused");
    assert_eq!(by_name("ui")["status"], "PENDING");
    assert_eq!(by_name("worker")["status"], "SKIPPED");
    assert_eq!(
        (
            by_name("cache")["status"].as_str(),
            by_name("cache")["retries"].as_u64()
        ),
        (Some("DEGRADED"), Some(2))
    );

    let r = get(Harness::new(booting()).router(), "/api/v1/startup").await;
    assert_eq!(
        (r.json()["success"].as_bool(), r.json()["outcome"].is_null()),
        (Some(false), true)
    );
    let r = get(Harness::new(no_go()).router(), "/api/v1/startup").await;
    assert_eq!(
        (r.json()["success"].as_bool(), r.json()["outcome"].as_str()),
        (Some(false), Some("no-go"))
    );

    let r = get(h.router(), "/api/v1/boots").await;
    assert_eq!(r.status, StatusCode::OK);
    let boots = r.json()["boots"].as_array().expect("boots").clone();
    assert_eq!(boots.len(), 2);
    assert_eq!(boots[0]["outcome"], "no-go");
    assert_eq!(boots[1]["id"], 2);
}

#[tokio::test]
async fn a_panicking_history_is_a_500_not_a_crash() {
    let mut h = Harness::new(go());
    h.state.history = std::sync::Arc::new(|| panic!("store exploded"));
    let r = get(h.router(), "/api/v1/boots").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.json()["error"], "the boot history could not be read");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let h = Harness::new(go());
    let r = get(h.router(), "/api/v2/status?token=abc").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "no route for GET /api/v2/status");
    assert!(!r.body.contains("abc"), "the query string is not echoed");
    let r = post(h.router(), "/api/v1/status", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.json()["hint"].as_str().is_some());
    let r = get(h.router(), "/api/v1/shutdown").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn mutations_need_the_bearer_token() {
    let mut h = Harness::new(go());
    let mut seen = h.answer_commands();
    let uris = [
        "/api/v1/services/api/start",
        "/api/v1/services/api/stop",
        "/api/v1/services/api/restart",
        "/api/v1/reload",
        "/api/v1/shutdown",
    ];
    let wrong = format!("Bearer {TOKEN}x");
    let short = "Bearer s3cr3t".to_string();
    let bad_headers: [(Option<&str>, &str); 8] = [
        (None, "missing bearer token"),
        (Some(wrong.as_str()), "invalid bearer token"),
        (Some(short.as_str()), "invalid bearer token"),
        (
            Some("Basic dXNlcjpwYXNz"),
            "malformed Authorization header: expected `Bearer <token>`",
        ),
        (
            Some("Bearer"),
            "malformed Authorization header: expected `Bearer <token>`",
        ),
        (
            Some("Bearer "),
            "malformed Authorization header: expected `Bearer <token>`",
        ),
        (
            Some(TOKEN),
            "malformed Authorization header: expected `Bearer <token>`",
        ),
        (
            Some(""),
            "malformed Authorization header: expected `Bearer <token>`",
        ),
    ];
    for uri in uris {
        for (auth, error) in bad_headers {
            let r = post(h.router(), uri, auth).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri} {auth:?}");
            let challenge = r
                .headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok());
            let expected = match (auth, error) {
                (None, _) => "Bearer realm=\"gantry\"",
                (_, "invalid bearer token") => "Bearer realm=\"gantry\", error=\"invalid_token\"",
                _ => "Bearer realm=\"gantry\", error=\"invalid_request\"",
            };
            assert_eq!(challenge, Some(expected), "{uri} {auth:?}");
            assert_eq!(r.json()["error"], error, "{uri} {auth:?}");
            assert!(r.json()["hint"].as_str().unwrap().contains("api.token"));
            assert!(
                !r.body.contains(TOKEN) && !r.body.contains("s3cr3t"),
                "the token never appears: {}",
                r.body
            );
        }
    }
    // Not visible ASCII and a doubled header are malformed too.
    let req = Request::post("/api/v1/shutdown")
        .header(
            "authorization",
            axum::http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    let r = send(h.router(), req).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("malformed Authorization header: not visible ASCII")
        )
    );
    let req = Request::post("/api/v1/shutdown")
        .header("authorization", bearer())
        .header("authorization", bearer())
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(h.router(), req).await.status, StatusCode::UNAUTHORIZED);
    // Nothing reached the driver.
    assert!(seen.try_recv().is_err());
}

#[tokio::test]
async fn the_right_token_reaches_the_driver() {
    let mut h = Harness::new(go());
    let mut seen = h.answer_commands();
    let cases = [
        (
            "/api/v1/services/api/start",
            ApiCommand::Start("api".into()),
        ),
        ("/api/v1/services/api/stop", ApiCommand::Stop("api".into())),
        (
            "/api/v1/services/api/restart",
            ApiCommand::Restart("api".into()),
        ),
        ("/api/v1/shutdown", ApiCommand::Shutdown),
    ];
    for (uri, expected) in cases {
        let r = post(h.router(), uri, Some(&bearer())).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{uri}: {}", r.body);
        assert_eq!(r.json()["accepted"], true);
        assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(seen.recv().await, Some(expected));
    }
    // The scheme is case-insensitive (RFC 7235).
    let r = post(
        h.router(),
        "/api/v1/services/db/restart",
        Some(&format!("bearer  {TOKEN}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

#[tokio::test]
async fn driver_refusals_map_to_404_and_409() {
    let mut h = Harness::new(go());
    let _seen = h.answer_commands();
    let r = post(
        h.router(),
        "/api/v1/services/ghost/restart",
        Some(&bearer()),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "unknown service `ghost`");
    assert_eq!(r.json()["hint"], "known services: db, migrate, api, search");
    let r = post(h.router(), "/api/v1/services/db/stop", Some(&bearer())).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json()["error"], "db has dependents running: api");
    assert_eq!(
        r.json()["hint"],
        "GET /api/v1/services/db shows its current state"
    );
}

#[tokio::test]
async fn a_gone_driver_is_a_503() {
    let h = Harness::new(go());
    let router = h.router();
    drop(h.commands);
    let r = post(router.clone(), "/api/v1/shutdown", Some(&bearer())).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"], "the gantry driver is not running");
    // A driver that drops the reply channel without answering counts as gone too.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<gantry_api::model::CommandRequest>(1);
    let mut state = h.state.clone();
    state.commands = tx;
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            drop(request.reply)
        }
    });
    let r = post(
        gantry_api::router(state),
        "/api/v1/services/api/stop",
        Some(&bearer()),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn an_empty_configured_token_accepts_nothing() {
    let mut h = Harness::new(go());
    let _seen = h.answer_commands();
    h.state.token = std::sync::Arc::new(String::new());
    let r = post(h.router(), "/api/v1/shutdown", Some("Bearer x")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_token_is_not_in_debug_output() {
    let h = Harness::new(go());
    let debug = format!("{:?} {:?}", h.state, h.router());
    assert!(!debug.contains(TOKEN), "{debug}");
}

#[tokio::test]
async fn non_finite_numbers_become_null_not_an_error() {
    let mut snap = go();
    snap.services[0].cpu_seconds = Some(f64::NAN);
    snap.services[0].probes = gantry_api::model::ProbeHistogram::of(&[f64::INFINITY]);
    let r = get(Harness::new(snap).router(), "/api/v1/services/db").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.json()["cpu_seconds"].is_null() && r.json()["probe_last_seconds"].is_null());
}

#[tokio::test]
async fn output_carrying_reads_need_the_token_when_the_api_is_reachable_beyond_loopback() {
    let mut h = Harness::new(go());
    h.state.protect_reads = true;
    for path in ["/api/v1/missions", "/api/v1/events"] {
        let r = get(h.router(), path).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = send(
        h.router(),
        Request::get("/api/v1/missions")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // Every read of the stack needs the token too (issue 19: reads need the read token when
    // the API is not loopback-only)...
    for path in [
        "/api/v1/status",
        "/api/v1/graph",
        "/api/v1/boots",
        "/api/v1/startup",
        "/api/v1/ingress",
        "/metrics",
    ] {
        let r = get(h.router(), path).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        let r = send(
            h.router(),
            Request::get(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{path} with the token");
    }
    // ... but health stays open for probes and load balancers, and so do the OpenAPI
    // document and the page's shell (it asks for a token before reading anything).
    for path in ["/health/ready", "/health/live", "/api/v1/openapi.json", "/"] {
        assert_eq!(get(h.router(), path).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn a_damaged_store_is_a_500_with_what_to_do_not_an_empty_list() {
    let mut h = Harness::new(go());
    h.state.history = std::sync::Arc::new(|| Err("the state store x cannot be read".to_string()));
    h.state.missions = std::sync::Arc::new(|| Err("the state store x cannot be read".to_string()));
    for path in ["/api/v1/boots", "/api/v1/missions"] {
        let r = get(h.router(), path).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(r.json()["error"], "the state store x cannot be read");
    }
}

#[tokio::test]
async fn a_reload_of_an_invalid_file_is_422_with_the_diagnostics() {
    let mut h = Harness::new(go());
    let mut seen = h.answer_commands();
    let r = post(h.router(), "/api/v1/reload", Some(&bearer())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(error.starts_with(gantry_api::INVALID_FILE), "{error}");
    assert!(error.contains("gantry.toml:3:16"), "{error}");
    assert!(r.json()["hint"].as_str().unwrap().contains("gantry check"));
    assert_eq!(seen.try_recv().unwrap(), ApiCommand::Reload);
}

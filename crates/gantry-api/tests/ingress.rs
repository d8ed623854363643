//! The ingress's API: status, the mode switch (token, body, unknown mode) and its series in `/metrics`.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use support::*;

fn mode_request(body: &str, token: bool) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/ingress/mode")
        .header("content-type", "application/json");
    if token {
        b = b.header("authorization", bearer());
    }
    b.body(Body::from(body.to_string())).expect("request")
}

#[tokio::test]
async fn a_mode_switch_needs_the_token_and_goes_to_the_driver_as_kill_switches() {
    let fake = Arc::new(FakeIngress::default());
    let mut h = Harness::new(go());
    h.state.ingress = Some(fake.clone());
    let mut seen = h.answer_commands();

    let r = send(h.router(), mode_request(r#"{"mode":"write_drain"}"#, false)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(seen.try_recv().is_err(), "nothing reached the driver");

    let r = send(
        h.router(),
        mode_request(
            r#"{"mode":"brownout","shed_percent":30,"reason":"db failover"}"#,
            true,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    match seen.recv().await.expect("a command") {
        gantry_api::model::ApiCommand::IngressMode { mode, shed_percent } => {
            assert_eq!(mode, "brownout");
            assert_eq!(shed_percent, Some(30));
        }
        other => panic!("unexpected command {other:?}"),
    }
    // The proxy is set by the driver (through the flags), never by the route itself.
    assert!(fake.modes.lock().unwrap().is_empty());
    let callers = h.callers.lock().unwrap().clone();
    assert_eq!(callers.last().unwrap().1.as_deref(), Some("db failover"));
}

#[tokio::test]
async fn a_bad_mode_request_says_what_is_accepted() {
    let h = Harness::new(go());
    let r = send(h.router(), mode_request(r#"{"mode":"panic"}"#, true)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("unknown mode"), "{}", r.body);
    assert!(r.body.contains("write_drain"), "{}", r.body);
    let r = send(h.router(), mode_request(r#"{"mood":"normal"}"#, true)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = send(
        h.router(),
        mode_request(r#"{"mode":"brownout","shed_percent":101}"#, true),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

#[tokio::test]
async fn without_an_ingress_its_routes_say_how_to_add_one() {
    let mut h = Harness::new(go());
    h.state.ingress = None;
    let r = get(h.router(), "/api/v1/ingress").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("[ingress]"), "{}", r.body);
    let r = send(h.router(), mode_request(r#"{"mode":"normal"}"#, true)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_ingress_series_come_before_the_end_of_the_exposition() {
    let h = Harness::new(go());
    let r = get(h.router(), "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let at = r
        .body
        .find("gantry_ingress_in_flight{route=\"api\"} 0")
        .expect("the ingress series");
    let eof = r.body.rfind("# EOF").expect("# EOF");
    assert!(at < eof && r.body.ends_with("# EOF\n"), "{}", r.body);
}

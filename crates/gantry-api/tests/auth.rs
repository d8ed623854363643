//! Tokens with roles and the audit trail's inputs: who a caller is (operator, read, named tokens),
//! what each may do, the reason a mutation carries, and `GET /api/v1/audit`.

mod support;

use axum::http::StatusCode;
use support::*;

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn each_token_is_known_by_its_name_and_only_operators_mutate() {
    let mut h = Harness::new(go());
    let _seen = h.answer_commands();
    let router = h.router();
    let restart = "/api/v1/services/api/restart";

    // The read token and a named read token may not mutate: 403, and nothing reaches the driver.
    for token in [READ_TOKEN, BOB_TOKEN] {
        let r = post(router.clone(), restart, Some(&auth(token))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(r.json()["hint"].as_str().unwrap().contains("operator"));
        assert!(!r.body.contains(token));
    }
    // An unknown token is a 401, as before.
    let r = post(router.clone(), restart, Some(&auth("nope-0123456789"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The operator token names the CLI's user; a named operator token names itself and the
    // actor header is ignored (a holder of alice's token cannot claim to be someone else).
    let r = post_with(
        router.clone(),
        restart,
        &[
            ("authorization", &bearer()),
            ("x-gantry-actor", "cli:carol"),
        ],
        r#"{"reason": "stuck on a lock"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let r = post_with(
        router.clone(),
        restart,
        &[
            ("authorization", &auth(ALICE_TOKEN)),
            ("x-gantry-actor", "cli:mallory"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    // The operator token without the header, and with a header that is not a clean name.
    post(router.clone(), restart, Some(&bearer())).await;
    post_with(
        router.clone(),
        restart,
        &[("authorization", &bearer()), ("x-gantry-actor", "cli:a b")],
        "",
    )
    .await;

    let callers = h.callers.lock().unwrap().clone();
    assert_eq!(
        callers,
        vec![
            ("cli:carol".to_string(), Some("stuck on a lock".to_string())),
            ("token:alice".to_string(), None),
            ("operator".to_string(), None),
            ("operator".to_string(), None),
        ]
    );
}

#[tokio::test]
async fn a_bad_reason_is_refused_before_the_driver_sees_it() {
    let mut h = Harness::new(go());
    let mut seen = h.answer_commands();
    let router = h.router();
    let long = format!(r#"{{"reason": "{}"}}"#, "x".repeat(1_001));
    for body in [
        "not json",
        r#"{"reason": 3}"#,
        r#"{"why": "x"}"#,
        long.as_str(),
        r#"{"reason": "two\nlines"}"#,
    ] {
        let r = post_with(
            router.clone(),
            "/api/v1/shutdown",
            &[("authorization", &bearer())],
            body,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }
    assert!(seen.try_recv().is_err(), "no command reached the driver");
    // Whitespace around a reason is trimmed; an empty one is none.
    let r = post_with(
        router.clone(),
        "/api/v1/reload",
        &[("authorization", &bearer())],
        r#"{"reason": "  "}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(h.callers.lock().unwrap().last().unwrap().1, None);
}

#[tokio::test]
async fn the_audit_log_is_served_newest_first_and_guarded_like_other_output() {
    let h = Harness::new(go());
    let r = get(h.router(), "/api/v1/audit").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rows = r.json()["audit"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["actor"], "cli:alice");
    assert_eq!(
        get(h.router(), "/api/v1/audit?limit=1").await.json()["audit"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        get(h.router(), "/api/v1/audit?since=1h").await.json()["audit"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    for bad in ["since=1y", "limit=0", "limit=x", "limit=10001", "verbose=1"] {
        let r = get(h.router(), &format!("/api/v1/audit?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // Beyond loopback it needs a token: the read token will do.
    let mut state = h.state.clone();
    state.protect_reads = true;
    let router = gantry_api::router(state);
    assert_eq!(
        get(router.clone(), "/api/v1/audit").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = send(
        router,
        axum::http::Request::get("/api/v1/audit")
            .header("authorization", auth(READ_TOKEN))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

//! The web page's routes on the router: the page and its assets with their security headers, the
//! session cookie standing in for the token (roles, CSRF, protected reads, named tokens, expiry by
//! logout), the incidents and log-tail reads.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gantry_api::model::ApiCommand;
use support::*;

async fn request(
    h: &Harness,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    send(
        h.router(),
        builder.body(Body::from(body.to_string())).unwrap(),
    )
    .await
}

/// A session made from `token`: (the cookie header value, the CSRF token).
async fn session(h: &Harness, token: &str) -> (String, String) {
    let auth = format!("Bearer {token}");
    let r = request(
        h,
        Method::POST,
        "/api/v1/session",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    let id = set
        .strip_prefix("gantry_session=")
        .and_then(|r| r.split(';').next())
        .unwrap();
    assert!(id.len() == 64 && id != token, "a random id, not the token");
    assert!(!r.body.contains(token));
    let csrf = r.json()["session"]["csrf"].as_str().unwrap().to_string();
    (format!("gantry_session={id}"), csrf)
}

#[tokio::test]
async fn the_page_and_its_assets_carry_a_strict_csp() {
    let h = Harness::new(go());
    for (path, _) in gantry_api::ui::assets() {
        let r = get(h.router(), path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert_eq!(csp, gantry_api::ui::CSP);
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["x-frame-options"], "DENY");
        // Every file says what it is for on its first line.
        let first = r.body.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("<!--") || first.starts_with("//") || first.starts_with("/*"),
            "{path}: {first}"
        );
    }
    let page = get(h.router(), "/").await;
    assert!(page.content_type().starts_with("text/html"));
    assert!(!page.body.contains("<script>") && !page.body.contains(" style="));
    let total: usize = gantry_api::ui::assets().map(|(_, n)| n).sum();
    assert!(total < 300 * 1024, "{total} bytes before compression");
    assert_eq!(
        get(h.router(), "/ui/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_session_cookie_acts_as_its_token_and_mutations_need_the_csrf_header() {
    let mut h = Harness::new(go());
    let mut seen = h.answer_commands();
    // No session yet: `null`, and whether reads need a token.
    let r = get(h.router(), "/api/v1/session").await;
    assert_eq!(r.json()["session"], serde_json::Value::Null);
    assert_eq!(r.json()["ingress"], true);
    // A bad token makes no session; a missing one neither.
    let r = request(
        &h,
        Method::POST,
        "/api/v1/session",
        &[("authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("set-cookie").is_none());
    let r = request(&h, Method::POST, "/api/v1/session", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let (cookie, csrf) = session(&h, TOKEN).await;
    let who = request(
        &h,
        Method::GET,
        "/api/v1/session",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(who.json()["session"]["actor"], "operator");
    assert_eq!(who.json()["session"]["csrf"], csrf);

    let restart = "/api/v1/services/db/restart";
    let r = request(&h, Method::POST, restart, &[("cookie", &cookie)], "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("CSRF"));
    let r = request(
        &h,
        Method::POST,
        restart,
        &[("cookie", &cookie), ("x-gantry-csrf", "x")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = request(
        &h,
        Method::POST,
        restart,
        &[("cookie", &cookie), ("x-gantry-csrf", &csrf)],
        r#"{"reason":"from the page"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(seen.recv().await, Some(ApiCommand::Restart("db".into())));
    let callers = h.callers.lock().unwrap().clone();
    let last = callers.last().unwrap();
    assert_eq!(last.0, "operator", "audited as the token's actor");
    assert_eq!(last.1.as_deref(), Some("from the page"));

    // A bearer token still wins over a cookie (the CLI is unchanged).
    let r = post(h.router(), restart, Some(&bearer())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);

    // A named operator token's session acts as that name; a read token's session may not act.
    let (alice, alice_csrf) = session(&h, ALICE_TOKEN).await;
    let r = request(
        &h,
        Method::POST,
        restart,
        &[("cookie", &alice), ("x-gantry-csrf", &alice_csrf)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(h.callers.lock().unwrap().last().unwrap().0, "token:alice");
    let (reader, reader_csrf) = session(&h, READ_TOKEN).await;
    let r = request(
        &h,
        Method::POST,
        restart,
        &[("cookie", &reader), ("x-gantry-csrf", &reader_csrf)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Flags and the ingress mode take the cookie too.
    let r = request(
        &h,
        Method::POST,
        "/api/v1/ingress/mode",
        &[
            ("cookie", &cookie),
            ("x-gantry-csrf", &csrf),
            ("content-type", "application/json"),
        ],
        r#"{"mode":"write_drain"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    // Signed out: the cookie is cleared and no longer acts.
    let r = request(
        &h,
        Method::DELETE,
        "/api/v1/session",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = request(
        &h,
        Method::POST,
        restart,
        &[("cookie", &cookie), ("x-gantry-csrf", &csrf)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn protected_reads_take_the_session_cookie() {
    let mut h = Harness::new(go());
    h.state.protect_reads = true;
    for path in [
        "/api/v1/audit",
        "/api/v1/incidents",
        "/api/v1/incidents/1",
        "/api/v1/services/db/logs",
        "/api/v1/missions",
        "/api/v1/flags",
    ] {
        assert_eq!(
            get(h.router(), path).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let (cookie, _) = session(&h, READ_TOKEN).await;
    let r = request(
        &h,
        Method::GET,
        "/api/v1/incidents",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["incidents"][0]["title"], "api down");
    let r = request(
        &h,
        Method::GET,
        "/api/v1/incidents/1",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(r.json()["severity"], "P1");
    let r = request(
        &h,
        Method::GET,
        "/api/v1/incidents/7",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = request(
        &h,
        Method::GET,
        "/api/v1/incidents/x",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = request(
        &h,
        Method::GET,
        "/api/v1/services/db/logs?tail=2",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["lines"][1]["line"], "db line 1");
    let r = request(
        &h,
        Method::GET,
        "/api/v1/services/nope/logs",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // An unknown cookie is a 401, like a wrong token.
    let r = request(
        &h,
        Method::GET,
        "/api/v1/audit",
        &[("cookie", "gantry_session=abc")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// Whether a path the page builds (`${...}` parts as `*`) is one of the routes, a `{param}`
/// or a `*` standing for one segment.
fn routed(path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').collect();
    gantry_api::ROUTES.iter().any(|r| {
        let want: Vec<&str> = r.path.split('/').collect();
        want.len() == segs.len()
            && want
                .iter()
                .zip(&segs)
                .all(|(w, s)| w == s || w.starts_with('{') || *s == "*")
    })
}

#[test]
fn the_page_calls_only_routed_api_paths() {
    let mut seen = 0;
    for (path, _) in gantry_api::ui::assets() {
        let text = match path {
            "/ui/app.js" => include_str!("../ui/app.js"),
            "/ui/views.js" => include_str!("../ui/views.js"),
            "/ui/graph.js" => include_str!("../ui/graph.js"),
            _ => continue,
        };
        for (i, _) in text
            .match_indices("\"/api/v1/")
            .chain(text.match_indices("`/api/v1/"))
        {
            let rest = &text[i + 1..];
            let end = rest.find(['"', '`']).unwrap_or(rest.len());
            let mut literal = rest[..end].to_string();
            // `${...}` (no nesting in these files) stands for one path segment.
            while let Some(a) = literal.find("${") {
                let b = literal[a..].find('}').map_or(literal.len(), |b| a + b + 1);
                literal.replace_range(a..b, "*");
            }
            let literal = literal.split('?').next().unwrap_or_default().to_string();
            // A prefix list (PROTECTED) holds route prefixes, not whole paths.
            if literal.ends_with('/') {
                continue;
            }
            assert!(
                routed(&literal),
                "{path} calls {literal}, which is not a route"
            );
            seen += 1;
        }
    }
    assert!(seen >= 10, "only {seen} API paths found in the page");
    // The service action buttons: each `data-action` is a POST route under the service.
    let html = include_str!("../ui/index.html");
    let mut actions = 0;
    for (i, _) in html.match_indices("data-action=\"") {
        let rest = &html[i + 13..];
        let action = &rest[..rest.find('"').unwrap()];
        let path = format!("/api/v1/services/{{name}}/{action}");
        let found = gantry_api::ROUTES.iter().any(|r| {
            r.method == "POST"
                && (r.path == path
                    || (action.starts_with("rollout/")
                        && r.path == "/api/v1/services/{name}/rollout/{action}"))
        });
        assert!(found, "button {action}: no POST {path}");
        actions += 1;
    }
    assert_eq!(actions, 12);
}

//! `docs/openapi.json` and the router must agree: same (method, path) set, every documented
//! operation reachable, bearer security required exactly on the mutations (optional on the
//! reads that need it beyond loopback), the documented 401s and the Host guard's 403 the
//! ones really given, every `$ref` resolvable.

mod support;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gantry_api::{OPENAPI_JSON, ROUTES};
use serde_json::Value;
use support::*;
use tower::ServiceExt;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("docs/openapi.json is JSON")
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item
            .as_object()
            .expect("path item")
            .iter()
            .filter(|(k, _)| METHODS.contains(&k.as_str()))
        {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

#[test]
fn the_document_is_openapi_3_1() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );
    for schema in [
        "Status",
        "Service",
        "StartupReport",
        "BootRecord",
        "Error",
        "HealthDocument",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
}

#[test]
fn routes_and_document_list_the_same_operations() {
    let doc = document();
    let in_code: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(in_code.len(), ROUTES.len(), "ROUTES has a duplicate");
    let in_doc = documented(&doc);
    let undocumented: Vec<_> = in_code.difference(&in_doc).collect();
    let unrouted: Vec<_> = in_doc.difference(&in_code).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

#[test]
fn bearer_security_is_on_exactly_the_mutations() {
    let doc = document();
    assert!(
        doc.get("security").is_none(),
        "no global security: reads are open"
    );
    for r in ROUTES {
        let op = &doc["paths"][r.path][r.method.to_lowercase()];
        // Required: bearer listed and no `{}` alternative (which makes it optional).
        let secured = bearer(op) && !bearer_optional(op);
        assert_eq!(secured, r.auth, "{} {}", r.method, r.path);
        if r.auth {
            assert!(
                op["responses"]["401"].is_object(),
                "{} {} documents its 401",
                r.method,
                r.path
            );
            assert!(
                op["responses"]["202"].is_object() || op["responses"]["200"].is_object(),
                "{} {} documents its 202 (or 200 when it acts at once)",
                r.method,
                r.path
            );
        }
        assert!(op["operationId"].is_string(), "{} {}", r.method, r.path);
        // Every `{param}` in the path is declared.
        for param in r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            let declared = op["parameters"].as_array().into_iter().flatten().any(|p| {
                let p = resolve(&doc, p);
                p["in"] == "path" && p["name"] == param && p["required"] == true
            });
            assert!(
                declared,
                "{} {} does not declare path parameter {param}",
                r.method, r.path
            );
        }
    }
}

/// The operation lists the bearer scheme among its security requirements.
fn bearer(op: &Value) -> bool {
    op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|x| x.get("bearerAuth").is_some()))
}

/// The bearer scheme is optional: an empty requirement `{}` is an alternative (OpenAPI 3.1).
/// That is how the reads that need the token only beyond loopback are documented.
fn bearer_optional(op: &Value) -> bool {
    bearer(op)
        && op["security"].as_array().is_some_and(|s| {
            s.iter()
                .any(|x| x.as_object().is_some_and(|o| o.is_empty()))
        })
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => v,
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_ref_resolves() {
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

/// Probing: every documented operation, sent through the router, is routed (not 404/405).
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let mut h = Harness::new(go());
    let _seen = h.answer_commands();
    for (method, path) in documented(&document()) {
        let uri = path.replace("{name}", "db");
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let response = h.router().oneshot(request).await.unwrap();
        let status = response.status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri} answered {status}"
        );
    }
    // The probe can tell: a path that is not documented is a 404, a wrong method a 405.
    assert_eq!(
        get(h.router(), "/api/v1/nothing").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(h.router(), "/health", None).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn the_document_is_served() {
    let r = get(Harness::new(go()).router(), "/api/v1/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.json(), document());
}

/// The read endpoints answer what their documented schema says is required.
#[tokio::test]
async fn responses_carry_the_documented_required_fields() {
    let doc = document();
    let h = Harness::new(degraded());
    for (uri, schema) in [
        ("/api/v1/status", "Status"),
        ("/api/v1/services/db", "Service"),
        ("/api/v1/startup", "StartupReport"),
        ("/api/v1/services/nope", "Error"),
    ] {
        let body = get(h.router(), uri).await.json();
        for key in doc["components"]["schemas"][schema]["required"]
            .as_array()
            .expect("required")
        {
            let key = key.as_str().unwrap();
            assert!(
                body.get(key).is_some(),
                "{uri} lacks `{key}` required by {schema}: {body}"
            );
        }
    }
    let status = get(h.router(), "/api/v1/status").await.json();
    for key in doc["components"]["schemas"]["Service"]["required"]
        .as_array()
        .unwrap()
    {
        assert!(
            status["services"][0].get(key.as_str().unwrap()).is_some(),
            "service lacks {key}"
        );
    }
    let health = get(h.router(), "/health").await.json();
    for key in doc["components"]["schemas"]["HealthDocument"]["required"]
        .as_array()
        .unwrap()
    {
        assert!(
            health.get(key.as_str().unwrap()).is_some(),
            "/health lacks {key}"
        );
    }
    let boots = get(h.router(), "/api/v1/boots").await.json();
    for key in doc["components"]["schemas"]["BootRecord"]["required"]
        .as_array()
        .unwrap()
    {
        assert!(
            boots["boots"][0].get(key.as_str().unwrap()).is_some(),
            "boot record lacks {key}"
        );
    }
}

/// The documented 401s are exactly the ones the router gives to a request without a token:
/// always for the mutations, and for the reads with optional bearer security only when the
/// API is reachable beyond loopback (`protect_reads`).
#[tokio::test]
async fn documented_401s_are_the_ones_the_router_gives() {
    let doc = document();
    for protect_reads in [false, true] {
        let mut h = Harness::new(go());
        h.state.protect_reads = protect_reads;
        let _seen = h.answer_commands();
        for r in ROUTES {
            let op = &doc["paths"][r.path][r.method.to_lowercase()];
            let documented = op["responses"]["401"].is_object();
            assert_eq!(
                documented,
                r.auth || bearer_optional(op),
                "{} {}: a 401 is documented exactly where a token can be needed",
                r.method,
                r.path
            );
            let request = Request::builder()
                .method(Method::from_bytes(r.method.as_bytes()).unwrap())
                .uri(r.path.replace("{name}", "db"))
                .body(Body::empty())
                .unwrap();
            let status = h.router().oneshot(request).await.unwrap().status();
            let expected = r.auth || (protect_reads && bearer_optional(op));
            assert_eq!(
                status == StatusCode::UNAUTHORIZED,
                expected,
                "{} {} without a token (protect_reads {protect_reads}) answered {status}",
                r.method,
                r.path
            );
        }
    }
}

/// Sends `METHOD PATH` with the given `Host` over a real socket; returns the status line's code
/// and the body.
async fn raw(addr: &str, method: &str, path: &str, host: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("an answer within 10 s")
        .expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Every operation documents the Host guard's 403, and the served API really answers every
/// documented operation with it (the JSON error) when `Host` names a DNS name.
#[tokio::test]
async fn every_operation_documents_and_gets_the_host_guard_403() {
    let doc = document();
    let mut h = Harness::new(go());
    let _seen = h.answer_commands();
    let listener = gantry_api::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gantry_api::serve_on(listener, h.router(), async move {
        let _ = stopped.await;
    }));
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        assert_eq!(
            op["responses"]["403"]["$ref"], "#/components/responses/HostNotAllowed",
            "{method} {path} documents the Host guard's 403"
        );
        let uri = path.replace("{name}", "db");
        let (code, body) = raw(&addr, &method, &uri, "rebind.attacker.example").await;
        assert_eq!(code, 403, "{method} {uri}: {body}");
        let error: Value = serde_json::from_str(&body).expect("a JSON error");
        assert!(
            error["error"].is_string() && error["hint"].is_string(),
            "{body}"
        );
    }
    stop.send(()).unwrap();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("serve returned");
}

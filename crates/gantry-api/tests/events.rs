//! `/api/v1/events`: Server-Sent Events through the router, read frame by frame with a deadline.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use support::*;
use tower::ServiceExt;

/// Collects the SSE text of one response body across calls.
struct SseReader {
    body: Body,
    text: String,
}

impl SseReader {
    fn new(body: Body) -> Self {
        SseReader {
            body,
            text: String::new(),
        }
    }

    /// Reads until `want` complete messages (blank-line separated, with a `data:` line) arrived
    /// in total; returns all of them.
    async fn messages(&mut self, want: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let complete = match self.text.rfind("\n\n") {
                Some(end) => &self.text[..end],
                None => "",
            };
            let messages: Vec<String> = complete
                .split("\n\n")
                .filter(|m| m.lines().any(|l| l.starts_with("data:")))
                .map(str::to_string)
                .collect();
            if messages.len() >= want {
                return messages;
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .unwrap_or_else(|_| {
                    panic!("no {want} SSE messages within 10 s; got {:?}", self.text)
                })
                .expect("stream still open")
                .expect("frame");
            if let Ok(data) = frame.into_data() {
                self.text
                    .push_str(std::str::from_utf8(&data).expect("UTF-8"));
            }
        }
    }
}

fn field<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim_start)
    })
}

#[tokio::test]
async fn a_broadcast_event_arrives_named_after_its_event_field() {
    let h = Harness::new(booting());
    let response = h
        .router()
        .oneshot(Request::get("/api/v1/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let event = serde_json::json!({"event": "transition", "service": "db", "from": "starting", "to": "ready"});
    h.events
        .send(event.clone())
        .expect("a subscriber exists once the response is returned");
    let mut body = SseReader::new(response.into_body());
    let messages = body.messages(1).await;
    assert_eq!(field(&messages[0], "event"), Some("transition"));
    let data: serde_json::Value =
        serde_json::from_str(field(&messages[0], "data").unwrap()).unwrap();
    assert_eq!(data, event);

    // Objects without a usable "event" field are plain messages, not a panic.
    h.events
        .send(serde_json::json!({"event": "bad\nname", "x": 1}))
        .unwrap();
    h.events
        .send(serde_json::json!({"x": "multi\nline"}))
        .unwrap();
    let messages = body.messages(3).await;
    assert_eq!(field(&messages[1], "event"), Some("message"));
    assert_eq!(field(&messages[2], "event"), Some("message"));
    assert_eq!(field(&messages[2], "data"), Some(r#"{"x":"multi\nline"}"#));
}

#[tokio::test]
async fn a_lagging_client_is_told_and_skips_ahead() {
    let h = Harness::with_capacity(booting(), 2);
    let response = h
        .router()
        .oneshot(Request::get("/api/v1/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    for i in 0..5 {
        h.events
            .send(serde_json::json!({"event": "output", "n": i}))
            .unwrap();
    }
    let mut body = SseReader::new(response.into_body());
    let messages = body.messages(3).await;
    assert_eq!(field(&messages[0], "event"), Some("lagged"));
    let lagged: serde_json::Value =
        serde_json::from_str(field(&messages[0], "data").unwrap()).unwrap();
    assert_eq!(lagged, serde_json::json!({"event": "lagged", "skipped": 3}));
    // Then the newest two, and the stream stays open for more.
    assert!(field(&messages[1], "data").unwrap().contains("\"n\":3"));
    assert!(field(&messages[2], "data").unwrap().contains("\"n\":4"));
    h.events
        .send(serde_json::json!({"event": "finished"}))
        .unwrap();
    let messages = body.messages(4).await;
    assert_eq!(field(&messages[3], "event"), Some("finished"));
}

#[tokio::test]
async fn the_stream_ends_when_the_driver_is_gone() {
    let h = Harness::new(go());
    let response = h
        .router()
        .oneshot(Request::get("/api/v1/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    drop(h.snapshot);
    let mut body = response.into_body();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = body.frame().await {
            frame.expect("frame");
        }
    })
    .await;
    assert!(
        end.is_ok(),
        "the SSE body did not end after the driver went away"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_stream_gets_keep_alive_comments_every_15_s() {
    let h = Harness::new(go());
    let response = h
        .router()
        .oneshot(Request::get("/api/v1/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut body = response.into_body();
    let started = tokio::time::Instant::now();
    // Virtual time: the runtime jumps straight to the next timer.
    let frame = tokio::time::timeout(Duration::from_secs(60), body.frame())
        .await
        .expect("a keep-alive within 60 s")
        .expect("open")
        .expect("frame");
    let text = String::from_utf8(frame.into_data().expect("data").to_vec()).unwrap();
    assert!(text.starts_with(':'), "a comment, not an event: {text:?}");
    assert_eq!(started.elapsed(), gantry_api::SSE_KEEP_ALIVE);
}

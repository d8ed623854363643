//! `GET /api/v1/events`: the server-sent event stream of state changes, one SSE message per
//! broadcast object, ended when the server shuts down or the driver is gone.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::auth::authorize_read;
use crate::error::ApiError;
use crate::model::{ApiState, Snapshot};

/// SSE keep-alive comments, so proxies and clients do not drop an idle stream.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Set by `serve` when the server shuts down, so open SSE streams end and graceful
/// shutdown does not wait on them forever.
#[derive(Clone, Debug)]
pub(crate) struct ShutdownSignal(pub watch::Receiver<bool>);

/// One broadcast object as an SSE message named after its `"event"` field.
fn to_sse(value: &Value) -> Event {
    // axum panics on an event name with CR/LF; such a name falls back to the default "message".
    let name = value
        .get("event")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && !n.contains(['\r', '\n']))
        .unwrap_or("message");
    // A Value always serialises; compact JSON never contains a raw newline.
    let data = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string());
    Event::default().event(name).data(data)
}

fn lagged_event(skipped: u64) -> Event {
    let data = serde_json::json!({ "event": "lagged", "skipped": skipped });
    Event::default().event("lagged").data(data.to_string())
}

/// The stream behind `/events`. Subscribes immediately, so nothing sent after the
/// request was accepted is missed.
pub(crate) fn event_stream(
    rx: broadcast::Receiver<Value>,
    mut snapshots: watch::Receiver<std::sync::Arc<Snapshot>>,
    shutdown: Option<ShutdownSignal>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(v) => Some((Ok(to_sse(&v)), rx)),
            // A slow client skips ahead and is told how much it missed instead of being cut off.
            Err(broadcast::error::RecvError::Lagged(n)) => Some((Ok(lagged_event(n)), rx)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    // The state holds a Sender, so the broadcast never closes on its own: end the stream
    // when the server shuts down or the driver loop is gone.
    let end = async move {
        let server_down = async {
            match shutdown {
                Some(ShutdownSignal(mut rx)) => {
                    let _ = rx.wait_for(|down| *down).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let driver_gone = async { while snapshots.changed().await.is_ok() {} };
        tokio::select! {
            () = server_down => {}
            () = driver_gone => {}
        }
    };
    events.take_until(end)
}

pub(crate) async fn events(
    State(state): State<ApiState>,
    headers: HeaderMap,
    signal: Option<Extension<ShutdownSignal>>,
    streams: Option<Extension<crate::slots::StreamSlots>>,
) -> Response {
    if let Err(e) = authorize_read(&state, &headers) {
        return e.into_response();
    }
    // Served by gantry's own server, a stream holds one of its few stream permits for its
    // life, so streams can never keep every connection busy (server.rs).
    let permit = match streams {
        Some(Extension(slots)) => match slots.try_take() {
            Some(p) => Some(p),
            None => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many event streams are open",
                    "close an event stream (`gantry up` watchers, curl of /api/v1/events) and retry",
                )
                .into_response();
            }
        },
        None => None,
    };
    let stream = event_stream(
        state.events.subscribe(),
        state.snapshot.clone(),
        signal.map(|Extension(s)| s),
    )
    .map(move |event| {
        let _held = &permit;
        event
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE))
        .into_response()
}

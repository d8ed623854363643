//! The ingress's place in the API: its status (`GET /api/v1/ingress`), the traffic-mode switch
//! (`POST /api/v1/ingress/mode`) and its golden signals appended to `/metrics`.
//!
//! gantry-api does not know the proxy: the driver hands it an [`IngressControl`], which acts
//! on the proxy directly (atomics on the proxy's own thread), so a switch never waits for the
//! supervisor's event loop.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::authorize;
use crate::error::ApiError;
use crate::model::ApiState;

/// What the API may do with the ingress.
pub trait IngressControl: Send + Sync {
    /// Routes, instances, the mode and the golden signals, as JSON.
    fn status(&self) -> serde_json::Value;
    /// Switches the traffic mode (`normal`, `write_drain`, `brownout`, `emergency`);
    /// `shed_percent` is brownout's share of the other routes' requests shed. The mode's
    /// name as applied, or why not.
    fn set_mode(&self, mode: &str, shed_percent: Option<u8>) -> Result<String, String>;
    /// Appends the proxy's series in the Prometheus text format (no `# EOF`).
    fn render_metrics(&self, out: &mut String);
}

/// The body of `POST /api/v1/ingress/mode`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    pub mode: String,
    #[serde(default)]
    pub shed_percent: Option<u8>,
    /// Why: kept with the event (and, later, the audit log).
    #[serde(default)]
    pub reason: Option<String>,
}

fn no_ingress() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "this stack has no ingress",
        "add an [ingress] table with listen and routes to gantry.toml (docs/config.md)",
    )
}

pub(crate) async fn status(State(state): State<ApiState>) -> Response {
    match &state.ingress {
        Some(ingress) => Json(ingress.status()).into_response(),
        None => no_ingress().into_response(),
    }
}

pub(crate) async fn mode(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<ModeRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    let Some(ingress) = &state.ingress else {
        return no_ingress().into_response();
    };
    let request = match body {
        Ok(Json(r)) => r,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid body: {}", e.body_text()),
                r#"send {"mode": "write_drain", "reason": "..."}; modes: normal, write_drain, brownout (with "shed_percent"), emergency"#,
            )
            .into_response();
        }
    };
    match ingress.set_mode(&request.mode, request.shed_percent) {
        Ok(applied) => {
            let reason = request.reason.unwrap_or_default();
            let _ = state.events.send(serde_json::json!({
                "event": "ingress_mode",
                "mode": applied,
                "shed_percent": request.shed_percent,
                "reason": reason,
            }));
            Json(serde_json::json!({ "mode": applied, "shed_percent": request.shed_percent }))
                .into_response()
        }
        Err(why) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            why,
            "modes: normal, write_drain, brownout (with shed_percent 0-100), emergency",
        )
        .into_response(),
    }
}

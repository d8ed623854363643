//! The ingress's place in the API: its status (`GET /api/v1/ingress`), the traffic-mode switch
//! (`POST /api/v1/ingress/mode`) and its golden signals appended to `/metrics`.
//!
//! gantry-api does not know the proxy: the driver hands it an [`IngressControl`]. A mode
//! switch goes through the driver as kill-switch overrides (one source of truth, audited);
//! the driver then sets the proxy's mode (atomics on the proxy's own thread).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::{check_reason, dispatch};
use crate::auth::authorize;
use crate::error::ApiError;
use crate::model::{ApiCommand, ApiState};

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

/// `POST /api/v1/ingress/mode`: checked here, then set through the kill switches by the
/// driver (audited as `ingress.mode`), so the flags and the proxy never disagree.
pub(crate) async fn mode(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<ModeRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let caller = match authorize(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if state.ingress.is_none() {
        return no_ingress().into_response();
    }
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
    let modes = "modes: normal, write_drain, brownout (with shed_percent 0-100), emergency";
    if !matches!(
        request.mode.as_str(),
        "normal" | "write_drain" | "brownout" | "emergency"
    ) {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "unknown mode `{}`",
                request.mode.chars().take(40).collect::<String>()
            ),
            modes,
        )
        .into_response();
    }
    if request.shed_percent.is_some_and(|p| p > 100) {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "shed_percent is a share of requests: 0 to 100",
            modes,
        )
        .into_response();
    }
    let reason = match check_reason(request.reason) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let command = ApiCommand::IngressMode {
        mode: request.mode,
        shed_percent: request.shed_percent,
    };
    dispatch(&state, caller, reason, command).await
}

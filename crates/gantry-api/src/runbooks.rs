//! The runbook routes: `GET /api/v1/runbooks` (definitions, the run under way, the last runs) and
//! `POST /api/v1/runbooks/{name}/run` (`{"reason": "...", "dry_run": true}`). The driver runs them;
//! a run is audited, and so is each of its steps.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::{bad_path, check_reason, dispatch};
use crate::auth::{authorize, authorize_read};
use crate::error::ApiError;
use crate::model::{ApiCommand, ApiState};
use crate::rollout::ask;

/// The body of `POST /api/v1/runbooks/{name}/run`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `GET /api/v1/runbooks`.
pub(crate) async fn list(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let caller = match authorize_read(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    json_answer(ask(&state, caller, ApiCommand::Runbooks).await)
}

/// `POST /api/v1/runbooks/{name}/run`: a dry run answers 200 with what each step would do;
/// a run answers 202 once started (follow it with `GET /api/v1/runbooks` or the event stream).
pub(crate) async fn run(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    let caller = match authorize(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Path(name) = match name {
        Ok(n) => n,
        Err(e) => return bad_path(&e).into_response(),
    };
    let body: RunBody = if body.iter().all(u8::is_ascii_whitespace) {
        RunBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("invalid body: {e}"),
                    r#"send {"reason": "why", "dry_run": false}"#,
                )
                .into_response();
            }
        }
    };
    let reason = match check_reason(body.reason) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if body.dry_run {
        return json_answer(
            ask(
                &state,
                caller,
                ApiCommand::RunRunbook {
                    name,
                    dry_run: true,
                },
            )
            .await,
        );
    }
    dispatch(
        &state,
        caller,
        reason,
        ApiCommand::RunRunbook {
            name,
            dry_run: false,
        },
    )
    .await
}

fn json_answer(answer: Result<Result<String, String>, ApiError>) -> Response {
    match answer {
        Ok(Ok(text)) => {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            (StatusCode::OK, Json(v)).into_response()
        }
        Ok(Err(message)) => ApiError::new(
            StatusCode::NOT_FOUND,
            message,
            "GET /api/v1/runbooks lists the [runbooks.NAME] of the stack file",
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

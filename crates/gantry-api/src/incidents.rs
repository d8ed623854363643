//! The incident routes: read (`GET /api/v1/incidents`, `/api/v1/incidents/{id}` with its timeline
//! and post-incident draft) and act (`POST /api/v1/incidents` opens one by hand,
//! `POST /api/v1/incidents/{id}/ack` and `/resolve`); actions go to the driver (audited).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::{check_reason, dispatch};
use crate::auth::{authorize, authorize_read};
use crate::error::ApiError;
use crate::model::{ApiCommand, ApiState};

/// The body of `POST /api/v1/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    severity: String,
    title: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/incidents`: `{"severity": "P1", "title": "...", "reason": "..."}`.
pub(crate) async fn open(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let caller = match authorize(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let hint =
        r#"send {"severity": "P1", "title": "checkout errors", "reason": "paged by support"}"#;
    let body: OpenBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_REQUEST, format!("invalid body: {e}"), hint)
                .into_response();
        }
    };
    let severity = body.severity.to_ascii_uppercase();
    if !["P0", "P1", "P2"].contains(&severity.as_str()) {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "severity must be P0, P1 or P2",
            hint,
        )
        .into_response();
    }
    let title = body.title.trim().to_string();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the title must be 1 to 200 characters on one line",
            hint,
        )
        .into_response();
    }
    let reason = match check_reason(body.reason) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    dispatch(
        &state,
        caller,
        reason,
        ApiCommand::IncidentOpen { severity, title },
    )
    .await
}

/// `POST /api/v1/incidents/{id}/{action}`: `ack` or `resolve` (body optional: `{"reason": "..."}`).
pub(crate) async fn act(
    State(state): State<ApiState>,
    headers: HeaderMap,
    params: Result<Path<(String, String)>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    let caller = match authorize(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Ok(Path((id, action))) = params else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad path",
            "POST /api/v1/incidents/{id}/ack or /resolve",
        )
        .into_response();
    };
    let Ok(id) = id.parse::<i64>() else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "the incident id must be a number",
            "GET /api/v1/incidents lists them with their ids",
        )
        .into_response();
    };
    let command = match action.as_str() {
        "ack" => ApiCommand::IncidentAck(id),
        "resolve" => ApiCommand::IncidentResolve(id),
        _ => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown incident action `{}`",
                    action.chars().take(40).collect::<String>()
                ),
                "the actions are ack and resolve",
            )
            .into_response();
        }
    };
    let reason = match crate::api::reason_of(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    dispatch(&state, caller, reason, command).await
}

/// `GET /api/v1/incidents`: every incident, newest first (the read token when reads are protected).
pub(crate) async fn list(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    read_incidents(&state, &headers, None).await
}

/// `GET /api/v1/incidents/{id}`: one incident with its timeline and post-incident draft.
pub(crate) async fn one(
    State(state): State<ApiState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    // Authorization first: an unauthenticated caller learns nothing, not even whether an id exists.
    if let Err(e) = authorize_read(&state, &headers) {
        return e.into_response();
    }
    let id = match id.map(|Path(id)| id.parse::<i64>()) {
        Ok(Ok(id)) => id,
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "the incident id must be a number",
                "GET /api/v1/incidents lists them with their ids",
            )
            .into_response();
        }
    };
    read_incidents(&state, &headers, Some(id)).await
}

async fn read_incidents(state: &ApiState, headers: &HeaderMap, id: Option<i64>) -> Response {
    if let Err(e) = authorize_read(state, headers) {
        return e.into_response();
    }
    let incidents = state.incidents.clone();
    match tokio::task::spawn_blocking(move || incidents(id)).await {
        Ok(Ok(Some(value))) => Json(value).into_response(),
        Ok(Ok(None)) => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no incident {}", id.unwrap_or_default()),
            "GET /api/v1/incidents lists them with their ids",
        )
        .into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e,
            "incidents cannot be read until the store is readable again",
        )
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the incidents could not be read",
            "check the state store in the state dir; `gantry incident list` reads it directly",
        )
        .into_response(),
    }
}

//! The rollout routes: start a canary rollout of a service, read its status, and promote,
//! pause, resume or abort it. Each goes to the driver as an [`ApiCommand`] (mutations audited).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use crate::api::{COMMAND_TIMEOUT, bad_path, check_reason, dispatch};
use crate::auth::{authorize, authorize_read};
use crate::error::ApiError;
use crate::model::{ApiCommand, ApiState, Caller, CommandRequest};

/// `POST /api/v1/services/{name}/rollout`: the body's `reason` is taken out, the rest goes to
/// the driver as it was sent (it checks every field and says which one is wrong).
pub(crate) async fn start(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    let caller = match authorize(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Path(service) = match name {
        Ok(n) => n,
        Err(e) => return bad_path(&e).into_response(),
    };
    let mut body: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) => return invalid("the body must be a JSON object").into_response(),
            Err(e) => return invalid(&format!("invalid body: {e}")).into_response(),
        }
    };
    let reason = body
        .as_object_mut()
        .and_then(|o| o.remove("reason"))
        .and_then(|r| r.as_str().map(str::to_string));
    let reason = match check_reason(reason) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    dispatch(
        &state,
        caller,
        reason,
        ApiCommand::Rollout { service, body },
    )
    .await
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        message.to_string(),
        r#"send e.g. {"set_env": {"VERSION": "2"}, "steps": [1, 10, 50, 100], "interval": "30s", "reason": "why"}"#,
    )
}

/// `POST /api/v1/services/{name}/rollout/{action}`: promote, pause, resume or abort.
pub(crate) async fn control(
    State(state): State<ApiState>,
    headers: HeaderMap,
    params: Result<Path<(String, String)>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    let caller = match authorize(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Path((service, action)) = match params {
        Ok(p) => p,
        Err(e) => return bad_path(&e).into_response(),
    };
    if !["promote", "pause", "resume", "abort"].contains(&action.as_str()) {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown rollout action `{action}`"),
            "the actions are promote, pause, resume and abort",
        )
        .into_response();
    }
    let reason = match crate::api::reason_of(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    dispatch(
        &state,
        caller,
        reason,
        ApiCommand::RolloutControl { service, action },
    )
    .await
}

/// `POST /api/v1/services/{name}/rollback`: `{"to": N, "reason": "..."}`, both optional; the
/// service goes back to release N (default: the previous stable one) through the rolling
/// machinery.
pub(crate) async fn rollback(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    let caller = match authorize(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Path(service) = match name {
        Ok(n) => n,
        Err(e) => return bad_path(&e).into_response(),
    };
    let hint = r#"send e.g. {"to": 3, "reason": "release 4 breaks checkout"}, or {} for the previous stable release"#;
    let body: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the body must be a JSON object",
                    hint,
                )
                .into_response();
            }
        }
    };
    let to = match &body["to"] {
        serde_json::Value::Null => None,
        v => match v.as_i64().filter(|n| *n > 0) {
            Some(n) => Some(n),
            None => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("to: `{v}` is not a release number"),
                    hint,
                )
                .into_response();
            }
        },
    };
    let reason = body["reason"].as_str().map(str::to_string);
    let reason = match check_reason(reason) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    dispatch(&state, caller, reason, ApiCommand::Rollback { service, to }).await
}

/// `GET /api/v1/services/{name}/rollout`: phase, step, weight, the last verdict with its numbers.
pub(crate) async fn status(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    read_json(
        &state,
        &headers,
        name,
        ApiCommand::RolloutStatus,
        "start one with `gantry rollout NAME --set-env K=V --reason TEXT`",
    )
    .await
}

/// `GET /api/v1/services/{name}/releases`: the numbered releases, newest first.
pub(crate) async fn releases(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    read_json(
        &state,
        &headers,
        name,
        ApiCommand::Releases,
        "releases are recorded per service of the stack file",
    )
    .await
}

/// A read the driver answers with JSON text: 200 with it, or 404 with `hint`.
async fn read_json(
    state: &ApiState,
    headers: &HeaderMap,
    name: Result<Path<String>, PathRejection>,
    make: fn(String) -> ApiCommand,
    hint: &str,
) -> Response {
    let caller = match authorize_read(state, headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Path(service) = match name {
        Ok(n) => n,
        Err(e) => return bad_path(&e).into_response(),
    };
    match ask(state, caller, make(service)).await {
        Ok(Ok(text)) => {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            (StatusCode::OK, Json(v)).into_response()
        }
        Ok(Err(message)) => ApiError::new(StatusCode::NOT_FOUND, message, hint).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Sends a command to the driver and waits for its answer.
pub(crate) async fn ask(
    state: &ApiState,
    caller: Caller,
    command: ApiCommand,
) -> Result<Result<String, String>, ApiError> {
    let gone = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gantry driver is not running",
            "the instance is shutting down or has stopped; check `gantry status`",
        )
    };
    let (tx, rx) = oneshot::channel();
    let exchange = async {
        state
            .commands
            .send(CommandRequest {
                command,
                caller,
                reason: None,
                reply: tx,
            })
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    };
    tokio::time::timeout(COMMAND_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the gantry driver did not answer in time",
                "check `gantry status` and the gantry logs",
            )
        })?
}

//! The flag administration routes: `GET /api/v1/flags` (definitions, current values, overrides
//! with who/why/until, unknown-key counts), `PUT /api/v1/flags/{key}` (an override, optionally
//! expiring) and `DELETE /api/v1/flags/{key}`. Mutations go through the driver (audited).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{check_reason, dispatch, parse_age, reason_of};
use crate::auth::{authorize, authorize_read};
use crate::error::ApiError;
use crate::model::{ApiCommand, ApiState};

/// The body of `PUT /api/v1/flags/{key}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    value: Value,
    #[serde(default)]
    reason: Option<String>,
    /// `90s`, `30m`, `2h`, `1d`.
    #[serde(default)]
    expires: Option<String>,
}

fn unknown_flag(key: &str, state: &ApiState) -> ApiError {
    let view = state.flags.borrow().clone();
    let known: Vec<&str> = view.set.keys().take(20).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no flag `{}`", key.chars().take(100).collect::<String>()),
        format!(
            "define it in gantry.toml ([flags.NAME]) or the flags file first; known flags: {}",
            known.join(", ")
        ),
    )
}

/// `GET /api/v1/flags`.
pub(crate) async fn list(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize_read(&state, &headers) {
        return e.into_response();
    }
    let view = state.flags.borrow().clone();
    let empty = Value::Object(serde_json::Map::new());
    let flags: Vec<Value> = view
        .set
        .keys()
        .filter_map(|key| {
            let flag = view.set.get(key)?;
            let evaluation = match view.set.evaluate(key, &empty) {
                Ok(e) => json!({ "value": e.value, "variant": e.variant, "reason": e.reason }),
                Err(e) => json!({ "errorCode": e.code, "errorDetails": e.details }),
            };
            let over = view.overrides.iter().find(|o| o.key == key);
            Some(json!({
                "key": key,
                "kind": flag.kind,
                "state": flag.state,
                "description": flag.description,
                "owner": flag.owner,
                "expires": flag.expires,
                "tags": flag.tags,
                "origin": flag.origin,
                "variants": flag.variants,
                "default_variant": flag.default_variant,
                "evaluation": evaluation,
                "override": over,
            }))
        })
        .collect();
    Json(json!({
        "flags": flags,
        "overrides": view.overrides,
        "unknown": state.flag_stats.unknown_counts(),
        "source": view.source,
    }))
    .into_response()
}

/// `PUT /api/v1/flags/{key}`: `{"value": ..., "reason": "...", "expires": "2h"}`.
pub(crate) async fn set(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authorize(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let request: SetBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid body: {e}"),
                r#"send {"value": true, "reason": "why", "expires": "2h"} (expires optional: s, m, h, d)"#,
            )
            .into_response();
        }
    };
    let reason = match check_reason(request.reason) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let expires = match request.expires.as_deref() {
        None => None,
        Some(text) => match parse_age(text) {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "`expires` {:?} is not a duration",
                        text.chars().take(40).collect::<String>()
                    ),
                    "use a number and a unit: 90s, 30m, 2h, 1d",
                )
                .into_response();
            }
        },
    };
    let view = state.flags.borrow().clone();
    if view.set.get(&key).is_none() {
        return unknown_flag(&key, &state).into_response();
    }
    if let Err(why) = view.set.check_override(&key, &request.value) {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            why,
            "GET /api/v1/flags shows each flag's type and variants",
        )
        .into_response();
    }
    let command = ApiCommand::SetFlag {
        key,
        value: request.value,
        expires,
    };
    dispatch(&state, caller, reason, command).await
}

/// `DELETE /api/v1/flags/{key}`: removes the override (body optional: `{"reason": "..."}`).
pub(crate) async fn unset(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authorize(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let reason = match reason_of(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if state.flags.borrow().set.get(&key).is_none() {
        return unknown_flag(&key, &state).into_response();
    }
    dispatch(&state, caller, reason, ApiCommand::UnsetFlag { key }).await
}

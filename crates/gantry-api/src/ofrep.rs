//! The OpenFeature Remote Evaluation Protocol (OFREP) server: single and bulk flag evaluation
//! (with an ETag over the flag set and the context, `If-None-Match` → 304), the provider
//! configuration, and the evaluation / unknown-key counters `/metrics` and `gantry flags` show.
//!
//! Every OFREP call needs a token (the read token services get, a named token or the operator
//! token). Evaluation runs on the API's own tasks against the set the driver last published.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gantry_flags::{ErrorCode, EvalError, Evaluation};
use serde_json::{Value, json};

use crate::auth::identify;
use crate::model::ApiState;

/// The most distinct flag keys a counter keeps its own label for; the rest count as `(other)`.
pub const MAX_LABELS: usize = 100;

/// The label for keys beyond [`MAX_LABELS`].
pub const OTHER: &str = "(other)";

/// Evaluation and unknown-key counters with bounded label sets.
#[derive(Debug, Default)]
pub struct FlagStats {
    unknown: Mutex<BTreeMap<String, u64>>,
    evaluations: Mutex<BTreeMap<(String, String, String), u64>>,
}

impl FlagStats {
    /// Counts a request for an unknown key; true the first time this key is seen (log it then).
    pub fn unknown(&self, key: &str) -> bool {
        let mut map = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(key) {
            *n += 1;
            return false;
        }
        let label = if map.len() < MAX_LABELS {
            key.to_string()
        } else {
            OTHER.to_string()
        };
        let first = label != OTHER;
        *map.entry(label).or_insert(0) += 1;
        first
    }

    /// Counts successful evaluations by flag, variant and reason.
    pub fn evaluated<'a>(&self, evals: impl Iterator<Item = &'a Evaluation>) {
        let mut map = self.evaluations.lock().unwrap_or_else(|e| e.into_inner());
        for e in evals {
            let variant = e.variant.clone().unwrap_or_default();
            let reason = reason_name(e);
            let known = map.len() < MAX_LABELS * 4
                || map.contains_key(&(e.key.clone(), variant.clone(), reason.clone()));
            let label = if known {
                (e.key.clone(), variant, reason)
            } else {
                (OTHER.to_string(), OTHER.to_string(), reason)
            };
            *map.entry(label).or_insert(0) += 1;
        }
    }

    /// Unknown keys asked for and how often.
    pub fn unknown_counts(&self) -> BTreeMap<String, u64> {
        self.unknown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Appends `gantry_flags_unknown_total` and `gantry_flag_evaluations_total` (Prometheus text).
    pub fn render(&self, out: &mut String) {
        let unknown = self.unknown_counts();
        let evals = self
            .evaluations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let _ = writeln!(
            out,
            "# HELP gantry_flags_unknown Requests over OFREP for flag keys no definition has."
        );
        let _ = writeln!(out, "# TYPE gantry_flags_unknown counter");
        for (key, n) in unknown {
            let _ = writeln!(
                out,
                "gantry_flags_unknown_total{{flag=\"{}\"}} {n}",
                escape(&key)
            );
        }
        let _ = writeln!(
            out,
            "# HELP gantry_flag_evaluations Flag evaluations over OFREP by flag, variant and reason."
        );
        let _ = writeln!(out, "# TYPE gantry_flag_evaluations counter");
        for ((key, variant, reason), n) in evals {
            let _ = writeln!(
                out,
                "gantry_flag_evaluations_total{{flag=\"{}\",variant=\"{}\",reason=\"{}\"}} {n}",
                escape(&key),
                escape(&variant),
                escape(&reason)
            );
        }
    }
}

fn reason_name(e: &Evaluation) -> String {
    serde_json::to_value(e.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Escapes a Prometheus label value.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "GENERAL".to_string())
}

fn error_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::FlagNotFound => StatusCode::NOT_FOUND,
        ErrorCode::General => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The evaluation context of a request body `{"context": {...}}` (no body: an empty context).
fn context_of(body: &[u8]) -> Result<Value, (String, String)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|e| {
        (
            "INVALID_CONTEXT".to_string(),
            format!(r#"the body is not JSON ({e}); send {{"context": {{"targetingKey": "..."}}}}"#),
        )
    })?;
    match parsed.get("context") {
        None | Some(Value::Null) => Ok(Value::Object(serde_json::Map::new())),
        Some(ctx @ Value::Object(_)) => Ok(ctx.clone()),
        Some(_) => Err((
            "INVALID_CONTEXT".to_string(),
            r#"`context` must be a JSON object, e.g. {"context": {"targetingKey": "user-1"}}"#
                .to_string(),
        )),
    }
}

fn failure(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn eval_error_json(e: &EvalError) -> Value {
    json!({ "key": e.key, "errorCode": code_name(e.code), "errorDetails": e.details })
}

fn note_unknown(state: &ApiState, key: &str) {
    if state.flag_stats.unknown(key) {
        let shown: String = key.chars().take(200).collect();
        let _ = state.events.send(json!({
            "event": "flag_unknown",
            "flag": shown,
        }));
        eprintln!(
            "gantry: warning: a client asked for flag `{}`, which no definition has (counted in /metrics as gantry_flags_unknown_total)",
            shown.escape_debug()
        );
    }
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub(crate) async fn evaluate(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = identify(&state, &headers) {
        return e.into_response();
    }
    let ctx = match context_of(&body) {
        Ok(ctx) => ctx,
        Err((code, details)) => {
            return failure(
                StatusCode::BAD_REQUEST,
                json!({ "key": key, "errorCode": code, "errorDetails": details }),
            );
        }
    };
    let view = state.flags.borrow().clone();
    match view.set.evaluate(&key, &ctx) {
        Ok(evaluation) => {
            state.flag_stats.evaluated(std::iter::once(&evaluation));
            Json(evaluation).into_response()
        }
        Err(e) => {
            if e.code == ErrorCode::FlagNotFound {
                note_unknown(&state, &key);
            }
            failure(error_status(e.code), eval_error_json(&e))
        }
    }
}

/// `POST /ofrep/v1/evaluate/flags`: every flag, with an ETag over the set and the context.
pub(crate) async fn evaluate_all(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = identify(&state, &headers) {
        return e.into_response();
    }
    let ctx = match context_of(&body) {
        Ok(ctx) => ctx,
        Err((code, details)) => {
            return failure(
                StatusCode::BAD_REQUEST,
                json!({ "errorCode": code, "errorDetails": details }),
            );
        }
    };
    let view = state.flags.borrow().clone();
    let etag = view.set.etag(&ctx);
    let etag_header = HeaderValue::from_str(&etag).ok();
    if let Some(given) = headers.get(header::IF_NONE_MATCH)
        && let Ok(given) = given.to_str()
        && given
            .split(',')
            .any(|t| t.trim() == etag || t.trim() == "*")
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Some(v) = etag_header {
            response.headers_mut().insert(header::ETAG, v);
        }
        return response;
    }
    let results = view.set.evaluate_all(&ctx);
    state
        .flag_stats
        .evaluated(results.iter().filter_map(|r| r.as_ref().ok()));
    let flags: Vec<Value> = results
        .iter()
        .map(|r| match r {
            Ok(e) => serde_json::to_value(e).unwrap_or(Value::Null),
            Err(e) => eval_error_json(e),
        })
        .collect();
    let mut response = Json(json!({ "flags": flags })).into_response();
    if let Some(v) = etag_header {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// `GET /ofrep/v1/configuration`: what this provider supports (polling the bulk endpoint).
pub(crate) async fn configuration(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(e) = identify(&state, &headers) {
        return e.into_response();
    }
    Json(json!({
        "name": "gantry",
        "capabilities": {
            "cacheInvalidation": {
                "polling": { "enabled": true, "minPollingIntervalMs": 1000 }
            },
            "flagEvaluation": {
                "supportedTypes": ["boolean", "string", "integer", "float", "object"]
            }
        }
    }))
    .into_response()
}

//! The JSON API under `/api/v1`: read endpoints and the token-protected mutations that go to
//! the driver over the commands channel (the SSE event stream is events.rs).

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::auth::{authorize, authorize_read};
use crate::error::ApiError;
use crate::health::ready_verdict;
use crate::model::{
    ApiCommand, ApiState, BootPhase, Caller, CommandRequest, ServiceSnapshot, Snapshot,
};
use crate::util::{HealthQuery, rfc3339};

/// How long a mutation waits for the driver to accept it. The driver answers on acceptance,
/// not on completion, so this only trips when its loop is wedged.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// One service as the JSON API shows it: the snapshot without the raw probe samples
/// (up to 1,000 floats each), which only the metrics histogram needs.
#[derive(Debug, Serialize)]
pub(crate) struct ServiceView<'a> {
    name: &'a str,
    kind: &'a str,
    priority: &'a str,
    state: &'a str,
    required: bool,
    ready: bool,
    pid: Option<u32>,
    attempts: u32,
    restarts: u32,
    started_ms: Option<u64>,
    ready_ms: Option<u64>,
    time_to_ready_ms: Option<u64>,
    uptime_ms: Option<u64>,
    last_error: Option<&'a str>,
    status_text: Option<&'a str>,
    breaker: Option<&'a str>,
    probe_failures_total: u64,
    readiness_lost_total: u64,
    probe_count: u64,
    probe_last_seconds: Option<f64>,
    cpu_seconds: Option<f64>,
    rss_bytes: Option<u64>,
    switch: Option<&'a str>,
    switch_detail: Option<&'a str>,
    /// The latest probe run and what it answered (the web page keeps a short history of them).
    last_probe: Option<ProbeView<'a>>,
}

/// A probe run as the JSON API shows it (the time as RFC 3339).
#[derive(Debug, Serialize)]
pub(crate) struct ProbeView<'a> {
    role: &'a str,
    ok: bool,
    message: &'a str,
    duration_ms: f64,
    at: String,
}

impl<'a> From<&'a ServiceSnapshot> for ServiceView<'a> {
    fn from(s: &'a ServiceSnapshot) -> Self {
        ServiceView {
            name: &s.name,
            kind: &s.kind,
            priority: &s.priority,
            state: &s.state,
            required: s.required,
            ready: s.ready,
            pid: s.pid,
            attempts: s.attempts,
            restarts: s.restarts,
            started_ms: s.started_ms,
            ready_ms: s.ready_ms,
            time_to_ready_ms: s.time_to_ready_ms,
            uptime_ms: s.uptime_ms,
            last_error: s.last_error.as_deref(),
            status_text: s.status_text.as_deref(),
            breaker: s.breaker.as_deref(),
            probe_failures_total: s.probe_failures_total,
            readiness_lost_total: s.readiness_lost_total,
            probe_count: s.probes.count,
            probe_last_seconds: s.probes.last,
            cpu_seconds: s.cpu_seconds,
            rss_bytes: s.rss_bytes,
            switch: s.switch.as_deref(),
            switch_detail: s.switch_detail.as_deref(),
            last_probe: s.last_probe.as_ref().map(|p| ProbeView {
                role: &p.role,
                ok: p.ok,
                message: &p.message,
                duration_ms: p.duration_ms,
                at: rfc3339(p.at),
            }),
        }
    }
}

#[derive(Debug, Serialize)]
struct StatusView<'a> {
    file: &'a str,
    started_at: String,
    boot: &'a BootPhase,
    shutting_down: bool,
    /// The same answer `/health/ready` gives, so clients need not re-derive it.
    ready: bool,
    /// `[cluster]`: leader, term, standbys (absent without a cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<&'a crate::model::ClusterView>,
    services: Vec<ServiceView<'a>>,
}

fn snapshot(state: &ApiState) -> std::sync::Arc<Snapshot> {
    state.snapshot.borrow().clone()
}

fn known_services(snap: &Snapshot) -> String {
    if snap.services.is_empty() {
        "no services are known yet".to_string()
    } else {
        let names: Vec<&str> = snap.services.iter().map(|s| s.name.as_str()).collect();
        format!("known services: {}", names.join(", "))
    }
}

pub(crate) fn bad_path(rejection: &PathRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("bad path: {}", rejection.body_text()),
        "service names are plain UTF-8 text",
    )
}

pub(crate) async fn status(State(state): State<ApiState>) -> Response {
    // With figures no older than the feed allows (figures.rs).
    let snap = state.figures.fresh(&state.snapshot).await;
    let alive = state.snapshot.has_changed().is_ok();
    let view = StatusView {
        file: &snap.file,
        started_at: rfc3339(snap.started_at),
        boot: &snap.boot,
        shutting_down: snap.shutting_down,
        ready: ready_verdict(&snap, alive, &HealthQuery::default()).pass,
        cluster: snap.cluster.as_ref(),
        services: snap.services.iter().map(ServiceView::from).collect(),
    };
    Json(view).into_response()
}

pub(crate) async fn service(
    State(state): State<ApiState>,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    let Path(name) = match name {
        Ok(n) => n,
        Err(e) => return bad_path(&e).into_response(),
    };
    let snap = state.figures.fresh(&state.snapshot).await;
    match snap.services.iter().find(|s| s.name == name) {
        Some(s) => Json(ServiceView::from(s)).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown service `{name}`"),
            known_services(&snap),
        )
        .into_response(),
    }
}

pub(crate) async fn graph(State(state): State<ApiState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        snapshot(&state).graph.as_str().to_string(),
    )
        .into_response()
}

#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct StartupReport {
    pub success: bool,
    pub outcome: Option<String>,
    pub duration_ms: Option<u64>,
    pub reason: Option<String>,
    pub components: Vec<StartupComponent>,
}

#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct StartupComponent {
    pub name: String,
    pub status: &'static str,
    pub duration_ms: Option<u64>,
    pub retries: u32,
    pub priority: String,
    pub error: Option<String>,
}

/// The seeds' startup-manager report (`get_startup_metrics`), one entry per service.
pub(crate) fn startup_report(snap: &Snapshot) -> StartupReport {
    let (outcome, duration_ms, reason) = match &snap.boot {
        BootPhase::Booting => (None, None, None),
        BootPhase::Decided {
            outcome,
            duration_ms,
            reason,
        } => (Some(outcome.clone()), Some(*duration_ms), reason.clone()),
    };
    let success = matches!(outcome.as_deref(), Some("go" | "degraded"));
    let components = snap
        .services
        .iter()
        .map(|s| StartupComponent {
            name: s.name.clone(),
            status: match s.state.as_str() {
                "ready" | "running" | "completed" => "SUCCESS",
                "degraded" => "DEGRADED",
                "failed" => "FAILED",
                "skipped" => "SKIPPED",
                _ => "PENDING",
            },
            duration_ms: s.time_to_ready_ms,
            retries: s.attempts.saturating_sub(1),
            priority: s.priority.to_uppercase(),
            error: s.last_error.clone(),
        })
        .collect();
    StartupReport {
        success,
        outcome,
        duration_ms,
        reason,
        components,
    }
}

pub(crate) async fn startup(State(state): State<ApiState>) -> Response {
    Json(startup_report(&snapshot(&state))).into_response()
}

pub(crate) async fn boots(State(state): State<ApiState>) -> Response {
    let history = state.history.clone();
    // The history reads SQLite: keep it off the async workers, and a panic in it stays a 500.
    match tokio::task::spawn_blocking(move || history()).await {
        Ok(Ok(boots)) => Json(serde_json::json!({ "boots": boots })).into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e,
            "`gantry status` shows the running boot, which does not need the store",
        )
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the boot history could not be read",
            "check the state store in the state dir; `gantry status` shows the current boot",
        )
        .into_response(),
    }
}

pub(crate) async fn missions(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize_read(&state, &headers) {
        return e.into_response();
    }
    let missions = state.missions.clone();
    match tokio::task::spawn_blocking(move || missions()).await {
        Ok(Ok(list)) => Json(serde_json::json!({ "missions": list })).into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e,
            "missions cannot be listed until the store is readable again",
        )
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the missions could not be read",
            "check the state store in the state dir; `gantry missions` reads it directly",
        )
        .into_response(),
    }
}

#[derive(Debug, Serialize)]
struct Accepted {
    accepted: bool,
    message: String,
}

/// How the driver's answer to a reload starts when the stack file has errors (422).
pub const INVALID_FILE: &str = "invalid stack file";

/// The longest reason kept with a command (the audit log stores it).
const MAX_REASON: usize = 1_000;

/// The optional JSON body of a mutation: `{"reason": "..."}` (an empty body is no reason).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Why {
    #[serde(default)]
    reason: Option<String>,
}

/// The reason of a mutation's optional body, or a 400 saying what to send.
pub(crate) fn reason_of(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let why: Why = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid body: {e}"),
            r#"send no body, or {"reason": "why you do this"}"#,
        )
    })?;
    check_reason(why.reason)
}

/// A reason is kept as given, trimmed; too long or with control characters is a 400.
pub(crate) fn check_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    let reason = reason.trim().to_string();
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the reason must be at most {MAX_REASON} characters without control characters"
            ),
            "say why in one line",
        ));
    }
    Ok((!reason.is_empty()).then_some(reason))
}

/// Hands a command to the driver and turns its answer into 202 / 404 / 409 / 503 / 504.
pub(crate) async fn dispatch(
    state: &ApiState,
    caller: Caller,
    reason: Option<String>,
    command: ApiCommand,
) -> Response {
    let gone = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gantry driver is not running",
            "the instance is shutting down or has stopped; check `gantry status`",
        )
    };
    let service = match &command {
        ApiCommand::Start(n)
        | ApiCommand::Stop(n)
        | ApiCommand::Restart(n)
        | ApiCommand::Disable(n)
        | ApiCommand::Enable(n)
        | ApiCommand::Quarantine(n)
        | ApiCommand::Release(n) => Some(n.clone()),
        _ => None,
    };
    let (tx, rx) = oneshot::channel();
    let exchange = async {
        state
            .commands
            .send(CommandRequest {
                command,
                caller,
                reason,
                reply: tx,
            })
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    };
    let answer = match tokio::time::timeout(COMMAND_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return e.into_response(),
        Err(_) => {
            return ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the gantry driver did not answer within {} s",
                    COMMAND_TIMEOUT.as_secs()
                ),
                "the driver loop may be stuck; check `gantry status` and the gantry logs",
            )
            .into_response();
        }
    };
    match answer {
        Ok(message) => (
            StatusCode::ACCEPTED,
            Json(Accepted {
                accepted: true,
                message,
            }),
        )
            .into_response(),
        Err(message) if message.starts_with("unknown secret") => ApiError::new(
            StatusCode::NOT_FOUND,
            message,
            "the secrets are the [[secrets]] of the stack file",
        )
        .into_response(),
        // A reload of a file with errors: the diagnostics, as `gantry check` prints them.
        Err(message) if message.starts_with(INVALID_FILE) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            message,
            "fix the file (`gantry check` lists every problem) and reload again; the stack keeps running as it was",
        )
        .into_response(),
        Err(message) if message.starts_with("unknown service") => ApiError::new(
            StatusCode::NOT_FOUND,
            message,
            known_services(&snapshot(state)),
        )
        .into_response(),
        Err(message) => {
            let hint = match service {
                Some(name) => format!("GET /api/v1/services/{name} shows its current state"),
                None => "GET /api/v1/status shows the current state".to_string(),
            };
            ApiError::new(StatusCode::CONFLICT, message, hint).into_response()
        }
    }
}

pub(crate) async fn service_command(
    state: &ApiState,
    headers: &HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: &[u8],
    make: fn(String) -> ApiCommand,
) -> Response {
    // Authorization first: an unauthenticated caller learns nothing, not even whether a name exists.
    let caller = match authorize(state, headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let reason = match reason_of(body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match name {
        Ok(Path(name)) => dispatch(state, caller, reason, make(name)).await,
        Err(e) => bad_path(&e).into_response(),
    }
}

pub(crate) async fn start(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    service_command(&state, &headers, name, &body, ApiCommand::Start).await
}

pub(crate) async fn stop(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    service_command(&state, &headers, name, &body, ApiCommand::Stop).await
}

pub(crate) async fn restart(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    service_command(&state, &headers, name, &body, ApiCommand::Restart).await
}

pub(crate) async fn disable(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    service_command(&state, &headers, name, &body, ApiCommand::Disable).await
}

pub(crate) async fn enable(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    service_command(&state, &headers, name, &body, ApiCommand::Enable).await
}

pub(crate) async fn quarantine(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    service_command(&state, &headers, name, &body, ApiCommand::Quarantine).await
}

pub(crate) async fn release(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    service_command(&state, &headers, name, &body, ApiCommand::Release).await
}

pub(crate) async fn rotate(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> Response {
    service_command(&state, &headers, name, &body, ApiCommand::Rotate).await
}

/// A mutation without a path parameter: authorize, read the reason, dispatch.
async fn stack_command(
    state: &ApiState,
    headers: &HeaderMap,
    body: &[u8],
    command: ApiCommand,
) -> Response {
    let caller = match authorize(state, headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match reason_of(body) {
        Ok(reason) => dispatch(state, caller, reason, command).await,
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn reload(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    stack_command(&state, &headers, &body, ApiCommand::Reload).await
}

pub(crate) async fn shutdown(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    stack_command(&state, &headers, &body, ApiCommand::Shutdown).await
}

/// `GET /api/v1/audit`: the audit log, newest first (the read token when reads are protected).
/// `?since=1h` (s, m, h, d) and `?limit=N` (1-10000, default 1000).
pub(crate) async fn audit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Err(e) = authorize_read(&state, &headers) {
        return e.into_response();
    }
    let bad = |why: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            why,
            "use ?since=1h (s, m, h, d) and ?limit=N (1-10000)",
        )
        .into_response()
    };
    let (mut since_text, mut limit_text) = (None, None);
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "since" => since_text = Some(value.into_owned()),
            "limit" => limit_text = Some(value.into_owned()),
            other => {
                return bad(format!(
                    "unknown query parameter `{}`",
                    other.chars().take(40).collect::<String>()
                ));
            }
        }
    }
    let query = AuditQuery {
        since: since_text,
        limit: match limit_text.map(|l| l.parse::<usize>()) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => return bad("`limit` must be a number".into()),
        },
    };
    let since = match query.since.as_deref().map(parse_age) {
        None => None,
        Some(Some(age)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Some(now.saturating_sub(age).as_millis() as i64)
        }
        Some(None) => return bad("`since` must be a duration like 90s, 30m, 1h or 2d".into()),
    };
    let limit = query.limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return bad("`limit` must be between 1 and 10000".into());
    }
    let audit = state.audit.clone();
    match tokio::task::spawn_blocking(move || audit(since, limit)).await {
        Ok(Ok(rows)) => Json(serde_json::json!({ "audit": rows })).into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e,
            "the audit log cannot be read until the store is readable again",
        )
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the audit log could not be read",
            "check the state store in the state dir",
        )
        .into_response(),
    }
}

/// The most lines `GET /api/v1/services/{name}/logs` gives at once.
pub const MAX_LOG_TAIL: usize = 1_000;

/// `GET /api/v1/services/{name}/logs?tail=N`: the last N lines (default 200, at most 1,000) of the
/// service's log file, oldest first (the read token when reads are protected: output may be
/// sensitive even masked).
pub(crate) async fn logs(
    State(state): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    uri: axum::http::Uri,
) -> Response {
    if let Err(e) = authorize_read(&state, &headers) {
        return e.into_response();
    }
    let Path(name) = match name {
        Ok(n) => n,
        Err(e) => return bad_path(&e).into_response(),
    };
    let mut tail = 200;
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        let ok = key == "tail"
            && match value.parse::<usize>() {
                Ok(n) if (1..=MAX_LOG_TAIL).contains(&n) => {
                    tail = n;
                    true
                }
                _ => false,
            };
        if !ok {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad query: only `tail` (1-1000) is accepted",
                "GET /api/v1/services/NAME/logs?tail=200",
            )
            .into_response();
        }
    }
    // Only a service of the running stack names a log file (never a path of the caller's).
    let snap = snapshot(&state);
    if !snap.services.iter().any(|s| s.name == name) {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown service `{}`",
                name.chars().take(100).collect::<String>()
            ),
            known_services(&snap),
        )
        .into_response();
    }
    let read = state.logs.clone();
    let service = name.clone();
    match tokio::task::spawn_blocking(move || read(&service, tail)).await {
        Ok(Ok(lines)) => {
            Json(serde_json::json!({ "service": name, "lines": lines })).into_response()
        }
        Ok(Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e,
            "`gantry logs NAME` reads the same file",
        )
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the log could not be read",
            "`gantry logs NAME` reads the same file",
        )
        .into_response(),
    }
}

struct AuditQuery {
    since: Option<String>,
    limit: Option<usize>,
}

/// `90s`, `30m`, `1h`, `2d` as a duration.
pub fn parse_age(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3_600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// The OpenAPI document, committed at `docs/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../../docs/openapi.json");

pub(crate) async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON,
    )
        .into_response()
}

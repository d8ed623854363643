//! The health endpoints with Kubernetes semantics (`/health/live`, `/health/ready`,
//! `/health/startup`, their `?verbose` text form) and the IETF health-check JSON (`/health`).

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::model::{ApiState, BootPhase, ServiceSnapshot, Snapshot};
use crate::util::{HealthQuery, one_line, rfc3339};

/// The outcome of one health question, in both the short and the verbose form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub pass: bool,
    /// The non-verbose body: `ok`, `ok (degraded: ...)` or `not ready: ...`.
    pub body: String,
    /// The verbose check lines (`[+]db ok`), without the closing line.
    pub lines: Vec<String>,
}

impl Verdict {
    fn verbose_body(&self, check: &str) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(check);
        out.push_str(if self.pass {
            " check passed\n"
        } else {
            " check failed\n"
        });
        out
    }
}

/// The boot phase as the readiness and startup checks see it: (acceptable, text).
fn boot_check(boot: &BootPhase) -> (bool, String) {
    match boot {
        BootPhase::Booting => (false, "booting".to_string()),
        BootPhase::Decided {
            outcome, reason, ..
        } => {
            let ok = matches!(outcome.as_str(), "go" | "degraded");
            match reason.as_deref().map(one_line) {
                Some(r) if !ok && !r.is_empty() => (false, format!("{outcome}: {r}")),
                _ => (ok, outcome.clone()),
            }
        }
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "[+]" } else { "[-]" }
}

/// `[+]db ok` for a service that meets its gate, `[-]api failed: <last_error>` otherwise.
fn service_line(s: &ServiceSnapshot) -> String {
    if s.ready {
        return format!("[+]{} ok", s.name);
    }
    // An operator's switch says who, since when and why (`[-]web disabled by cli:bob since ...`).
    if let Some(detail) = s.switch_detail.as_deref() {
        return format!("[-]{} {}", s.name, one_line(detail));
    }
    match s.last_error.as_deref().map(one_line) {
        Some(e) if !e.is_empty() => format!("[-]{} {}: {e}", s.name, s.state),
        _ => format!("[-]{} {}", s.name, s.state),
    }
}

fn included<'a>(
    snap: &'a Snapshot,
    q: &'a HealthQuery,
) -> impl Iterator<Item = &'a ServiceSnapshot> + 'a {
    snap.services.iter().filter(|s| q.includes(&s.name))
}

fn driver_line(alive: bool) -> String {
    format!(
        "{}driver {}",
        mark(alive),
        if alive { "ok" } else { "stopped" }
    )
}

/// Liveness is about gantry itself: its driver loop still publishes snapshots. A failed
/// service must not make an orchestrator kill gantry, so services are listed but do not count.
pub(crate) fn live_verdict(snap: &Snapshot, alive: bool, q: &HealthQuery) -> Verdict {
    let mut lines = vec![driver_line(alive)];
    lines.extend(included(snap, q).map(service_line));
    let body = if alive {
        "ok".to_string()
    } else {
        "not alive: the gantry driver loop has stopped".to_string()
    };
    Verdict {
        pass: alive,
        body,
        lines,
    }
}

/// Ready = decided go/degraded, every required (non-excluded) service ready, not shutting down.
pub(crate) fn ready_verdict(snap: &Snapshot, alive: bool, q: &HealthQuery) -> Verdict {
    let (boot_ok, boot_text) = boot_check(&snap.boot);
    let mut reasons = Vec::new();
    if snap.shutting_down {
        reasons.push("shutting down".to_string());
    }
    if !alive {
        reasons.push("the gantry driver has stopped".to_string());
    }
    if !boot_ok {
        reasons.push(match snap.boot {
            BootPhase::Booting => "booting".to_string(),
            BootPhase::Decided { .. } => format!("boot outcome {boot_text}"),
        });
    }
    let missing: Vec<String> = included(snap, q)
        .filter(|s| s.required && !s.ready)
        .map(|s| format!("{} ({})", s.name, s.state))
        .collect();
    if !missing.is_empty() {
        reasons.push(format!("missing {}", missing.join(", ")));
    }
    let pass = reasons.is_empty();
    let body = if pass {
        let optional: Vec<String> = included(snap, q)
            .filter(|s| !s.required && !s.ready)
            .map(|s| format!("{} {}", s.name, s.state))
            .collect();
        if optional.is_empty() {
            "ok".to_string()
        } else {
            format!("ok (degraded: {})", optional.join(", "))
        }
    } else {
        format!("not ready: {}", reasons.join("; "))
    };
    let mut lines = vec![
        format!("{}boot {boot_text}", mark(boot_ok)),
        format!(
            "{}shutdown {}",
            mark(!snap.shutting_down),
            if snap.shutting_down {
                "shutting down"
            } else {
                "ok"
            }
        ),
        driver_line(alive),
    ];
    lines.extend(included(snap, q).map(service_line));
    Verdict { pass, body, lines }
}

/// Started = the boot is decided go or degraded. It only looks at the boot, so a later
/// shutdown or a service failing at runtime does not turn it back to 503.
pub(crate) fn startup_verdict(snap: &Snapshot, q: &HealthQuery) -> Verdict {
    let (pass, boot_text) = boot_check(&snap.boot);
    let body = if pass {
        "ok".to_string()
    } else if matches!(snap.boot, BootPhase::Booting) {
        let waiting: Vec<String> = included(snap, q)
            .filter(|s| !s.ready)
            .map(|s| format!("{} ({})", s.name, s.state))
            .collect();
        if waiting.is_empty() {
            "not started: booting".to_string()
        } else {
            format!("not started: booting; waiting for {}", waiting.join(", "))
        }
    } else {
        format!("not started: boot outcome {boot_text}")
    };
    let mut lines = vec![format!("{}boot {boot_text}", mark(pass))];
    lines.extend(included(snap, q).map(service_line));
    Verdict { pass, body, lines }
}

fn text_response(verdict: &Verdict, check: &str, q: &HealthQuery) -> Response {
    let status = if verdict.pass {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = if q.verbose {
        verdict.verbose_body(check)
    } else {
        verdict.body.clone()
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            // Probes must see the current answer, never a cached one.
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The current snapshot and whether the driver still holds the sending side.
fn current(state: &ApiState) -> (Arc<Snapshot>, bool) {
    // `has_changed` fails only once the sender is dropped: the driver loop is gone.
    let alive = state.snapshot.has_changed().is_ok();
    (state.snapshot.borrow().clone(), alive)
}

pub(crate) async fn live(State(state): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    let q = HealthQuery::parse(raw.as_deref());
    let (snap, alive) = current(&state);
    text_response(&live_verdict(&snap, alive, &q), "livez", &q)
}

pub(crate) async fn ready(State(state): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    let q = HealthQuery::parse(raw.as_deref());
    let (snap, alive) = current(&state);
    text_response(&ready_verdict(&snap, alive, &q), "readyz", &q)
}

pub(crate) async fn startup(State(state): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    let q = HealthQuery::parse(raw.as_deref());
    let (snap, _) = current(&state);
    text_response(&startup_verdict(&snap, &q), "startupz", &q)
}

/// pass | warn | fail for one service.
fn service_status(s: &ServiceSnapshot) -> &'static str {
    if s.ready {
        "pass"
    } else if s.state == "failed" {
        "fail"
    } else {
        "warn"
    }
}

/// The IETF health-check document (draft-inadarei-api-health-check) and its HTTP status.
pub(crate) fn health_document(
    snap: &Snapshot,
    alive: bool,
    q: &HealthQuery,
    now: SystemTime,
) -> (StatusCode, Value) {
    let mut fail = Vec::new();
    let mut warn = Vec::new();
    match &snap.boot {
        BootPhase::Booting => warn.push("booting".to_string()),
        BootPhase::Decided { outcome, .. } if outcome == "go" => {}
        BootPhase::Decided { outcome, .. } if outcome == "degraded" => {
            warn.push("boot outcome degraded".to_string())
        }
        BootPhase::Decided { .. } => {
            fail.push(format!("boot outcome {}", boot_check(&snap.boot).1))
        }
    }
    if !alive {
        fail.push("the gantry driver has stopped".to_string());
    }
    if snap.shutting_down {
        warn.push("shutting down".to_string());
    }
    let failed_required: Vec<&str> = included(snap, q)
        .filter(|s| s.required && s.state == "failed")
        .map(|s| s.name.as_str())
        .collect();
    if !failed_required.is_empty() {
        fail.push(format!(
            "required service failed: {}",
            failed_required.join(", ")
        ));
    }
    let not_ready: Vec<String> = included(snap, q)
        // Failed required services are already counted as `fail` above.
        .filter(|s| !s.ready && !failed_required.contains(&s.name.as_str()))
        .map(|s| format!("{} ({})", s.name, s.state))
        .collect();
    if !not_ready.is_empty() {
        warn.push(format!("not ready: {}", not_ready.join(", ")));
    }
    let (status, code) = if !fail.is_empty() {
        ("fail", StatusCode::SERVICE_UNAVAILABLE)
    } else if !warn.is_empty() {
        ("warn", StatusCode::OK)
    } else {
        ("pass", StatusCode::OK)
    };
    let time = rfc3339(now);
    let mut checks = Map::new();
    for s in included(snap, q) {
        let mut check = json!({
            "componentId": s.name,
            "componentType": s.kind,
            "status": service_status(s),
            "observedValue": s.state,
            "time": time,
        });
        let output = s.switch_detail.as_ref().or(s.last_error.as_ref());
        if let (Some(e), Some(obj)) = (output, check.as_object_mut()) {
            obj.insert("output".to_string(), Value::String(e.clone()));
        }
        checks.insert(format!("{}:state", s.name), Value::Array(vec![check]));
        // `?verbose`: the latest probe run, its answer and its latency.
        if q.verbose
            && let Some(p) = &s.last_probe
        {
            let probe = json!({
                "componentId": s.name,
                "componentType": format!("{} probe", p.role),
                "status": if p.ok { "pass" } else { "fail" },
                "observedValue": p.duration_ms,
                "observedUnit": "ms",
                "output": one_line(&p.message),
                "time": rfc3339(p.at),
            });
            checks.insert(format!("{}:probe", s.name), Value::Array(vec![probe]));
        }
    }
    let mut doc = json!({
        "status": status,
        "version": "1",
        "releaseId": env!("CARGO_PKG_VERSION"),
        "serviceId": snap.file,
        "description": "gantry",
        "checks": checks,
    });
    let reasons: Vec<String> = fail.into_iter().chain(warn).collect();
    if !reasons.is_empty()
        && let Some(obj) = doc.as_object_mut()
    {
        obj.insert("output".to_string(), Value::String(reasons.join("; ")));
    }
    (code, doc)
}

pub(crate) async fn health(State(state): State<ApiState>, RawQuery(raw): RawQuery) -> Response {
    let q = HealthQuery::parse(raw.as_deref());
    let (mut snap, alive) = current(&state);
    if q.verbose {
        // The latest probe runs are figures: no older than the feed allows (figures.rs).
        snap = state.figures.fresh(&state.snapshot).await;
    }
    let (code, doc) = health_document(&snap, alive, &q, SystemTime::now());
    // serde_json cannot fail on a Value built from strings; the fallback keeps this panic-free anyway.
    let body =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{\"status\":\"fail\"}".to_string());
    (
        code,
        [
            (header::CONTENT_TYPE, "application/health+json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

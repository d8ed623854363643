//! Shared test fixtures: sample snapshots, an `ApiState` wired to channels the test holds,
//! and helpers that drive the router with `oneshot` (no socket).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use gantry_api::model::{
    ApiCommand, ApiState, BootPhase, BootRecord, CommandRequest, ServiceSnapshot, Snapshot,
};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, watch};
use tower::ServiceExt;

pub const TOKEN: &str = "s3cr3t-token-0123456789abcdef";
/// The read-only token.
pub const READ_TOKEN: &str = "r3ad-only-token-0123456789abcdef";
/// A named operator token (`alice`) and a named read token (`bob`), by their digests.
pub const ALICE_TOKEN: &str = "alice-token-0123456789abcdef";
pub const BOB_TOKEN: &str = "bob-token-0123456789abcdef";

fn named(name: &str, role: gantry_api::model::Role, token: &str) -> gantry_api::model::NamedToken {
    use sha2::Digest as _;
    gantry_api::model::NamedToken {
        name: name.to_string(),
        role,
        sha256: sha2::Sha256::digest(token.as_bytes()).into(),
    }
}

pub fn service(name: &str, state: &str, priority: &str) -> ServiceSnapshot {
    let ready = matches!(state, "ready" | "running" | "completed");
    ServiceSnapshot {
        name: name.to_string(),
        kind: if state == "completed" {
            "task"
        } else {
            "process"
        }
        .to_string(),
        priority: priority.to_string(),
        state: state.to_string(),
        required: priority != "low",
        ready,
        pid: if ready { Some(4242) } else { None },
        attempts: 1,
        restarts: 0,
        started_ms: Some(10),
        ready_ms: if ready { Some(250) } else { None },
        time_to_ready_ms: if ready { Some(240) } else { None },
        uptime_ms: if ready { Some(60_000) } else { None },
        last_error: None,
        status_text: None,
        breaker: None,
        probe_failures_total: 0,
        readiness_lost_total: 0,
        probes: Default::default(),
        cpu_seconds: None,
        rss_bytes: None,
        output_dropped_lines_total: 0,
        last_probe: None,
        switch: None,
        switch_detail: None,
    }
}

pub fn failed(name: &str, priority: &str, error: &str) -> ServiceSnapshot {
    let mut s = service(name, "failed", priority);
    s.last_error = Some(error.to_string());
    s
}

pub fn snapshot(boot: BootPhase, services: Vec<ServiceSnapshot>) -> Snapshot {
    Snapshot {
        file: "/srv/app/gantry.toml".to_string(),
        started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
        boot,
        shutting_down: false,
        services,
        graph: serde_json::json!({ "nodes": [{ "name": "db" }, { "name": "api" }], "edges": [["api", "db"]] }).into(),
        drift_problems: 0,
        cluster: None,
            published_at: None,
            usage_sampled: None,
            usage_deferred: false,
    }
}

pub fn decided(outcome: &str, reason: Option<&str>) -> BootPhase {
    BootPhase::Decided {
        outcome: outcome.to_string(),
        duration_ms: 1500,
        reason: reason.map(str::to_string),
    }
}

/// db, migrate, api and search all up; boot go.
pub fn go() -> Snapshot {
    snapshot(
        decided("go", None),
        vec![
            service("db", "ready", "critical"),
            service("migrate", "completed", "critical"),
            service("api", "running", "high"),
            service("search", "ready", "low"),
        ],
    )
}

/// Still starting: db starting, the rest pending.
pub fn booting() -> Snapshot {
    snapshot(
        BootPhase::Booting,
        vec![
            service("db", "starting", "critical"),
            service("migrate", "pending", "critical"),
            service("api", "pending", "high"),
            service("search", "pending", "low"),
        ],
    )
}

/// Everything required up; the optional search service failed.
pub fn degraded() -> Snapshot {
    snapshot(
        decided("degraded", Some("search failed")),
        vec![
            service("db", "ready", "critical"),
            service("migrate", "completed", "critical"),
            service("api", "ready", "high"),
            failed("search", "low", "connection refused"),
        ],
    )
}

/// The critical api failed and the worker was skipped.
pub fn no_go() -> Snapshot {
    snapshot(
        decided("no-go", Some("critical service api failed")),
        vec![
            service("db", "ready", "critical"),
            failed("api", "critical", "exit status 1"),
            service("worker", "skipped", "medium"),
        ],
    )
}

/// (actor, reason) of every command answered.
pub type Callers = Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

pub struct Harness {
    pub state: ApiState,
    pub snapshot: watch::Sender<Arc<Snapshot>>,
    pub events: broadcast::Sender<Value>,
    pub commands: mpsc::Receiver<CommandRequest>,
    /// Who asked and why, for every command `answer_commands` answered.
    pub callers: Callers,
}

impl Harness {
    pub fn new(snap: Snapshot) -> Self {
        Self::with_capacity(snap, 64)
    }

    pub fn with_capacity(snap: Snapshot, events_capacity: usize) -> Self {
        let (snap_tx, snap_rx) = watch::channel(Arc::new(snap));
        let (events, _) = broadcast::channel(events_capacity);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let state = ApiState {
            snapshot: snap_rx,
            events: events.clone(),
            commands: cmd_tx,
            token: Arc::new(TOKEN.to_string()),
            read_token: Arc::new(READ_TOKEN.to_string()),
            named_tokens: Arc::new(vec![
                named("alice", gantry_api::model::Role::Operator, ALICE_TOKEN),
                named("bob", gantry_api::model::Role::Read, BOB_TOKEN),
            ]),
            audit: Arc::new(|since, limit| {
                let rows = vec![
                    serde_json::json!({ "id": 2, "at": "2026-01-01T00:05:00Z", "actor": "cli:alice", "action": "service.restart", "target": "api", "reason": "stuck", "before": null, "after": null, "result": "ok: restarting" }),
                    serde_json::json!({ "id": 1, "at": "2026-01-01T00:00:00Z", "actor": "operator", "action": "stack.reload", "target": null, "reason": null, "before": null, "after": null, "result": "ok" }),
                ];
                // The fake store has no clock: `since` filters everything out when given.
                Ok(rows
                    .into_iter()
                    .filter(|_| since.is_none())
                    .take(limit)
                    .collect())
            }),
            protect_reads: false,
            ingress: Some(Arc::new(FakeIngress::default())),
            flags: watch::channel(Arc::new(gantry_api::model::FlagsView::default())).1,
            flag_stats: Arc::default(),
            figures: Default::default(),
            incidents: Arc::new(|id| {
                let one = serde_json::json!({ "id": 1, "severity": "P1", "title": "api down", "status": "open", "opened_at": "2026-01-01T00:00:00Z", "timeline": [] });
                Ok(match id {
                    None => Some(serde_json::json!({ "incidents": [one] })),
                    Some(1) => Some(one),
                    Some(_) => None,
                })
            }),
            sessions: Arc::default(),
            logs: Arc::new(|service, n| {
                Ok((0..n.min(3))
                    .map(|i| serde_json::json!({ "at": null, "stream": "out", "line": format!("{service} line {i}") }))
                    .collect())
            }),
            missions: Arc::new(|| {
                Ok(vec![
                    serde_json::json!({ "id": 1, "check": "boot", "service": "db", "status": "open" }),
                ])
            }),
            history: Arc::new(|| {
                Ok(vec![
                    BootRecord {
                        id: 1,
                        started_at: "2026-01-01T00:00:00Z".to_string(),
                        outcome: Some("no-go".to_string()),
                        duration_ms: Some(900),
                        reason: Some("db failed".to_string()),
                    },
                    BootRecord {
                        id: 2,
                        started_at: "2026-01-01T00:05:00Z".to_string(),
                        outcome: Some("go".to_string()),
                        duration_ms: Some(1500),
                        reason: None,
                    },
                ])
            }),
        };
        Harness {
            state,
            snapshot: snap_tx,
            events,
            commands: cmd_rx,
            callers: Arc::default(),
        }
    }

    pub fn router(&self) -> Router {
        gantry_api::router(self.state.clone())
    }

    /// Answers commands like a driver: "ghost" is unknown, stopping "db" is refused, a reload
    /// finds the file invalid, the rest is accepted.
    /// Every command received is forwarded to the returned receiver.
    pub fn answer_commands(&mut self) -> mpsc::UnboundedReceiver<ApiCommand> {
        let (seen_tx, seen_rx) = mpsc::unbounded_channel();
        let (_, placeholder) = mpsc::channel(1);
        let mut rx = std::mem::replace(&mut self.commands, placeholder);
        let callers = self.callers.clone();
        tokio::spawn(async move {
            while let Some(CommandRequest {
                command,
                caller,
                reason,
                reply,
            }) = rx.recv().await
            {
                callers
                    .lock()
                    .expect("callers")
                    .push((caller.actor, reason));
                let answer = match &command {
                    ApiCommand::Start(n) | ApiCommand::Stop(n) | ApiCommand::Restart(n)
                        if n == "ghost" =>
                    {
                        Err(format!("unknown service `{n}`"))
                    }
                    ApiCommand::Stop(n) if n == "db" => {
                        Err("db has dependents running: api".to_string())
                    }
                    ApiCommand::Shutdown => Ok("shutting down".to_string()),
                    // A driver whose stack file has an error.
                    ApiCommand::Reload => Err(format!(
                        "{} gantry.toml (1 error(s)):\nerror[invalid-value]: gantry.toml:3:16: services.api.stop_timeout: not a duration",
                        gantry_api::INVALID_FILE
                    )),
                    other => Ok(format!("{other:?} accepted")),
                };
                let _ = seen_tx.send(command);
                let _ = reply.send(answer);
            }
        });
        seen_rx
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub async fn send(router: Router, request: Request<Body>) -> Reply {
    let response = router
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("body within 10 s")
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
    }
}

pub async fn get(router: Router, uri: &str) -> Reply {
    send(
        router,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
    .await
}

pub async fn post(router: Router, uri: &str, authorization: Option<&str>) -> Reply {
    let mut builder = Request::builder().method(Method::POST).uri(uri);
    if let Some(a) = authorization {
        builder = builder.header("authorization", a);
    }
    send(router, builder.body(Body::empty()).expect("request")).await
}

/// A POST with extra headers and a body.
pub async fn post_with(router: Router, uri: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut builder = Request::builder().method(Method::POST).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    send(
        router,
        builder.body(Body::from(body.to_string())).expect("request"),
    )
    .await
}

pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// An ingress that remembers the modes it was switched to and renders one series.
#[derive(Default)]
pub struct FakeIngress {
    pub modes: std::sync::Mutex<Vec<(String, Option<u8>)>>,
}

impl gantry_api::IngressControl for FakeIngress {
    fn status(&self) -> Value {
        let mode = self
            .modes
            .lock()
            .unwrap()
            .last()
            .map_or("normal".to_string(), |m| m.0.clone());
        serde_json::json!({ "mode": mode, "routes": [] })
    }

    fn set_mode(&self, mode: &str, shed_percent: Option<u8>) -> Result<String, String> {
        if !["normal", "write_drain", "brownout", "emergency"].contains(&mode) {
            return Err(format!("unknown mode `{mode}`"));
        }
        self.modes
            .lock()
            .unwrap()
            .push((mode.to_string(), shed_percent));
        Ok(mode.to_string())
    }

    fn render_metrics(&self, out: &mut String) {
        out.push_str(
            "# HELP gantry_ingress_in_flight Requests in flight.\n# TYPE gantry_ingress_in_flight gauge\ngantry_ingress_in_flight{route=\"api\"} 0\n",
        );
    }
}

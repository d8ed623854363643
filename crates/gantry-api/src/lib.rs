//! The health, metrics and control HTTP API of a running gantry instance (axum 0.8).
//!
//! The driver publishes a [`model::Snapshot`] on a `watch` channel, broadcasts its JSON events,
//! and accepts [`model::ApiCommand`]s on an `mpsc` channel; [`router`] turns that
//! [`model::ApiState`] into HTTP, and [`serve`] listens on `host:port` or `unix:PATH`.
//!
//! # Health (Kubernetes semantics, plain text)
//!
//! | path | 200 when | 503 when |
//! |---|---|---|
//! | `GET /health/live` | the driver loop is alive (its snapshot sender exists) | the driver is gone |
//! | `GET /health/ready` | boot decided go/degraded, every required service ready, not shutting down | otherwise; the body names what is missing: `not ready: missing api (failed), worker (skipped)` |
//! | `GET /health/startup` | boot decided go or degraded | booting, or no-go |
//!
//! A ready answer with optional services down reads `ok (degraded: search failed)`.
//! `?verbose` gives the Kubernetes form: `[+]boot go`, `[+]shutdown ok`, `[+]driver ok`, then one
//! line per service (`[+]db ok`, `[-]api failed: <last error>`), then `readyz check passed` or
//! `readyz check failed` (`livez` / `startupz` on the other two). Liveness lists the services
//! but only the driver decides it: a failed service must not get gantry itself killed.
//! `?exclude=NAME` (repeatable, or comma-separated) leaves services out of the decision and the listing.
//!
//! `GET /health` answers the IETF health-check draft (`application/health+json`): `status`
//! `pass` (200), `warn` (200: booting, degraded, shutting down, a service not ready) or `fail`
//! (503: no-go, a required service failed, the driver gone), with one `"<name>:state"` check
//! per service. It takes `?exclude=` too.
//!
//! # Metrics
//!
//! `GET /metrics` is OpenMetrics text written straight from the snapshot at scrape
//! time: `gantry_service_state{service,state}` (a state set), `gantry_service_ready`,
//! `gantry_service_restarts_total`, `gantry_service_start_attempts_total`,
//! `gantry_service_time_to_ready_seconds`, the `gantry_probe_duration_seconds` histogram,
//! `gantry_probe_failures_total`, `gantry_breaker_state{service,state}`,
//! `gantry_boot_duration_seconds`, `gantry_boot_outcome{outcome}`,
//! `gantry_process_cpu_seconds_total`, `gantry_process_resident_memory_bytes`.
//!
//! # JSON API (`/api/v1`)
//!
//! Read endpoints need no token: `GET /status`, `GET /services/{name}`, `GET /graph`,
//! `GET /startup` (the startup-manager report: SUCCESS / DEGRADED / FAILED / SKIPPED / PENDING
//! per component), `GET /boots` (`{"boots": [...]}`), `GET /missions`, `GET /events`
//! (Server-Sent Events, one message per broadcast object named after its `"event"` field; a
//! client that falls behind gets an `event: lagged` message with the number skipped) and
//! `GET /openapi.json`. The two that carry service output, `/missions` and `/events`, need the
//! token when the API is reachable beyond loopback (401 without it).
//!
//! Every route answers 403 to a `Host` header that names a DNS name (against DNS rebinding;
//! see [`host_allowed`]). Connections over the limit are closed at accept and a request head
//! must arrive within the header-read timeout ([`Limits`]): neither sends a status code.
//!
//! Mutations need `Authorization: Bearer <token>` (the token is in the state dir's `api.token`,
//! compared in constant time): `POST /services/{name}/start`, `/stop`, `/restart` and
//! `POST /shutdown`. They answer 202 `{"accepted": true, "message": ...}`, 401 without a valid
//! token, 404 for an unknown service, 409 when the driver refuses, 503 when it is gone.
//!
//! `GET /` is the web page (`ui.rs`, assets under `/ui/`, served with a strict
//! Content-Security-Policy); `POST /api/v1/session` turns a bearer token into an HttpOnly,
//! SameSite=Strict session cookie accepted wherever the token is, mutations through it needing
//! the session's CSRF token in `X-Gantry-CSRF` (`session.rs`).
//!
//! Every error is JSON: `{"error": "...", "hint": "..."}`. The routes are listed once, in
//! [`ROUTES`], and documented by `docs/openapi.json` (served at `/api/v1/openapi.json`); a
//! test fails when the two disagree.

mod api;
pub mod auth;
mod error;
mod events;
pub mod figures;
mod flags;
mod health;
mod incidents;
mod ingress;
mod metrics;
pub mod model;
pub mod ofrep;
mod rollout;
mod routes;
mod runbooks;
mod server;
pub mod session;
mod slots;
pub mod ui;
mod util;

pub use api::{INVALID_FILE, OPENAPI_JSON, parse_age};
pub use events::SSE_KEEP_ALIVE;
pub use ingress::{IngressControl, ModeRequest};
pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, PROBE_BUCKETS};
pub use routes::{Endpoint, ROUTES, Route, router};
pub use server::{
    ApiListener, Limits, SHUTDOWN_GRACE, bind, host_allowed, serve, serve_on, serve_with,
};

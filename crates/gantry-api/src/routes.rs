//! The route table: the one list the router is built from and the OpenAPI test checks against.

use std::collections::BTreeMap;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::model::ApiState;
use crate::{
    api, error, flags, health, incidents, ingress, metrics, ofrep, rollout, runbooks, session, ui,
};

/// Which handler serves a route. A `match` over it builds the router, so adding a variant
/// without a handler does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Live,
    Ready,
    Startup,
    Health,
    Metrics,
    Status,
    Service,
    Graph,
    StartupReport,
    Boots,
    Missions,
    Events,
    OpenApi,
    Start,
    Stop,
    Restart,
    Disable,
    Enable,
    Quarantine,
    Release,
    Rotate,
    Reload,
    Shutdown,
    Ingress,
    IngressMode,
    Audit,
    RolloutStart,
    RolloutStatus,
    RolloutControl,
    Releases,
    Rollback,
    OfrepFlag,
    OfrepBulk,
    OfrepConfiguration,
    Flags,
    FlagSet,
    FlagUnset,
    Runbooks,
    RunbookRun,
    Page,
    Asset,
    SessionCreate,
    SessionShow,
    SessionDelete,
    Incidents,
    Incident,
    IncidentOpen,
    IncidentAct,
    Logs,
}

/// One route: its method, its path (axum 0.8 / OpenAPI `{param}` syntax) and its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    pub path: &'static str,
    pub endpoint: Endpoint,
    /// True when the bearer token is always needed: mutations, and OFREP (the read token will do).
    pub auth: bool,
}

const fn route(method: &'static str, path: &'static str, endpoint: Endpoint, auth: bool) -> Route {
    Route {
        method,
        path,
        endpoint,
        auth,
    }
}

/// Every route the API serves. `docs/openapi.json` must describe exactly these (a test checks).
pub const ROUTES: &[Route] = &[
    route("GET", "/health/live", Endpoint::Live, false),
    route("GET", "/health/ready", Endpoint::Ready, false),
    route("GET", "/health/startup", Endpoint::Startup, false),
    route("GET", "/health", Endpoint::Health, false),
    route("GET", "/metrics", Endpoint::Metrics, false),
    route("GET", "/api/v1/status", Endpoint::Status, false),
    route("GET", "/api/v1/services/{name}", Endpoint::Service, false),
    route("GET", "/api/v1/graph", Endpoint::Graph, false),
    route("GET", "/api/v1/startup", Endpoint::StartupReport, false),
    route("GET", "/api/v1/boots", Endpoint::Boots, false),
    route("GET", "/api/v1/missions", Endpoint::Missions, false),
    route("GET", "/api/v1/events", Endpoint::Events, false),
    route("GET", "/api/v1/openapi.json", Endpoint::OpenApi, false),
    route(
        "POST",
        "/api/v1/services/{name}/start",
        Endpoint::Start,
        true,
    ),
    route("POST", "/api/v1/services/{name}/stop", Endpoint::Stop, true),
    route(
        "POST",
        "/api/v1/services/{name}/restart",
        Endpoint::Restart,
        true,
    ),
    route(
        "POST",
        "/api/v1/services/{name}/disable",
        Endpoint::Disable,
        true,
    ),
    route(
        "POST",
        "/api/v1/services/{name}/enable",
        Endpoint::Enable,
        true,
    ),
    route(
        "POST",
        "/api/v1/services/{name}/quarantine",
        Endpoint::Quarantine,
        true,
    ),
    route(
        "POST",
        "/api/v1/services/{name}/release",
        Endpoint::Release,
        true,
    ),
    route(
        "POST",
        "/api/v1/secrets/{name}/rotate",
        Endpoint::Rotate,
        true,
    ),
    route("POST", "/api/v1/reload", Endpoint::Reload, true),
    route("POST", "/api/v1/shutdown", Endpoint::Shutdown, true),
    route("GET", "/api/v1/ingress", Endpoint::Ingress, false),
    route("POST", "/api/v1/ingress/mode", Endpoint::IngressMode, true),
    route("GET", "/api/v1/audit", Endpoint::Audit, false),
    route(
        "POST",
        "/api/v1/services/{name}/rollout",
        Endpoint::RolloutStart,
        true,
    ),
    route(
        "GET",
        "/api/v1/services/{name}/rollout",
        Endpoint::RolloutStatus,
        false,
    ),
    route(
        "POST",
        "/api/v1/services/{name}/rollout/{action}",
        Endpoint::RolloutControl,
        true,
    ),
    route(
        "GET",
        "/api/v1/services/{name}/releases",
        Endpoint::Releases,
        false,
    ),
    route(
        "POST",
        "/api/v1/services/{name}/rollback",
        Endpoint::Rollback,
        true,
    ),
    route(
        "POST",
        "/ofrep/v1/evaluate/flags/{key}",
        Endpoint::OfrepFlag,
        true,
    ),
    route(
        "POST",
        "/ofrep/v1/evaluate/flags",
        Endpoint::OfrepBulk,
        true,
    ),
    route(
        "GET",
        "/ofrep/v1/configuration",
        Endpoint::OfrepConfiguration,
        true,
    ),
    route("GET", "/api/v1/flags", Endpoint::Flags, false),
    route("PUT", "/api/v1/flags/{key}", Endpoint::FlagSet, true),
    route("DELETE", "/api/v1/flags/{key}", Endpoint::FlagUnset, true),
    route("GET", "/api/v1/runbooks", Endpoint::Runbooks, false),
    route(
        "POST",
        "/api/v1/runbooks/{name}/run",
        Endpoint::RunbookRun,
        true,
    ),
    route("GET", "/", Endpoint::Page, false),
    route("GET", "/ui/style.css", Endpoint::Asset, false),
    route("GET", "/ui/app.js", Endpoint::Asset, false),
    route("GET", "/ui/views.js", Endpoint::Asset, false),
    route("GET", "/ui/graph.js", Endpoint::Asset, false),
    route("GET", "/ui/favicon.svg", Endpoint::Asset, false),
    route("POST", "/api/v1/session", Endpoint::SessionCreate, true),
    route("GET", "/api/v1/session", Endpoint::SessionShow, false),
    route("DELETE", "/api/v1/session", Endpoint::SessionDelete, false),
    route("GET", "/api/v1/incidents", Endpoint::Incidents, false),
    route("GET", "/api/v1/incidents/{id}", Endpoint::Incident, false),
    route("POST", "/api/v1/incidents", Endpoint::IncidentOpen, true),
    route(
        "POST",
        "/api/v1/incidents/{id}/{action}",
        Endpoint::IncidentAct,
        true,
    ),
    route("GET", "/api/v1/services/{name}/logs", Endpoint::Logs, false),
];

fn handler(endpoint: Endpoint) -> MethodRouter<ApiState> {
    match endpoint {
        Endpoint::Live => get(health::live),
        Endpoint::Ready => get(health::ready),
        Endpoint::Startup => get(health::startup),
        Endpoint::Health => get(health::health),
        Endpoint::Metrics => get(metrics::metrics),
        Endpoint::Status => get(api::status),
        Endpoint::Service => get(api::service),
        Endpoint::Graph => get(api::graph),
        Endpoint::StartupReport => get(api::startup),
        Endpoint::Boots => get(api::boots),
        Endpoint::Missions => get(api::missions),
        Endpoint::Events => get(crate::events::events),
        Endpoint::OpenApi => get(api::openapi),
        Endpoint::Start => post(api::start),
        Endpoint::Stop => post(api::stop),
        Endpoint::Restart => post(api::restart),
        Endpoint::Disable => post(api::disable),
        Endpoint::Enable => post(api::enable),
        Endpoint::Quarantine => post(api::quarantine),
        Endpoint::Release => post(api::release),
        Endpoint::Rotate => post(api::rotate),
        Endpoint::Reload => post(api::reload),
        Endpoint::Shutdown => post(api::shutdown),
        Endpoint::Ingress => get(ingress::status),
        Endpoint::IngressMode => post(ingress::mode),
        Endpoint::Audit => get(api::audit),
        Endpoint::RolloutStart => post(rollout::start),
        Endpoint::RolloutStatus => get(rollout::status),
        Endpoint::RolloutControl => post(rollout::control),
        Endpoint::Releases => get(rollout::releases),
        Endpoint::Rollback => post(rollout::rollback),
        Endpoint::OfrepFlag => post(ofrep::evaluate),
        Endpoint::OfrepBulk => post(ofrep::evaluate_all),
        Endpoint::OfrepConfiguration => get(ofrep::configuration),
        Endpoint::Flags => get(flags::list),
        Endpoint::FlagSet => put(flags::set),
        Endpoint::FlagUnset => delete(flags::unset),
        Endpoint::Runbooks => get(runbooks::list),
        Endpoint::RunbookRun => post(runbooks::run),
        Endpoint::Page | Endpoint::Asset => get(ui::asset),
        Endpoint::SessionCreate => post(session::create),
        Endpoint::SessionShow => get(session::show),
        Endpoint::SessionDelete => delete(session::delete),
        Endpoint::Incidents => get(incidents::list),
        Endpoint::IncidentOpen => post(incidents::open),
        Endpoint::IncidentAct => post(incidents::act),
        Endpoint::Incident => get(incidents::one),
        Endpoint::Logs => get(api::logs),
    }
}

/// The API router, built from [`ROUTES`]. Unknown paths and wrong methods answer with the JSON error.
/// Reads that need a token (the read token will do) when the API is reachable beyond
/// loopback, on top of those whose handlers check it (missions, events, logs, audit, flags,
/// incidents, runbooks, rollouts). Health stays open for probes and load balancers; the
/// OpenAPI document and the page's shell and assets hold nothing of the stack (the page
/// asks for a token before it reads anything).
fn read_gated(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::Status
            | Endpoint::Service
            | Endpoint::Graph
            | Endpoint::StartupReport
            | Endpoint::Boots
            | Endpoint::Metrics
            | Endpoint::Ingress
    )
}

/// Refuses a gated read without a valid token (or session) when reads are protected.
async fn require_read(
    axum::extract::State(state): axum::extract::State<ApiState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match crate::auth::authorize_read(&state, req.headers()) {
        Ok(_) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

pub fn router(state: ApiState) -> Router {
    // Routes sharing a path (different methods) are merged into one method router first.
    let mut by_path: BTreeMap<&'static str, MethodRouter<ApiState>> = BTreeMap::new();
    for r in ROUTES {
        let mut h = handler(r.endpoint);
        if read_gated(r.endpoint) {
            h = h.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                require_read,
            ));
        }
        let merged = match by_path.remove(r.path) {
            Some(existing) => existing.merge(h),
            None => h,
        };
        by_path.insert(r.path, merged);
    }
    let mut router = Router::new();
    for (path, method_router) in by_path {
        router = router.route(path, method_router);
    }
    router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}

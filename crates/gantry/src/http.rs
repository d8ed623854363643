//! The health router of an embedded boot: the process API's handlers behind only the four health paths.

use axum::Router;
use axum::routing::any_service;
use gantry_api::model::ApiState;

/// The paths an embedded boot exposes by default. Probes only: the control endpoints are
/// opt-in through `Boot::api_router`, which needs a token.
pub(crate) const HEALTH_PATHS: [&str; 4] = [
    "/health/live",
    "/health/ready",
    "/health/startup",
    "/health",
];

/// Routes each health path to the full gantry API router, so the answers (status codes,
/// bodies, `?verbose`, `?exclude=`, health+json) are the process API's, not a copy of them.
pub(crate) fn health_router(state: ApiState) -> Router {
    let api = gantry_api::router(state);
    HEALTH_PATHS.iter().fold(Router::new(), |router, path| {
        router.route(path, any_service(api.clone()))
    })
}

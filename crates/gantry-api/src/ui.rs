//! The web page (`GET /` and its assets under `/ui/`): plain HTML, CSS and JavaScript modules
//! embedded in the binary, each served with a strict Content-Security-Policy.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// No inline script or style, nothing from elsewhere: the page talks only to its own origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its path, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file of the page. The route table lists the same paths (`routes.rs`).
const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../ui/index.html"),
    },
    Asset {
        path: "/ui/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../ui/style.css"),
    },
    Asset {
        path: "/ui/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../ui/app.js"),
    },
    Asset {
        path: "/ui/views.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../ui/views.js"),
    },
    Asset {
        path: "/ui/graph.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../ui/graph.js"),
    },
    Asset {
        path: "/ui/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../ui/favicon.svg"),
    },
];

/// The page's files and their sizes in bytes (uncompressed), for tests and the docs.
pub fn assets() -> impl Iterator<Item = (&'static str, usize)> {
    ASSETS.iter().map(|a| (a.path, a.body.len()))
}

/// Serves the embedded file at the request's path.
pub(crate) async fn asset(uri: Uri) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == uri.path()) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "no such file of the web page",
            "the page is at /",
        )
        .into_response();
    };
    let mut response = (StatusCode::OK, asset.body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Small files, and a new gantry may serve a new page: always revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

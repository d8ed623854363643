//! The single error shape every handler answers with: a status and `{"error": ..., "hint": ...}`.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

pub(crate) const CHALLENGE_NONE: &str = "Bearer realm=\"gantry\"";
pub(crate) const CHALLENGE_INVALID_REQUEST: &str =
    "Bearer realm=\"gantry\", error=\"invalid_request\"";
pub(crate) const CHALLENGE_INVALID_TOKEN: &str = "Bearer realm=\"gantry\", error=\"invalid_token\"";

/// An error answer. Built only from text gantry writes itself (never from a request header),
/// so the token cannot leak through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub hint: String,
    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3).
    pub challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, hint: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            hint: hint.into(),
            challenge: None,
        }
    }

    /// A 401 with its RFC 6750 challenge: no error code when no credentials were sent,
    /// `invalid_request` for a malformed header, `invalid_token` for a wrong token.
    pub fn unauthorized(
        error: impl Into<String>,
        hint: impl Into<String>,
        challenge: &'static str,
    ) -> Self {
        ApiError {
            challenge: Some(challenge),
            ..ApiError::new(StatusCode::UNAUTHORIZED, error, hint)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "hint": self.hint });
        let mut response = (self.status, Json(body)).into_response();
        // RFC 7235 §4.1: a 401 must carry the challenge saying which scheme to use.
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = self.challenge.unwrap_or(CHALLENGE_NONE);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// Unknown paths get the JSON error too, so clients never have to parse two error formats.
pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    // Only the path is echoed: a query string might carry something the caller should not see repeated.
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
        "the routes are listed in GET /api/v1/openapi.json",
    )
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
        "read endpoints use GET, mutations use POST; see GET /api/v1/openapi.json",
    )
}

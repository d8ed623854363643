//! Browser sessions for the web page: a token presented once (`POST /api/v1/session`) becomes an
//! HttpOnly, SameSite=Strict cookie holding a random session id (never the token) and a CSRF
//! token the page sends on every mutation; the session carries the token's caller and role.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::bearer_caller;
use crate::error::ApiError;
use crate::model::{ApiState, Caller};

/// The cookie's name.
pub const COOKIE: &str = "gantry_session";
/// The header the page sends the CSRF token in on every mutation.
pub const CSRF_HEADER: &str = "x-gantry-csrf";
/// How long a session lasts from its creation.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept at once; a new one beyond it evicts the oldest.
const MAX_SESSIONS: usize = 256;

struct Session {
    caller: Caller,
    csrf: String,
    created: Instant,
}

/// The sessions of one API server, keyed by the SHA-256 of their id (the map never holds an id,
/// and a lookup's timing depends on the digest, not on the id).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// A session found from a request's cookie.
pub(crate) struct Found {
    pub caller: Caller,
    csrf: String,
}

impl Found {
    /// Whether the request carries this session's CSRF token in [`CSRF_HEADER`].
    pub fn csrf_ok(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(CSRF_HEADER).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => bool::from(v.as_bytes().ct_eq(self.csrf.as_bytes())),
            _ => false,
        }
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn random_hex() -> Result<String, String> {
    use std::io::Read as _;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom for a session: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    fn create(&self, caller: Caller) -> Result<(String, String), String> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            digest(&id),
            Session {
                caller,
                csrf: csrf.clone(),
                created: Instant::now(),
            },
        );
        Ok((id, csrf))
    }

    fn lookup(&self, id: &str) -> Option<Found> {
        let key = digest(id);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let alive = map.get(&key)?.created.elapsed() < SESSION_TTL;
        if !alive {
            map.remove(&key);
            return None;
        }
        map.get(&key).map(|s| Found {
            caller: s.caller.clone(),
            csrf: s.csrf.clone(),
        })
    }

    fn remove(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&digest(id));
    }
}

/// The session id of the request's `Cookie` header(s), if one is sent.
pub(crate) fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The session a request's cookie names, if it is alive.
pub(crate) fn from_cookie(state: &ApiState, headers: &HeaderMap) -> Option<Found> {
    cookie_id(headers).and_then(|id| state.sessions.lookup(id))
}

fn session_json(caller: &Caller, csrf: &str, state: &ApiState) -> serde_json::Value {
    serde_json::json!({
        "session": { "actor": caller.actor, "role": caller.role, "csrf": csrf },
        "protect_reads": state.protect_reads,
        "ingress": state.ingress.is_some(),
    })
}

/// `POST /api/v1/session`: the token in `Authorization: Bearer` (never in the URL or a body
/// that might be logged) becomes a session cookie; the answer carries the CSRF token.
pub(crate) async fn create(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let caller = match bearer_caller(&state, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let (id, csrf) = match state.sessions.create(caller.clone()) {
        Ok(pair) => pair,
        Err(e) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e,
                "use the token with `Authorization: Bearer` meanwhile",
            )
            .into_response();
        }
    };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut response = Json(session_json(&caller, &csrf, &state)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    no_store(&mut response);
    response
}

/// `GET /api/v1/session`: who the cookie's session is (with its CSRF token, which only a
/// same-origin page can read), or `null`; and whether reads need a token.
pub(crate) async fn show(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let mut response = match from_cookie(&state, &headers) {
        Some(found) => Json(session_json(&found.caller, &found.csrf, &state)).into_response(),
        None => Json(serde_json::json!({
            "session": null,
            "protect_reads": state.protect_reads,
            "ingress": state.ingress.is_some(),
        }))
        .into_response(),
    };
    no_store(&mut response);
    response
}

/// `DELETE /api/v1/session`: forgets the cookie's session and clears the cookie.
pub(crate) async fn delete(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_id(&headers) {
        state.sessions.remove(id);
    }
    let mut response = Json(serde_json::json!({ "session": null })).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("gantry_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_sessions_expire_and_evict() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; gantry_session=abc ; b=2"),
        );
        assert_eq!(cookie_id(&headers), Some("abc"));
        let sessions = Sessions::default();
        let (id, csrf) = sessions.create(Caller::anonymous()).unwrap();
        assert_ne!(id, csrf);
        let found = sessions.lookup(&id).unwrap();
        let mut h = HeaderMap::new();
        assert!(!found.csrf_ok(&h));
        h.insert(CSRF_HEADER, HeaderValue::from_str(&csrf).unwrap());
        assert!(found.csrf_ok(&h));
        assert!(sessions.lookup("nope").is_none());
        for _ in 0..MAX_SESSIONS + 5 {
            sessions.create(Caller::anonymous()).unwrap();
        }
        assert!(sessions.map.lock().unwrap().len() <= MAX_SESSIONS);
        sessions.remove(&id);
        assert!(sessions.lookup(&id).is_none());
    }
}

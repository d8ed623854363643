//! Who is calling: bearer tokens with roles (operator, read, named tokens from a 0600 file), checked in
//! constant time, or the web page's session cookie made from one of them (a mutation through the
//! cookie needs its CSRF header); and the caller's name for the audit log. Never echoes a token.

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, CHALLENGE_INVALID_REQUEST, CHALLENGE_INVALID_TOKEN, CHALLENGE_NONE};
use crate::model::{ApiState, Caller, NamedToken, Role};

const TOKEN_HINT: &str = "send `Authorization: Bearer <token>` (or sign in on the web page); the operator token is in the state dir's api.token file, the read-only token in api.read-token (both mode 0600)";

/// The header the CLI sets to the local user's name. Believed only with the operator token
/// (whoever holds it can act as anyone already); ignored with any other token.
pub const ACTOR_HEADER: &str = "x-gantry-actor";

/// A mutation: the caller must hold the operator token or a named token with the operator role.
/// Through the session cookie, the page's CSRF token must come along in its header.
pub(crate) fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let caller = if uses_cookie(headers) {
        let found = crate::session::from_cookie(state, headers).ok_or_else(expired)?;
        if !found.csrf_ok(headers) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token",
                "a mutation through the session cookie must send the session's CSRF token in the X-Gantry-CSRF header (GET /api/v1/session gives it)",
            ));
        }
        found.caller
    } else {
        identify(state, headers)?
    };
    if caller.role == Role::Operator {
        Ok(caller)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("`{}` may only read", caller.actor),
            "mutations need the operator token (api.token in the state dir) or a named token with role operator",
        ))
    }
}

/// A read that carries service output (missions, events, the audit log): any valid token when
/// the API is reachable beyond loopback, otherwise open (an anonymous caller).
pub(crate) fn authorize_read(state: &ApiState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if state.protect_reads {
        identify(state, headers)
    } else {
        Ok(Caller::anonymous())
    }
}

/// Which token was presented, if any is valid (a read that always needs a token, e.g. OFREP),
/// or, without an `Authorization` header, whose session the cookie names.
pub(crate) fn identify(state: &ApiState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if uses_cookie(headers) {
        return crate::session::from_cookie(state, headers)
            .map(|found| found.caller)
            .ok_or_else(expired);
    }
    bearer_caller(state, headers)
}

/// A request without `Authorization` that sends the session cookie is judged by the cookie.
fn uses_cookie(headers: &HeaderMap) -> bool {
    headers.get(header::AUTHORIZATION).is_none() && crate::session::cookie_id(headers).is_some()
}

fn expired() -> ApiError {
    ApiError::unauthorized(
        "the session is unknown or expired",
        "sign in again on the web page with a token",
        CHALLENGE_INVALID_TOKEN,
    )
}

/// The caller of the bearer token in `Authorization` (the cookie is not looked at).
pub(crate) fn bearer_caller(state: &ApiState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let presented = bearer(headers)?;
    if matches(presented.as_bytes(), state.token.as_bytes()) {
        let actor = headers
            .get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(clean_actor)
            .unwrap_or_else(|| "operator".to_string());
        return Ok(Caller {
            actor,
            role: Role::Operator,
        });
    }
    if matches(presented.as_bytes(), state.read_token.as_bytes()) {
        return Ok(Caller {
            actor: "read".to_string(),
            role: Role::Read,
        });
    }
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    // Every named token is compared (no early exit on a match), in constant time each.
    let mut found: Option<&NamedToken> = None;
    for named in state.named_tokens.iter() {
        if bool::from(digest.ct_eq(&named.sha256)) {
            found = Some(named);
        }
    }
    match found {
        Some(named) => Ok(Caller {
            actor: format!("token:{}", named.name),
            role: named.role,
        }),
        None => Err(ApiError::unauthorized(
            "invalid bearer token",
            TOKEN_HINT,
            CHALLENGE_INVALID_TOKEN,
        )),
    }
}

/// An empty configured token matches nothing (fail closed).
fn matches(presented: &[u8], token: &[u8]) -> bool {
    // `ct_eq` returns early only on a length mismatch; the length is not secret, the bytes are.
    !token.is_empty() && bool::from(presented.ct_eq(token))
}

/// The token of `Authorization: Bearer <token>`, or why the header is unusable.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let malformed = |why: &str| {
        ApiError::unauthorized(
            format!("malformed Authorization header: {why}"),
            TOKEN_HINT,
            CHALLENGE_INVALID_REQUEST,
        )
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(ApiError::unauthorized(
            "missing bearer token",
            TOKEN_HINT,
            CHALLENGE_NONE,
        ));
    };
    if values.next().is_some() {
        return Err(malformed("sent more than once"));
    }
    let Ok(value) = value.to_str() else {
        return Err(malformed("not visible ASCII"));
    };
    // RFC 7235: the scheme is case-insensitive, then one or more spaces.
    let Some((scheme, presented)) = value.split_once(' ') else {
        return Err(malformed("expected `Bearer <token>`"));
    };
    let presented = presented.trim_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || presented.is_empty() {
        return Err(malformed("expected `Bearer <token>`"));
    }
    Ok(presented)
}

/// The actor a CLI names: `cli:NAME` with a short name of safe characters, else nothing.
fn clean_actor(raw: &str) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:".contains(&b));
    ok.then(|| raw.to_string())
}

/// Parses a tokens file: one token per line, `NAME ROLE SHA256HEX` (role `read` or `operator`;
/// the hex digest of the token, e.g. from `printf %s "$TOKEN" | sha256sum`), `#` comments and
/// blank lines ignored. Every problem at once, each with its line number; no line's text is
/// repeated (it might hold a token pasted by mistake).
pub fn parse_tokens(text: &str) -> Result<Vec<NamedToken>, Vec<String>> {
    let mut tokens = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, role, digest] = fields[..] else {
            problems.push(format!(
                "line {line_no}: expected `NAME ROLE SHA256HEX` (3 fields, got {})",
                fields.len()
            ));
            continue;
        };
        if clean_actor(name).is_none() || name.contains(':') {
            problems.push(format!(
                "line {line_no}: the name must be 1-64 characters of letters, digits, `.`, `_`, `-`, `@`"
            ));
            continue;
        }
        let role = match role {
            "read" => Role::Read,
            "operator" => Role::Operator,
            _ => {
                problems.push(format!("line {line_no}: role must be `read` or `operator`"));
                continue;
            }
        };
        let Some(sha256) = hex32(digest) else {
            problems.push(format!(
                "line {line_no}: the third field must be the token's SHA-256 as 64 hex digits (printf %s \"$TOKEN\" | sha256sum), never the token itself"
            ));
            continue;
        };
        if tokens.iter().any(|t: &NamedToken| t.name == name) {
            problems.push(format!("line {line_no}: `{name}` is named twice"));
            continue;
        }
        tokens.push(NamedToken {
            name: name.to_string(),
            role,
            sha256,
        });
    }
    if problems.is_empty() {
        Ok(tokens)
    } else {
        Err(problems)
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_file_is_read_with_every_problem_and_no_token_echoed() {
        let digest = "a".repeat(64);
        let text = format!(
            "# comment\nalice operator {digest}\nbob read {digest}\nbad\ncarol admin {digest}\ndave read s3cr3t-token\nalice read {digest}\n"
        );
        let problems = parse_tokens(&text).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("line 4:"));
        assert!(problems[1].contains("role must be"));
        assert!(problems[2].contains("SHA-256"));
        assert!(problems.iter().all(|p| !p.contains("s3cr3t")));
        assert!(problems[3].contains("named twice"));
        let ok = parse_tokens(&format!("alice operator {digest}\nbob read {digest}\n")).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].role, Role::Read);
    }

    #[test]
    fn only_safe_actor_names_are_kept() {
        assert_eq!(clean_actor("cli:bob").as_deref(), Some("cli:bob"));
        assert_eq!(clean_actor("cli:bob\u{1b}[31m"), None);
        assert_eq!(clean_actor(&"x".repeat(65)), None);
        assert_eq!(clean_actor(""), None);
    }
}

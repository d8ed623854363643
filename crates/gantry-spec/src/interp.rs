//! `${VAR}`, `${VAR:-default}` and `${VAR:?message}` interpolation of string values from the environment.

/// The result of interpolating one string.
#[derive(Debug, PartialEq, Eq)]
pub struct Interpolated {
    pub value: String,
    /// Variables referenced without a default that were not set (they became empty).
    pub missing: Vec<String>,
    /// `${VAR:?message}` references whose variable was unset or empty: (name, message).
    pub required: Vec<(String, String)>,
}

/// Replaces `${VAR}` and `${VAR:-default}` using `lookup`; `${VAR:?message}` is the
/// value of VAR, which must be set and not empty (else it is listed in `required`, as
/// in the shell); `$$` is a literal `$`.
/// A `$` not followed by `{` or `$` is kept as is, so shell snippets like `$HOME`
/// inside commands pass through to the shell untouched.
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, String> {
    let mut value = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut required = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        value.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            value.push('$');
            rest = tail;
        } else if let Some(body_start) = after.strip_prefix('{') {
            let Some(end) = body_start.find('}') else {
                return Err(format!("unclosed `${{` in `{text}`"));
            };
            let body = &body_start[..end];
            let (name, default, demand) = match (body.split_once(":-"), body.split_once(":?")) {
                (Some((n, d)), Some((m, _))) if n.len() < m.len() => (n, Some(d), None),
                (_, Some((n, msg))) => (n, None, Some(msg)),
                (Some((n, d)), None) => (n, Some(d), None),
                (None, None) => (body, None, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{body}}}` is not a valid variable reference"));
            }
            if let Some(msg) = demand {
                match lookup(name) {
                    Some(v) if !v.is_empty() => value.push_str(&v),
                    _ => {
                        let msg = if msg.trim().is_empty() {
                            "required".to_string()
                        } else {
                            msg.trim().to_string()
                        };
                        required.push((name.to_string(), msg));
                    }
                }
                rest = &body_start[end + 1..];
                continue;
            }
            match (lookup(name), default) {
                (Some(v), _) if !v.is_empty() || default.is_none() => value.push_str(&v),
                (_, Some(d)) => value.push_str(d),
                (None, None) => missing.push(name.to_string()),
                (Some(_), None) => unreachable_empty(),
            }
            rest = &body_start[end + 1..];
        } else {
            value.push('$');
            rest = after;
        }
    }
    value.push_str(rest);
    Ok(Interpolated {
        value,
        missing,
        required,
    })
}

/// `text` with `${PORT}` and `${REPLICA}` replaced for one instance of a replicated
/// service. The decoder keeps exactly these two references as written in such a service
/// (everything else was interpolated already), so this is a plain replacement; without a
/// port, `${PORT}` stays (the decoder reported it).
pub fn instance_vars(text: &str, port: Option<u16>, replica: u32) -> String {
    let mut out = text.replace("${REPLICA}", &replica.to_string());
    if let Some(port) = port {
        out = out.replace("${PORT}", &port.to_string());
    }
    out
}

// Kept as a function so the match above stays exhaustive without a panic path:
// `(Some(v), None)` is always taken by the first arm.
fn unreachable_empty() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn instance_vars_replace_port_and_replica() {
        assert_eq!(
            instance_vars("127.0.0.1:${PORT}/r${REPLICA}-${REPLICA}", Some(9100), 2),
            "127.0.0.1:9100/r2-2"
        );
        assert_eq!(instance_vars("${PORT} $PORT", None, 1), "${PORT} $PORT");
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        let r = interpolate("${HOME}/x ${NOPE:-d} ${EMPTY:-e} $$ $PATH", &env).unwrap();
        assert_eq!(r.value, "/root/x d e $ $PATH");
        assert!(r.missing.is_empty());
        let r = interpolate("a${NOPE}b", &env).unwrap();
        assert_eq!(r.value, "ab");
        assert_eq!(r.missing, vec!["NOPE".to_string()]);
        assert!(interpolate("${OPEN", &env).is_err());
        // ${VAR:?message}: the value when set and not empty, else listed with its message.
        let r = interpolate("${HOME:?set HOME}/a ${NOPE:?give NOPE} ${EMPTY:?}", &env).unwrap();
        assert_eq!(r.value, "/root/a  ");
        assert_eq!(
            r.required,
            vec![
                ("NOPE".to_string(), "give NOPE".to_string()),
                ("EMPTY".to_string(), "required".to_string())
            ]
        );
        assert!(r.missing.is_empty());
        // A default may contain ":?" and stays a default.
        let r = interpolate("${NOPE:-a:?b}", &env).unwrap();
        assert_eq!(r.value, "a:?b");
        assert!(r.required.is_empty());
        assert!(interpolate("${a b}", &env).is_err());
    }
}

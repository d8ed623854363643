//! flagd's `sem_ver` operator: `[version, op, version]` with `=`, `!=`, `<`, `<=`, `>`, `>=`,
//! `^` (same major) and `~` (same major and minor); a leading `v` and partial versions allowed.

use std::cmp::Ordering;

use serde_json::Value;

#[derive(Debug, PartialEq, Eq)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
}

fn parse(v: &Value) -> Option<Version> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let text = text.strip_prefix(['v', 'V']).unwrap_or(&text);
    let text = text.split('+').next()?;
    let (core, pre) = match text.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (text, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    if nums.is_empty() || nums.len() > 3 {
        return None;
    }
    let num = |i: usize| -> Option<u64> {
        match nums.get(i) {
            None => Some(0),
            Some(s)
                if !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (s.len() == 1 || !s.starts_with('0')) =>
            {
                s.parse().ok()
            }
            Some(_) => None,
        }
    };
    let pre = match pre {
        None => Vec::new(),
        Some("") => return None,
        Some(p) => p.split('.').map(str::to_string).collect(),
    };
    if pre.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(Version {
        major: num(0)?,
        minor: num(1)?,
        patch: num(2)?,
        pre,
    })
}

fn cmp_pre(a: &[String], b: &[String]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    for (x, y) in a.iter().zip(b) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn cmp(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| cmp_pre(&a.pre, &b.pre))
}

/// Evaluates `sem_ver` over its evaluated arguments (null when they are not versions).
pub(crate) fn sem_ver(args: &[Value]) -> Value {
    let [a, Value::String(op), b] = args else {
        return Value::Null;
    };
    let (Some(a), Some(b)) = (parse(a), parse(b)) else {
        return Value::Null;
    };
    let o = cmp(&a, &b);
    Value::Bool(match op.as_str() {
        "=" => o == Ordering::Equal,
        "!=" => o != Ordering::Equal,
        "<" => o == Ordering::Less,
        "<=" => o != Ordering::Greater,
        ">" => o == Ordering::Greater,
        ">=" => o != Ordering::Less,
        "^" => a.major == b.major,
        "~" => a.major == b.major && a.minor == b.minor,
        _ => return Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::sem_ver;
    use serde_json::{Value, json};

    fn sv(a: &str, op: &str, b: &str) -> Value {
        sem_ver(&[json!(a), json!(op), json!(b)])
    }

    #[test]
    fn compares_versions() {
        assert_eq!(sv("1.2.3", "=", "v1.2.3"), json!(true));
        assert_eq!(sv("1.2", "=", "1.2.0"), json!(true));
        assert_eq!(sv("1.2.3", "<", "1.10.0"), json!(true));
        assert_eq!(sv("1.0.0-alpha", "<", "1.0.0"), json!(true));
        assert_eq!(sv("1.0.0-alpha.1", "<", "1.0.0-alpha.beta"), json!(true));
        assert_eq!(sv("1.0.0-2", "<", "1.0.0-10"), json!(true));
        assert_eq!(sv("2.5.0", "^", "2.0.1"), json!(true));
        assert_eq!(sv("2.5.0", "~", "2.4.0"), json!(false));
        assert_eq!(sv("2.5.0", ">=", "2.5.0+build"), json!(true));
        assert_eq!(sv("nope", "=", "1.0.0"), Value::Null);
        assert_eq!(sv("1.0.0", "??", "1.0.0"), Value::Null);
    }
}

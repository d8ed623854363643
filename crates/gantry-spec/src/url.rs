//! Database and broker URLs shown without their password, shared by the store probes and the migrator.
//!
//! The rules lean to hiding too much rather than too little: the user-info part of a URL
//! ends at the *last* `@` (passwords with a raw `@`, `/`, `:` or `?` are common in
//! practice), so a URL with an `@` further on, in its query, may lose more than its password
//! — it never shows one.

/// Query / key=value parameter names whose values are passwords.
const PASSWORD_KEYS: &[&str] = &["password", "pass", "passwd", "pwd"];

/// The URL with its password replaced by `***`: `amqp://guest:***@127.0.0.1:5672/%2f`.
/// Also masks `password=` style parameters in a query string or a key=value connection
/// string (`host=db user=app password=***`). Text with no password comes back unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_params(url);
    };
    let head = scheme_end + 3;
    let rest = &url[head..];
    let mut out = url[..head].to_string();
    let tail = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    out.push_str(&redact_params(tail));
    out
}

/// Masks the value of every `password=`-like parameter (`?password=x&..`, `password=x ..`,
/// `password='x y'`).
fn redact_params(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let at_boundary = i == 0 || matches!(bytes[i - 1], b'?' | b'&' | b';' | b' ' | b'\t');
        let key = at_boundary
            .then(|| {
                PASSWORD_KEYS
                    .iter()
                    .find(|k| lower[i..].starts_with(&format!("{k}=")))
            })
            .flatten();
        let Some(key) = key else {
            // Copy one whole char.
            let ch = text[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8().max(1);
            continue;
        };
        let value_start = i + key.len() + 1;
        out.push_str(&text[i..value_start]);
        let value = &text[value_start..];
        let len = if let Some(quoted) = value.strip_prefix('\'') {
            // libpq quoting: up to the closing quote (backslash escapes), else to the end.
            let mut esc = false;
            let mut end = value.len();
            for (j, c) in quoted.char_indices() {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '\'' {
                    end = j + 2;
                    break;
                }
            }
            end
        } else {
            value
                .find(|c: char| matches!(c, '&' | '#' | ';') || c.is_whitespace())
                .unwrap_or(value.len())
        };
        if len > 0 {
            out.push_str("***");
        }
        i = value_start + len;
    }
    out
}

/// Every form in which the URL's password could show up in a client library's message:
/// raw and percent-decoded, from the user-info part and from `password=` parameters.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut raw = Vec::new();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        if let Some(at) = rest.rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            raw.push(rest[colon + 1..at].to_string());
        }
    }
    let lower = url.to_ascii_lowercase();
    for key in PASSWORD_KEYS {
        let pat = format!("{key}=");
        let mut from = 0;
        while let Some(pos) = lower[from..].find(&pat) {
            let start = from + pos + pat.len();
            let value = &url[start..];
            let end = match value.strip_prefix('\'') {
                Some(q) => q.find('\'').map_or(value.len(), |e| e + 2),
                None => value
                    .find(|c: char| matches!(c, '&' | '#' | ';') || c.is_whitespace())
                    .unwrap_or(value.len()),
            };
            raw.push(value[..end].trim_matches('\'').to_string());
            from = start;
        }
    }
    let mut out = Vec::new();
    for r in raw {
        let decoded = percent_decode(&r);
        out.push(r);
        out.push(decoded);
    }
    out.retain(|s| !s.is_empty());
    // Longest first, so a secret that contains another is masked whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `%XX` decoding; invalid escapes and non-UTF-8 results are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2)))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

fn hex(b: Option<&u8>) -> Option<u8> {
    (*b? as char).to_digit(16).map(|d| d as u8)
}

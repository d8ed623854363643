//! Store URLs shown without their password: [`redact_url`], and the secret values to scrub.
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
pub(crate) fn secrets(url: &str) -> Vec<String> {
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
pub(crate) fn percent_decode(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_password_of_a_url() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("mysql://root:@127.0.0.1:3306/x"),
            "mysql://root:***@127.0.0.1:3306/x"
        );
    }

    #[test]
    fn leaves_urls_without_password_alone() {
        for u in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "redis://127.0.0.1:6379",
            "nats://127.0.0.1:4222",
            "sqlite://data/app.db",
            "data/app.db",
            "postgres://h/db?sslmode=disable&application_name=x",
        ] {
            assert_eq!(redact_url(u), u);
        }
    }

    #[test]
    fn raw_special_characters_in_the_password_never_leak() {
        for (url, secret) in [
            ("postgres://u:p@ss@h/db", "p@ss"),
            ("postgres://u:a/b:c@h:5432/db", "a/b:c"),
            ("mysql://u:x?y#z@h/db", "x?y#z"),
            ("postgres://u:pw@h/db?application_name=a@b", "pw"),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
            assert!(shown.starts_with(url.split(':').next().unwrap()), "{shown}");
        }
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn masks_password_parameters() {
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=pw&sslmode=disable"),
            "postgres://h/db?user=u&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=127.0.0.1 user=app password=s3cret dbname=app"),
            "host=127.0.0.1 user=app password=*** dbname=app"
        );
        assert_eq!(
            redact_url("host=h password='a b\\' c' dbname=x"),
            "host=h password=*** dbname=x"
        );
        assert_eq!(redact_url("host=h PWD=x"), "host=h PWD=***");
        // A key that merely ends in "password" is not one.
        assert_eq!(redact_url("h?nopassword=1"), "h?nopassword=1");
    }

    #[test]
    fn secrets_cover_raw_and_decoded_forms() {
        let s = secrets("postgres://u:p%40ss%2Fw@h/db");
        assert!(s.contains(&"p%40ss%2Fw".to_string()));
        assert!(s.contains(&"p@ss/w".to_string()));
        let s = secrets("host=h password='x y' dbname=d");
        assert!(s.contains(&"x y".to_string()), "{s:?}");
        assert!(secrets("redis://127.0.0.1").is_empty());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%40"), "a/b@");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%é"), "%é");
    }
}

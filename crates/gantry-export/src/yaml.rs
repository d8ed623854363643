//! A YAML emitter for JSON values: block mappings (keys in sorted order) and sequences, every string double-quoted in
//! JSON's syntax (valid YAML), so no value can be misread as a number, a boolean or a tag.

use serde_json::Value;
use std::fmt::Write as _;

/// Documents separated by `---`.
pub fn to_yaml(docs: &[Value]) -> String {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        emit(&mut out, doc, 0);
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(serde_json::to_string(s).unwrap_or_default()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !k.starts_with(|c: char| c.is_ascii_digit() || c == '-');
    if plain {
        k.to_string()
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

fn emit(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, val) in map {
                match scalar(val) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}{}: {s}", key(k));
                    }
                    None => {
                        let _ = writeln!(out, "{pad}{}:", key(k));
                        emit(out, val, indent + 2);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                match scalar(item) {
                    Some(s) => {
                        let _ = writeln!(out, "{pad}- {s}");
                    }
                    None => {
                        // The item's first line goes after the dash, the rest indented under it.
                        let mut inner = String::new();
                        emit(&mut inner, item, indent + 2);
                        let inner = inner.trim_start_matches(' ');
                        let _ = write!(out, "{pad}- {inner}");
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_round_trip_through_their_shape() {
        let v = serde_json::json!({
            "a": "yes", "n": 3, "list": [{"x": "1", "y": [1, 2]}, "s"], "empty": [], "e": {},
            "weird key": true
        });
        let y = to_yaml(&[v]);
        assert_eq!(
            y,
            "---\na: \"yes\"\ne: {}\nempty: []\nlist:\n  - x: \"1\"\n    y:\n      - 1\n      - 2\n  - \"s\"\nn: 3\n\"weird key\": true\n"
        );
    }
}

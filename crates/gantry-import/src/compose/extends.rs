//! `extends:` within one compose file: a service with its base's keys merged under its own.

use crate::Note;
use crate::common::note;
use crate::yaml::{Node, Value};

/// A service with `extends: NAME` (or `{service: NAME}`) of the same file: the base's keys
/// under its own (its own win, key by key at the top level; compose merges some lists deeper,
/// which is reported). `file:` (another file) and chains longer than 10 are reported.
pub(super) fn extend(
    src: &str,
    node: &Node,
    services: &[(Node, Node)],
    notes: &mut Vec<Note>,
) -> Node {
    let mut current = node.clone();
    let mut seen = vec![src.to_string()];
    for _ in 0..10 {
        let Some(ext) = current.get("extends") else {
            return current;
        };
        let line = ext.line;
        let base_name = match (ext.as_str(), ext.get("service").and_then(Node::as_str)) {
            (Some(b), _) | (None, Some(b)) => b.to_string(),
            _ => {
                notes.push(note(
                    line,
                    Some(src),
                    "extends without a service name; left out".into(),
                ));
                return current;
            }
        };
        if let Some(f) = ext.get("file") {
            notes.push(note(
                f.line,
                Some(src),
                format!(
                    "extends a service of another file ({}); not carried over",
                    f.as_str().unwrap_or("?")
                ),
            ));
            return current;
        }
        if seen.contains(&base_name) {
            notes.push(note(
                line,
                Some(src),
                format!("extends `{base_name}` in a loop; left out"),
            ));
            return current;
        }
        let Some(base) = services
            .iter()
            .find(|(k, _)| k.as_str() == Some(base_name.as_str()))
            .map(|(_, v)| v)
        else {
            notes.push(note(
                line,
                Some(src),
                format!("extends `{base_name}`, which is not a service of the file; left out"),
            ));
            return current;
        };
        seen.push(base_name.clone());
        let (Value::Map(own), Value::Map(inherited)) = (&current.value, &base.value) else {
            return current;
        };
        let mut merged: Vec<(Node, Node)> = own
            .iter()
            .filter(|(k, _)| k.as_str() != Some("extends"))
            .cloned()
            .collect();
        let mut deep = Vec::new();
        for (k, v) in inherited {
            match merged.iter().find(|(mk, _)| mk.as_str() == k.as_str()) {
                None => merged.push((k.clone(), v.clone())),
                Some(_)
                    if matches!(
                        k.as_str(),
                        Some(
                            "environment"
                                | "ports"
                                | "volumes"
                                | "depends_on"
                                | "env_file"
                                | "labels"
                        )
                    ) =>
                {
                    deep.push(k.as_str().unwrap_or("?").to_string());
                }
                Some(_) => {}
            }
        }
        if !deep.is_empty() {
            notes.push(note(line, Some(src), format!("extends `{base_name}`: its {} replaced by this service's own (compose would merge them)", deep.join(", "))));
        }
        // The base's own `extends` continues the chain.
        if let Some((k, v)) = inherited
            .iter()
            .find(|(k, _)| k.as_str() == Some("extends"))
        {
            merged.push((k.clone(), v.clone()));
        }
        current = Node {
            value: Value::Map(merged),
            ..current
        };
    }
    notes.push(note(
        node.line,
        Some(src),
        "extends more than 10 deep; the rest left out".into(),
    ));
    current
}

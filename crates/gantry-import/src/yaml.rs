//! A small YAML tree with line numbers, built from saphyr-parser's events with hard limits (size,
//! depth, alias expansion), so no input can exhaust the stack or memory.

use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::HashMap;

/// Largest input accepted (a compose file of a few hundred services is well under 1 MiB).
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of sequences and mappings accepted (real files need fewer than 10).
pub const MAX_DEPTH: usize = 64;
/// Most nodes a document may hold once aliases are expanded (against "billion laughs").
pub const MAX_NODES: usize = 1_000_000;

/// One YAML node and the line (1-based) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub col: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar as written; `quoted` scalars are always strings.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys in file order; `<<` merge keys are already applied.
    Map(Vec<(Node, Node)>),
}

/// A problem with the input itself: where, what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted: false } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A scalar's text (numbers and booleans as written); None for collections and null.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            Value::Scalar { text, .. } => text.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// What kind of node this is, for messages ("a list", "a mapping", "a string").
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Scalar { .. } if self.is_null() => "empty (null)",
            Value::Scalar { .. } => "a scalar",
        }
    }
}

enum Open {
    Seq(Node, Vec<Node>),
    Map(Node, Vec<(Node, Node)>, Option<Node>),
}

/// Parses the first document of `text`. An empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > MAX_BYTES {
        return Err(YamlError {
            line: 1,
            col: 1,
            message: format!(
                "the file is {} bytes, more than the {} MiB an import reads; is this the right file?",
                text.len(),
                MAX_BYTES / (1024 * 1024)
            ),
        });
    }
    let mut stack: Vec<Open> = Vec::new();
    // Each anchor's node and its size in nodes (with aliases inside it expanded).
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    // Open anchored collections: (anchor id, node count when it opened).
    let mut open_anchors: Vec<(usize, usize, usize)> = Vec::new();
    let mut nodes = 0usize;
    let mut root: Option<Node> = None;
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(ok) => ok,
            Err(e) => {
                return Err(YamlError {
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                    message: format!("not valid YAML: {}", e.info()),
                });
            }
        };
        let (line, col) = (span.start.line(), span.start.col() + 1);
        let here = |value| Node { line, col, value };
        let finished: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => None,
            Event::DocumentEnd | Event::StreamEnd => {
                if root.is_some() || event == Event::StreamEnd {
                    break;
                }
                None
            }
            Event::Scalar(text, style, anchor, _tag) => {
                nodes += 1;
                let node = here(Value::Scalar {
                    text: text.into_owned(),
                    quoted: style != ScalarStyle::Plain,
                });
                Some((node, anchor))
            }
            Event::Alias(id) => {
                let Some((node, size)) = anchors.get(&id) else {
                    return Err(YamlError {
                        line,
                        col,
                        message: "an alias (`*name`) to an anchor that is not defined before it"
                            .into(),
                    });
                };
                nodes = nodes.saturating_add(*size);
                if nodes > MAX_NODES {
                    return Err(too_many(line, col));
                }
                let mut node = node.clone();
                node.line = line;
                node.col = col;
                Some((node, 0))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                nodes += 1;
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        line,
                        col,
                        message: format!(
                            "nesting deeper than {MAX_DEPTH} levels; no compose, process-compose or Procfile needs that"
                        ),
                    });
                }
                if anchor > 0 {
                    open_anchors.push((anchor, nodes - 1, stack.len()));
                }
                let start = here(Value::Seq(Vec::new()));
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::Seq(start, Vec::new())
                } else {
                    Open::Map(start, Vec::new(), None)
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(open) = stack.pop() else {
                    return Err(YamlError {
                        line,
                        col,
                        message: "unbalanced collection end".into(),
                    });
                };
                let node = match open {
                    Open::Seq(mut n, items) => {
                        n.value = Value::Seq(items);
                        n
                    }
                    Open::Map(mut n, entries, _) => {
                        n.value = Value::Map(merge_keys(entries));
                        n
                    }
                };
                let anchor = match open_anchors.last() {
                    Some(&(id, start, depth)) if depth == stack.len() => {
                        open_anchors.pop();
                        anchors.insert(id, (node.clone(), nodes - start));
                        0
                    }
                    _ => 0,
                };
                Some((node, anchor))
            }
        };
        if nodes > MAX_NODES {
            return Err(too_many(line, col));
        }
        if let Some((node, anchor)) = finished {
            if anchor > 0 {
                anchors.insert(anchor, (node.clone(), 1));
            }
            match stack.last_mut() {
                None => {
                    if root.is_none() {
                        root = Some(node);
                    }
                }
                Some(Open::Seq(_, items)) => items.push(node),
                Some(Open::Map(_, entries, key)) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
            }
        }
    }
    Ok(root.unwrap_or(Node {
        line: 1,
        col: 1,
        value: Value::Map(Vec::new()),
    }))
}

fn too_many(line: usize, col: usize) -> YamlError {
    YamlError {
        line,
        col,
        message: format!(
            "more than {MAX_NODES} nodes once aliases are expanded; aliases nested inside aliases multiply"
        ),
    }
}

/// Applies `<<: *base` (and `<<: [*a, *b]`): keys written in the mapping win over merged ones,
/// earlier merged mappings over later ones.
fn merge_keys(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    if !entries.iter().any(|(k, _)| is_merge(k)) {
        return entries;
    }
    let mut own: Vec<(Node, Node)> = Vec::new();
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (k, v) in entries {
        if is_merge(&k) {
            let sources: Vec<Node> = match v.value {
                Value::Seq(items) => items,
                _ => vec![v],
            };
            for source in sources {
                if let Value::Map(inner) = source.value {
                    for (ik, iv) in inner {
                        if !merged.iter().any(|(mk, _)| mk.as_str() == ik.as_str()) {
                            merged.push((ik, iv));
                        }
                    }
                }
            }
        } else {
            own.push((k, v));
        }
    }
    for (k, v) in merged {
        if !own.iter().any(|(ok, _)| ok.as_str() == k.as_str()) {
            own.push((k, v));
        }
    }
    own
}

fn is_merge(k: &Node) -> bool {
    matches!(&k.value, Value::Scalar { text, quoted: false } if text == "<<")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_merge_keys_and_aliases() {
        let doc = parse("x-base: &base\n  a: 1\n  b: 2\nsvc:\n  <<: *base\n  b: 3\n").unwrap();
        let svc = doc.get("svc").unwrap();
        assert_eq!(svc.line, 5);
        assert_eq!(svc.get("a").unwrap().as_str(), Some("1"));
        assert_eq!(svc.get("b").unwrap().as_str(), Some("3"));
        assert_eq!(doc.get("x-base").unwrap().line, 2);
        // Columns are 1-based, as in every other gantry message.
        assert_eq!(parse("a: [1]").unwrap().get("a").unwrap().col, 4);
    }

    #[test]
    fn scalars() {
        let doc = parse("a: ~\nb: 'null'\nc: true\nd: \"5\"\n").unwrap();
        assert!(doc.get("a").unwrap().is_null());
        assert_eq!(doc.get("b").unwrap().as_str(), Some("null"));
        assert_eq!(doc.get("c").unwrap().as_bool(), Some(true));
        assert_eq!(doc.get("d").unwrap().as_u64(), Some(5));
        assert_eq!(parse("").unwrap().as_map().map(<[_]>::len), Some(0));
    }

    #[test]
    fn limits_are_errors_with_a_place() {
        let deep = "[".repeat(100_000);
        let e = parse(&deep).unwrap_err();
        // The parser's own recursion limit or ours, whichever comes first.
        assert!(
            e.message.contains("nesting") || e.message.contains("recursion"),
            "{e:?}"
        );
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&" ".repeat(i));
            block.push_str("k:\n");
        }
        assert!(parse(&block).unwrap_err().message.contains("nesting"));
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            laughs.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(parse(&laughs).unwrap_err().message.contains("aliases"));
        let e = parse("a: [1, 2\nb: }").unwrap_err();
        assert!(e.line >= 1 && e.message.contains("YAML"), "{e:?}");
        assert!(parse("a: *nope").is_err());
        let big = "a: b\n".repeat(MAX_BYTES / 4);
        assert!(parse(&big).unwrap_err().message.contains("MiB"));
    }
}

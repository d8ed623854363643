//! Diagnostics: what is wrong, where (file:line:column and the key), and what to do next.

use crate::source::{Source, Span};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a config file. `code` is a stable, kebab-case class name
/// (used by tests and `--json` consumers); `message` is the sentence a user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    /// Dotted key path, e.g. `services.api.depends_on.db`.
    pub key: Option<String>,
    pub span: Option<Span>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            key: None,
            span: None,
            hint: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Diagnostic {
        self.key = Some(key.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic the way the terminal shows it:
    ///
    /// ```text
    /// error[unknown-dependency]: gantry.toml:12:14: services.api.depends_on: unknown service `dbb`
    ///    12 | depends_on = ["dbb"]
    ///       |              ^^^^^
    ///   hint: did you mean `db`?
    /// ```
    pub fn render(&self, source: &Source) -> String {
        let mut out = String::new();
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = write!(out, "{sev}[{}]: {}", self.code, source.path);
        let mut caret = None;
        if let Some(span) = &self.span {
            let (line, col) = source.line_col(span.start);
            let _ = write!(out, ":{line}:{col}");
            caret = Some((line, col, span.clone()));
        }
        out.push_str(": ");
        if let Some(key) = &self.key {
            let _ = write!(out, "{key}: ");
        }
        out.push_str(&self.message);
        if let Some((line, col, span)) = caret {
            let (text, col) = excerpt(source.line_text(line), col);
            let width = text.chars().count().saturating_sub(col - 1).max(1);
            let len = source.text.get(span.clone()).map_or(1, |s| {
                s.lines().next().map_or(1, |l| l.chars().count().max(1))
            });
            let num = line.to_string();
            let pad = " ".repeat(num.len());
            let _ = write!(
                out,
                "\n {num} | {text}\n {pad} | {}{}",
                " ".repeat(col - 1),
                "^".repeat(len.min(width))
            );
        }
        if let Some(hint) = &self.hint {
            let _ = write!(out, "\n  hint: {hint}");
        }
        out
    }

    /// The machine-readable form used by `gantry check --json`.
    pub fn to_json(&self, source: &Source) -> serde_json::Value {
        let (line, column) = self
            .span
            .as_ref()
            .map(|s| source.line_col(s.start))
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        serde_json::json!({
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": source.path,
            "line": line,
            "column": column,
            "key": self.key,
            "hint": self.hint,
        })
    }
}

/// Lines longer than this many characters are shown as an excerpt around the column.
const EXCERPT: usize = 120;

/// `line` as shown under a diagnostic, and the 1-based column in what is shown: a long
/// line (a minified file, 100,000 dotted keys) is cut to [`EXCERPT`] characters around
/// `col`, with `…` where text was left out.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let chars = line.chars().count();
    if chars <= EXCERPT {
        return (line.to_string(), col);
    }
    let from = col.saturating_sub(1 + EXCERPT / 3).min(chars - EXCERPT);
    let mut shown: String = line.chars().skip(from).take(EXCERPT).collect();
    let mut col = col - from;
    if from > 0 {
        shown.insert(0, '…');
        col += 1;
    }
    if from + EXCERPT < chars {
        shown.push('…');
    }
    (shown, col)
}

/// The closest candidate within a small edit distance, if any (transposed neighbours count
/// as one edit).
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // One edit per three chars, plus one: short names get two.
    let limit = (word.chars().count() / 3).max(1) + 1;
    gantry_engine::names::nearest(word, candidates, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_shown_around_the_column() {
        let line = format!("{}X{}", "a".repeat(1000), "b".repeat(1000));
        let source = Source::new("f.toml", line.clone());
        let d = Diagnostic::error("syntax", "here").at(1000..1001);
        let rendered = d.render(&source);
        assert!(
            rendered.starts_with("error[syntax]: f.toml:1:1001: here"),
            "{rendered}"
        );
        let lines: Vec<&str> = rendered.lines().collect();
        let (text, caret) = (lines[1], lines[2]);
        assert!(text.chars().count() < EXCERPT + 20, "{text}");
        assert!(text.contains('…') && text.ends_with('…'), "{text}");
        // The caret stands under the X.
        let at = caret.chars().position(|c| c == '^').unwrap();
        assert_eq!(text.chars().nth(at), Some('X'), "{text}\n{caret}");
        // Short lines are shown whole, and so are columns at either end of a long line.
        assert_eq!(excerpt("short", 3), ("short".to_string(), 3));
        let (start, col) = excerpt(&line, 1);
        assert_eq!((start.chars().next(), col), (Some('a'), 1));
        let (end, col) = excerpt(&line, 2001);
        assert_eq!(end.chars().nth(col - 1), Some('b'));
        assert!(end.starts_with('…') && !end.ends_with('…'));
    }
}

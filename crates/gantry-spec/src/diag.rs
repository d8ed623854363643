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
            let text = source.line_text(line);
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

//! Shared by the decoder's tests: each diagnostic summed up as its head (`severity code key line:col`) and its text (`message / hint`), after checking that it renders with file:line and a hint.
// Each test binary uses a part of it.
#![allow(dead_code)]

use gantry_spec::{Loaded, Severity, Source};

/// One diagnostic, summed up.
pub struct Problem {
    /// `severity code key line:col`.
    pub head: String,
    pub message: String,
    pub hint: String,
}

impl Problem {
    /// `message / hint`.
    pub fn text(&self) -> String {
        format!("{} / {}", self.message, self.hint)
    }
}

/// Every diagnostic of `loaded`, in order. Panics when one has no position, or renders
/// without the file's name or without a hint: every problem says where and what to do.
pub fn problems_of(source: &Source, loaded: &Loaded) -> Vec<Problem> {
    loaded
        .diagnostics
        .iter()
        .map(|d| {
            let (line, col) = source.line_col(d.span.as_ref().expect("a position").start);
            let sev = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let rendered = d.render(source);
            assert!(
                rendered.contains("gantry.toml:"),
                "no file:line: {rendered}"
            );
            assert!(rendered.contains("hint: "), "no hint: {rendered}");
            Problem {
                head: format!(
                    "{sev} {} {} {line}:{col}",
                    d.code,
                    d.key.as_deref().unwrap_or("-")
                ),
                message: d.message.clone(),
                hint: d.hint.clone().unwrap_or_default(),
            }
        })
        .collect()
}

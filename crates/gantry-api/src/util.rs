//! Small helpers shared by the handlers: query parsing, RFC 3339 time (from gantry-time), one-line text.

use std::collections::BTreeSet;

/// The options the health endpoints accept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct HealthQuery {
    pub verbose: bool,
    pub exclude: BTreeSet<String>,
}

impl HealthQuery {
    /// Parses `?verbose&exclude=a&exclude=b` (also `exclude=a,b`). axum's `Query` cannot
    /// collect repeated keys, and Kubernetes repeats `exclude`, hence the hand parsing.
    /// Unknown keys are ignored, as the Kubernetes endpoints do.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut q = HealthQuery::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                // `?verbose`, `?verbose=1`, `?verbose=true` all turn it on; only an explicit false/0 does not.
                "verbose" => q.verbose = !matches!(value.as_ref(), "0" | "false" | "no"),
                "exclude" => {
                    q.exclude.extend(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    );
                }
                _ => {}
            }
        }
        q
    }

    pub fn includes(&self, name: &str) -> bool {
        !self.exclude.contains(name)
    }
}

/// `SystemTime` as RFC 3339 UTC with milliseconds: the workspace's one implementation.
pub(crate) use gantry_time::rfc3339_utc as rfc3339;

/// Flattens text that goes on one line of a line-oriented body (health text form).
pub(crate) fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_forms() {
        let q = HealthQuery::parse(Some("verbose&exclude=a&exclude=b%20c,d"));
        assert!(q.verbose);
        assert_eq!(
            q.exclude.iter().map(String::as_str).collect::<Vec<_>>(),
            ["a", "b c", "d"]
        );
        assert!(!HealthQuery::parse(Some("verbose=false")).verbose);
        assert_eq!(HealthQuery::parse(None), HealthQuery::default());
        assert_eq!(
            HealthQuery::parse(Some("%ff=%zz&&=")),
            HealthQuery::default()
        );
    }

    #[test]
    fn one_line_flattens() {
        assert_eq!(one_line("a\nb\r\n\nc"), "a b c");
    }
}

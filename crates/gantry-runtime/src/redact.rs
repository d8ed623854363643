//! Scrubs known secret values from every line gantry shows or stores.
//!
//! Applied where text enters gantry (service output, probe and spawn messages),
//! so everything derived from it — terminal, log files, events, API, state store,
//! mission records — is already clean.

use aho_corasick::{AhoCorasick, MatchKind};
use std::borrow::Cow;

/// What a secret is replaced with.
pub const MASK: &str = "[redacted]";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    finder: Option<AhoCorasick>,
}

impl Redactor {
    /// Builds a redactor for these values; empty values are ignored.
    pub fn new<I, S>(values: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> = values
            .into_iter()
            .flat_map(|v| url_patterns(v.as_ref()))
            .filter(|v| !v.is_empty())
            .collect();
        // A multi-line secret (a PEM key) can only show up in output line by line.
        let lines: Vec<String> = patterns
            .iter()
            .flat_map(|p| {
                p.lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= 8)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        patterns.extend(lines);
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return Redactor::default();
        }
        // Leftmost-longest: a secret that contains another is masked whole.
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok();
        Redactor { finder }
    }

    pub fn is_empty(&self) -> bool {
        self.finder.is_none()
    }

    /// The text with every known secret replaced by [`MASK`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.finder {
            Some(f) if f.is_match(text) => {
                let mut out = String::with_capacity(text.len());
                f.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(MASK);
                    true
                });
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(text),
        }
    }

    pub fn redact_owned(&self, text: String) -> String {
        match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(s) => s,
        }
    }
}

/// A password shorter than this is not masked on its own (it would mask ordinary words
/// everywhere): the whole URL that holds it is.
const MIN_URL_PASSWORD: usize = 4;

/// What to look for to mask one secret value. A URL with a password (`postgres://app:pw@…`)
/// gives its password, raw and percent-decoded, so output shows the URL with only the
/// password masked (`postgres://app:[redacted]@db:5432/app`, as the store probes show
/// `postgres://app:***@…`); any other value is masked whole.
fn url_patterns(value: &str) -> Vec<String> {
    if value.contains("://") && !value.contains('\n') {
        let passwords = gantry_spec::url::url_secrets(value);
        if !passwords.is_empty() && passwords.iter().all(|p| p.len() >= MIN_URL_PASSWORD) {
            return passwords;
        }
    }
    vec![value.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_secret_shows_with_only_its_password_masked() {
        let r = Redactor::new(["postgres://app:s3cret%21pw@127.0.0.1:5432/app"]);
        assert_eq!(
            r.redact("connecting to postgres://app:s3cret%21pw@127.0.0.1:5432/app"),
            "connecting to postgres://app:[redacted]@127.0.0.1:5432/app"
        );
        assert_eq!(
            r.redact("the password s3cret!pw"),
            "the password [redacted]"
        );
        // What the migrator and the probes print is already masked and stays readable.
        let shown =
            "migrate migrate: postgres://app:***@127.0.0.1:5432/app with the migrations in m";
        assert_eq!(r.redact(shown), shown);
        // Without a password, or with one too short to look for, the URL is masked whole.
        let r = Redactor::new(["postgres://app@127.0.0.1:5432/app", "redis://:pw@h:6379"]);
        assert_eq!(
            r.redact("a postgres://app@127.0.0.1:5432/app b redis://:pw@h:6379 pw"),
            "a [redacted] b [redacted] pw"
        );
    }

    #[test]
    fn masks_every_occurrence_and_the_longest_match() {
        let r = Redactor::new(["hunter2-canary", "hunter2-canary-long", ""]);
        assert_eq!(
            r.redact("a hunter2-canary b hunter2-canary-long"),
            "a [redacted] b [redacted]"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
        assert!(Redactor::new([""]).is_empty());
    }

    #[test]
    fn masks_lines_of_multi_line_secrets() {
        let r = Redactor::new([
            "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\n-----END KEY-----",
        ]);
        assert_eq!(
            r.redact("got MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX"),
            "got [redacted]"
        );
    }
}

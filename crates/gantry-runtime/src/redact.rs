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
    /// Bytes of the longest pattern.
    longest: usize,
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
        let longest = patterns.iter().map(String::len).max().unwrap_or(0);
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok();
        Redactor { finder, longest }
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

    /// Masks one piece of a stream that may be cut inside a secret. `carry` is what the
    /// previous call held back; `text` follows it; with `more`, the next piece continues
    /// this one, so the end that could be the start of a secret (shorter than the
    /// longest one) is held back in `carry` instead of shown. Returns what may be shown.
    pub fn redact_stream(&self, carry: &mut String, text: String, more: bool) -> String {
        let text = if carry.is_empty() {
            text
        } else {
            let mut joined = std::mem::take(carry);
            joined.push_str(&text);
            joined
        };
        let Some(f) = self.finder.as_ref().filter(|_| more) else {
            return self.redact_owned(text);
        };
        // Everything before `cut` is final: no match can start there and end beyond it.
        let mut cut = text.len().saturating_sub(self.longest.saturating_sub(1));
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut out = String::with_capacity(cut);
        let mut pos = 0;
        for m in f.find_iter(&text) {
            if m.start() >= cut {
                break;
            }
            out.push_str(&text[pos..m.start()]);
            out.push_str(MASK);
            pos = m.end();
        }
        let cut = cut.max(pos);
        out.push_str(&text[pos..cut]);
        *carry = text[cut..].to_string();
        out
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

    /// Feeds `text` in chunks of `n` bytes, as a long line cut by the output reader.
    fn streamed(r: &Redactor, text: &str, n: usize) -> String {
        let mut carry = String::new();
        let mut shown = String::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let end = (i + n).min(bytes.len());
            let chunk = String::from_utf8(bytes[i..end].to_vec()).unwrap();
            shown.push_str(&r.redact_stream(&mut carry, chunk, end < bytes.len()));
            i = end;
        }
        shown
    }

    #[test]
    fn a_secret_cut_between_two_chunks_is_masked() {
        let secret = "hunter2-very-secret";
        let r = Redactor::new([secret]);
        let line = format!("{}{secret}{}", "a".repeat(65_530), "b".repeat(100));
        // Every cut position through the secret, and chunk sizes smaller than it.
        for n in [65_531, 65_535, 65_536, 65_540, 7, 3] {
            let shown = streamed(&r, &line, n);
            assert!(!shown.contains("hunter2"), "chunk {n}");
            assert!(!shown.contains("very-secret"), "chunk {n}");
            assert_eq!(
                shown,
                format!("{}{MASK}{}", "a".repeat(65_530), "b".repeat(100))
            );
        }
        // Without secrets nothing is held back.
        let none = Redactor::new(Vec::<String>::new());
        let mut carry = String::new();
        assert_eq!(none.redact_stream(&mut carry, "abc".into(), true), "abc");
        assert!(carry.is_empty());
    }

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

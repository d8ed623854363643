//! The canonical catalog (one sorted text line per table, column, index, constraint, view,
//! trigger), its schema hash, and the readable diff between a recorded and a live catalog.

use std::collections::BTreeSet;
use std::fmt;

use crate::files::sha256_hex;

/// The version of the line format below; a recorded catalog of another format is
/// re-recorded instead of being compared (it would all read as drift).
pub const FORMAT: i64 = 1;

/// The tables gantry itself owns, never part of the catalog.
pub(crate) const OWN_TABLES: &[&str] = &[
    crate::HISTORY_TABLE,
    crate::HASH_TABLE,
    // The store probes' `rw = true` scratch table.
    "gantry_probe_scratch",
];

/// A database schema as sorted, de-duplicated text lines, e.g.
/// `column users.email character varying(255) NOT NULL` or
/// `index users.users_email_key UNIQUE btree (email)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    lines: BTreeSet<String>,
}

impl Catalog {
    pub fn from_lines(lines: impl IntoIterator<Item = String>) -> Catalog {
        Catalog {
            lines: lines.into_iter().collect(),
        }
    }

    /// Parses the text form written by [`Catalog::text`].
    pub fn parse(text: &str) -> Catalog {
        Catalog::from_lines(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        )
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    /// One line per object, `\n`-terminated.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// The schema hash: SHA-256 (hex) over the format version and the sorted lines.
    pub fn hash(&self) -> String {
        sha256_hex(format!("gantry-schema v{FORMAT}\n{}", self.text()).as_bytes())
    }

    /// This (recorded) catalog changed the way the live schema changed from `before` to
    /// `after`: what disappeared is removed, what appeared is added. Used after migrations
    /// ran on a schema that had drifted (`on_drift = "warn"`), so the drift keeps being
    /// reported instead of being recorded as if a migration had made it.
    pub fn with_changes(&self, before: &Catalog, after: &Catalog) -> Catalog {
        let mut lines = self.lines.clone();
        for gone in before.lines.difference(&after.lines) {
            lines.remove(gone);
        }
        for new in after.lines.difference(&before.lines) {
            lines.insert(new.clone());
        }
        Catalog { lines }
    }
}

/// The live schema differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The recorded schema hash.
    pub recorded_hash: String,
    /// The hash of the live schema.
    pub live_hash: String,
    /// Lines in the recorded catalog that the live schema no longer has.
    pub removed: Vec<String>,
    /// Lines in the live schema that the recorded catalog does not have.
    pub added: Vec<String>,
}

impl Drift {
    /// `None` when both catalogs are the same.
    pub fn between(recorded: &Catalog, live: &Catalog) -> Option<Drift> {
        if recorded == live {
            return None;
        }
        Some(Drift {
            recorded_hash: recorded.hash(),
            live_hash: live.hash(),
            removed: recorded.lines.difference(&live.lines).cloned().collect(),
            added: live.lines.difference(&recorded.lines).cloned().collect(),
        })
    }

    /// The diff, one `- line` / `+ line` per change, ordered by object so that a changed
    /// column shows its old and new line together.
    pub fn diff_lines(&self) -> Vec<String> {
        let mut all: Vec<(&str, char)> = self
            .removed
            .iter()
            .map(|l| (l.as_str(), '-'))
            .chain(self.added.iter().map(|l| (l.as_str(), '+')))
            .collect();
        all.sort();
        all.into_iter().map(|(l, c)| format!("{c} {l}")).collect()
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the live schema differs from the recorded schema hash (recorded {}, live {})",
            short(&self.recorded_hash),
            short(&self.live_hash)
        )?;
        for l in self.diff_lines() {
            write!(f, "\n    {l}")?;
        }
        Ok(())
    }
}

/// The first 12 hex digits of a hash, for messages.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Collapses runs of whitespace (view and trigger definitions span lines).
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(lines: &[&str]) -> Catalog {
        Catalog::from_lines(lines.iter().map(|s| s.to_string()))
    }

    #[test]
    fn hash_is_order_independent_and_text_round_trips() {
        let a = cat(&["table t", "column t.a integer NULL"]);
        let b = cat(&["column t.a integer NULL", "table t"]);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(Catalog::parse(&a.text()), a);
        assert_ne!(a.hash(), cat(&["table t"]).hash());
    }

    #[test]
    fn drift_diff_pairs_changed_lines() {
        let rec = cat(&["table t", "column t.a integer NULL"]);
        let live = cat(&[
            "table t",
            "column t.a bigint NULL",
            "column t.nick text NULL",
        ]);
        let d = Drift::between(&rec, &live).unwrap();
        assert_eq!(
            d.diff_lines(),
            [
                "+ column t.a bigint NULL",
                "- column t.a integer NULL",
                "+ column t.nick text NULL"
            ]
        );
        assert!(Drift::between(&rec, &rec.clone()).is_none());
    }

    #[test]
    fn with_changes_keeps_the_drift() {
        let recorded = cat(&["table t"]);
        let before = cat(&["table t", "column t.hand text NULL"]);
        let after = cat(&["table t", "column t.hand text NULL", "table u"]);
        let expected = recorded.with_changes(&before, &after);
        assert_eq!(expected, cat(&["table t", "table u"]));
        let d = Drift::between(&expected, &after).unwrap();
        assert_eq!(d.added, ["column t.hand text NULL"]);
    }
}

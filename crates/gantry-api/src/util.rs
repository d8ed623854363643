//! Small helpers shared by the handlers: query parsing, RFC 3339 time, snapshot access.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// `SystemTime` as RFC 3339 UTC with milliseconds. Written by hand because the common
/// formatters panic on times before 1970 or after 9999, and no input may panic here.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let (secs, millis) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_millis(),
        ),
        Err(e) => {
            // Before the epoch: round towards the past so the fraction stays positive.
            let d = e.duration();
            let s = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_millis() {
                0 => (-s, 0),
                m => (-s - 1, 1000 - m),
            }
        }
    };
    // Clamp to the years RFC 3339 can write (0000..=9999).
    let secs = secs.clamp(-62_167_219_200, 253_402_300_799);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // Both are in range by construction (1..=31, 1..=12); the fallback only satisfies the type.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

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
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_767_225_599)),
            "2025-12-31T23:59:59.000Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_millis(1)),
            "1969-12-31T23:59:59.999Z"
        );
        // Out of range clamps instead of panicking.
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_000_000_000_000_000)),
            "9999-12-31T23:59:59.000Z"
        );
    }

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

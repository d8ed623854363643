//! RFC 3339 UTC timestamps, formatted and parsed with std only: the one date implementation of gantry.
//!
//! Log lines, the state store and the HTTP API all write `YYYY-MM-DDTHH:MM:SS.mmmZ`.
//! It is a crate of its own, without dependencies, so that the HTTP API (and through it
//! the embeddable `gantry` library) shares it without pulling in SQLite. Written by hand
//! because the common formatters panic on times before 1970 or after 9999, and no input
//! may panic here.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, millisecond precision). Times before the epoch
/// print as they are (`1969-12-31T23:59:59.999Z`); times outside the years RFC 3339 can
/// write (0000..=9999) are clamped to them.
pub fn rfc3339_utc(t: SystemTime) -> String {
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

/// `YYYY-MM-DDTHH:MM:SS[.fff…]Z` (UTC) to milliseconds since the Unix epoch; None for
/// anything else (other offsets, impossible dates, missing parts). Digits past the
/// millisecond are cut, not rounded.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let rest = s.get(19..)?;
    let millis = match rest.strip_prefix('.') {
        None if rest == "Z" => 0,
        None => return None,
        Some(frac) => {
            let digits = frac.strip_suffix('Z')?;
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let ms: String = digits.chars().chain("00".chars()).take(3).collect();
            ms.parse::<i64>().ok()?
        }
    };
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + min) * 60_000 + sec * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`),
/// the inverse of [`civil_from_days`].
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // leap year, Feb 29
        assert_eq!(rfc3339_utc(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_utc(t), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_767_225_599)),
            "2025-12-31T23:59:59.000Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_millis(1)),
            "1969-12-31T23:59:59.999Z"
        );
        // Out of range clamps instead of panicking.
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_000_000_000_000_000)),
            "9999-12-31T23:59:59.000Z"
        );
    }

    #[test]
    fn timestamps_round_trip() {
        for ms in [
            0i64,
            1,
            999,
            86_399_999,
            951_782_400_000,   // 2000-02-29
            1_709_210_096_789, // 2024-02-29T12:34:56.789Z
            1_795_506_060_123, // 2026-11-24
            4_102_444_800_000, // 2100-01-01
        ] {
            let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
            assert_eq!(
                parse_rfc3339_ms(&rfc3339_utc(t)),
                Some(ms),
                "{}",
                rfc3339_utc(t)
            );
        }
        assert_eq!(
            parse_rfc3339_ms("1969-12-31T23:59:59.999Z"),
            Some(-1),
            "before the epoch"
        );
        for days in [-800_000i64, -1, 0, 1, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m.into(), d.into()), days);
        }
    }

    #[test]
    fn parse_accepts_fractions_and_rejects_the_rest() {
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56.789Z"),
            Some(1_709_210_096_789)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56Z"),
            Some(1_709_210_096_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56.7Z"),
            Some(1_709_210_096_700)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56.78912Z"),
            Some(1_709_210_096_789)
        );
        for bad in [
            "",
            "2024-02-30T00:00:00.000Z",
            "2023-02-29T00:00:00.000Z",
            "2024-13-01T00:00:00.000Z",
            "2024-01-01T24:00:00.000Z",
            "2024-01-01 00:00:00.000Z",
            "2024-01-01T00:00:00.000",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.0a0Z",
            "+024-01-01T00:00:00.000Z",
            "2024-01-01T00:00:00é000Z",
            "hello world, not a time",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }
}

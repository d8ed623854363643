//! Human durations as written in gantry.toml: `250ms`, `1s`, `5m`, `1h`, `1.5s`, `1m30s`.

use std::time::Duration;

/// Parses a duration such as `250ms`, `1s`, `1.5s`, `5m`, `2h` or `1m30s`.
/// Units: `us`, `ms`, `s`, `m`, `h`, `d`. A bare number is refused on purpose:
/// `timeout = 5` could mean seconds or milliseconds, and a guess is worse than an error.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("`{text}` is not a duration"));
        }
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`{num}` is not a number"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit.trim() {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => return Err(format!("`{text}` has no unit")),
            other => return Err(format!("unknown unit `{other}` in `{text}`")),
        };
        total += value * scale;
        rest = tail;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(format!("`{text}` is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration the way a user would write it (`250ms`, `1.5s`, `5m`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && d.as_micros() > 0 {
        format!("{}us", d.as_micros())
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for s in ["250ms", "1s", "5m", "2h", "1.50s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}

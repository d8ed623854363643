//! Sizes as written in gantry.toml: `"512KiB"`, `"10MiB"`, `"1GiB"`, or a plain number of bytes.

/// Binary units only: `10MB` could mean 10,000,000 or 10,485,760 bytes, and a guess is
/// worse than an error.
use gantry_engine::SIZE_UNITS as UNITS;

/// What the JSON Schema accepts for a size string: the same forms as [`parse_size`].
pub const SIZE_PATTERN: &str = r"^([0-9]+ *B?|[0-9]+(\.[0-9]+)? *[KMGT]iB)$";

/// Parses `4096`, `4096B`, `512KiB`, `1.5MiB`, `10 MiB`, `1GiB` or `1TiB` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty size".into());
    }
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_len);
    let unit = unit.trim_start();
    if num.is_empty() {
        return Err(format!("`{text}` is not a size"));
    }
    let scale = match UNITS.iter().find(|(u, _)| *u == unit) {
        Some((_, scale)) => *scale,
        None if unit.is_empty() => 1,
        None => {
            let binary = match unit.to_ascii_uppercase().trim_end_matches('B') {
                "K" | "KI" => "KiB",
                "M" | "MI" => "MiB",
                "G" | "GI" => "GiB",
                "T" | "TI" => "TiB",
                _ => return Err(format!("unknown unit `{unit}` in `{text}`")),
            };
            return Err(format!(
                "`{unit}` is not a unit gantry reads: sizes are binary, write `{num}{binary}`"
            ));
        }
    };
    if num.bytes().all(|c| c.is_ascii_digit()) {
        return num
            .parse::<u64>()
            .ok()
            .and_then(|whole| whole.checked_mul(scale))
            .ok_or_else(|| format!("`{text}` is too large"));
    }
    if scale == 1 {
        return Err(format!("`{text}` is not a whole number of bytes"));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{num}` is not a number"))?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("`{text}` is too large"));
    }
    Ok(bytes as u64)
}

/// Formats bytes the way a user would write them (the engine's formatter, which names a
/// memory limit in an OOM kill's reason).
pub use gantry_engine::format_size;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("10 MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for (bad, says) in [
            ("", "empty"),
            ("MiB", "not a size"),
            ("10MB", "write `10MiB`"),
            ("10mb", "write `10MiB`"),
            ("1k", "write `1KiB`"),
            ("10 parsecs", "unknown unit"),
            ("1.5", "whole number"),
            ("1.5B", "whole number"),
            ("1.2.3KiB", "not a number"),
            ("99999999999TiB", "too large"),
            ("18446744073709551616", "too large"),
        ] {
            let err = parse_size(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn the_schema_pattern_accepts_what_parses() {
        let re = regex::Regex::new(SIZE_PATTERN).unwrap();
        for ok in ["4096", "4096B", "512KiB", "1.5MiB", "10 MiB", "1GiB"] {
            assert!(re.is_match(ok) && parse_size(ok).is_ok(), "{ok}");
        }
        for bad in ["10MB", "1.5", "", "MiB", "1k"] {
            assert!(!re.is_match(bad) && parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["4KiB", "512KiB", "10MiB", "1GiB", "1500B"] {
            assert_eq!(format_size(parse_size(s).unwrap()), s);
        }
        assert_eq!(format_size(0), "0B");
    }
}

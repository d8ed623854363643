//! CPU shares as written in gantry.toml: `0.5` or `"50%"` (half of one CPU), `2` or `"200%"` (two CPUs).

use std::fmt;

/// A CPU share in thousandths of a CPU: `cpu_max = 0.2` is `MilliCpus(200)`.
///
/// Kept as an integer so that the model stays `Eq` and the cgroup quota is exact
/// (0.2 CPU is 20,000 µs per 100,000 µs period, not 19,999.999…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MilliCpus(pub u32);

/// The smallest share: the kernel's CFS quota is at least 1 ms per 100 ms period.
pub const CPU_MIN: MilliCpus = MilliCpus(10);
/// The largest share accepted (1024 CPUs): above that it is a typo, not a limit.
pub const CPU_MAX: MilliCpus = MilliCpus(1_024_000);

/// What the JSON Schema accepts for the string form: a number, optionally a percentage.
pub const CPU_PATTERN: &str = r"^[0-9]+(\.[0-9]+)? *%?$";

impl fmt::Display for MilliCpus {
    /// `0.2 CPU`, `1.5 CPUs`, `1 CPU`: the share the way a user writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 1000, self.0 % 1000);
        let unit = if self.0 > 1000 { "CPUs" } else { "CPU" };
        if frac == 0 {
            return write!(f, "{whole} {unit}");
        }
        let digits = format!("{frac:03}");
        write!(f, "{whole}.{} {unit}", digits.trim_end_matches('0'))
    }
}

/// Turns a number of CPUs into thousandths, rounded; `what` names the value in errors.
pub fn from_cpus(cpus: f64, what: &str) -> Result<MilliCpus, String> {
    if !cpus.is_finite() || cpus < 0.0 {
        return Err(format!("`{what}` is not a CPU share"));
    }
    let milli = (cpus * 1000.0).round();
    if milli < f64::from(CPU_MIN.0) {
        return Err(format!("`{what}` is below the minimum of {CPU_MIN} (1%)"));
    }
    if milli > f64::from(CPU_MAX.0) {
        return Err(format!("`{what}` is above the maximum of {CPU_MAX}"));
    }
    Ok(MilliCpus(milli as u32))
}

/// Parses the string form: `"0.5"`, `"2"`, `"50%"`, `"12.5 %"`.
pub fn parse_cpu(text: &str) -> Result<MilliCpus, String> {
    let s = text.trim();
    let (num, percent) = match s.strip_suffix('%') {
        Some(n) => (n.trim_end(), true),
        None => (s, false),
    };
    let valid = !num.is_empty()
        && num.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && num.bytes().filter(|&c| c == b'.').count() <= 1
        && !num.starts_with('.')
        && !num.ends_with('.');
    if !valid {
        return Err(format!("`{text}` is not a CPU share"));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a CPU share"))?;
    from_cpus(if percent { value / 100.0 } else { value }, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_percentages() {
        assert_eq!(parse_cpu("0.5"), Ok(MilliCpus(500)));
        assert_eq!(parse_cpu("50%"), Ok(MilliCpus(500)));
        assert_eq!(parse_cpu("12.5 %"), Ok(MilliCpus(125)));
        assert_eq!(parse_cpu("2"), Ok(MilliCpus(2000)));
        assert_eq!(parse_cpu("200%"), Ok(MilliCpus(2000)));
        assert_eq!(parse_cpu("1%"), Ok(MilliCpus(10)));
        assert_eq!(from_cpus(0.2, "0.2"), Ok(MilliCpus(200)));
    }

    #[test]
    fn refuses_what_is_not_a_share() {
        for (bad, says) in [
            ("", "not a CPU share"),
            ("%", "not a CPU share"),
            ("half", "not a CPU share"),
            ("-1", "not a CPU share"),
            ("1.2.3", "not a CPU share"),
            (".5", "not a CPU share"),
            ("0.001", "below the minimum of 0.01 CPU"),
            ("0%", "below the minimum"),
            ("5000", "above the maximum of 1024 CPUs"),
        ] {
            let err = parse_cpu(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn displays_the_way_it_is_written() {
        assert_eq!(MilliCpus(200).to_string(), "0.2 CPU");
        assert_eq!(MilliCpus(1000).to_string(), "1 CPU");
        assert_eq!(MilliCpus(1500).to_string(), "1.5 CPUs");
        assert_eq!(MilliCpus(125).to_string(), "0.125 CPU");
        assert_eq!(MilliCpus(10).to_string(), "0.01 CPU");
    }

    #[test]
    fn the_schema_pattern_accepts_what_parses() {
        let re = regex::Regex::new(CPU_PATTERN).unwrap();
        for ok in ["0.5", "50%", "12.5 %", "2"] {
            assert!(re.is_match(ok) && parse_cpu(ok).is_ok(), "{ok}");
        }
        for bad in ["half", "", "%", ".5", "1.2.3"] {
            assert!(!re.is_match(bad) && parse_cpu(bad).is_err(), "{bad}");
        }
    }
}

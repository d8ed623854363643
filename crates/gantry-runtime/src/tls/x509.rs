//! Just enough DER to read a certificate's validity window (notBefore, notAfter) for the pre-flight's days-to-expiry: no X.509 crate for two dates.
//!
//! `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
//! serialNumber INTEGER, signature AlgorithmIdentifier, issuer Name, validity SEQUENCE {
//! notBefore Time, notAfter Time }, … }, … }` with `Time` a UTCTime (`YYMMDDHHMMSSZ`) or a
//! GeneralizedTime (`YYYYMMDDHHMMSSZ`). Anything else reads as `None`, never a panic.

/// One DER element: its tag, its content and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The validity window of a DER certificate, in seconds since the Unix epoch.
pub(crate) fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == VERSION {
        rest = after;
    }
    let (INTEGER, _, rest) = element(rest)? else {
        return None;
    };
    // signature algorithm, issuer
    let (SEQUENCE, _, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, _, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, window, _) = element(rest)? else {
        return None;
    };
    let (t1, not_before, rest) = element(window)?;
    let (t2, not_after, _) = element(rest)?;
    Some((time(t1, not_before)?, time(t2, not_after)?))
}

fn time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let text = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME if text.len() == 12 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            // RFC 5280: 50-99 are 19xx, 00-49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        GENERALIZED_TIME if text.len() == 14 => (text.get(..4)?.parse().ok()?, &text[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day) = (num(0)?, num(2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = gantry_time::days_from_civil(year, month, day);
    Some(days * 86_400 + num(4)? * 3600 + num(6)? * 60 + num(8)?)
}

/// `2031-05-04` for seconds since the epoch.
pub(crate) fn date(secs: i64) -> String {
    let (y, m, d) = gantry_time::civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(
            time(GENERALIZED_TIME, b"20380119031408Z"),
            Some(2_147_483_648)
        );
        assert_eq!(time(UTC_TIME, b"7001010000Z"), None);
        assert_eq!(time(UTC_TIME, b"701301000000Z"), None);
        assert_eq!(time(GENERALIZED_TIME, b"2038011903140+Z"), None);
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(2_147_483_648), "2038-01-19");
    }

    #[test]
    fn garbage_is_none_never_a_panic() {
        for der in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
        ] {
            assert_eq!(validity(der), None);
        }
    }
}

//! flagd's `fractional` operator: the bucketing value (by default `[flagKey, targetingKey]`) is
//! encoded as canonical CBOR, hashed with MurmurHash3 x86_32 (seed 0, unsigned), and mapped to a
//! bucket as `(hash * total_weight) >> 32`; weights are relative integers (1 when omitted).

use serde_json::Value;

use crate::murmur::murmur3_x86_32;

/// The largest total weight flagd accepts (MaxInt32).
pub(crate) const MAX_WEIGHT_SUM: u64 = 2_147_483_647;

/// Evaluates `fractional` over its (already evaluated) arguments; null when it cannot decide
/// (no targeting key, bad buckets), as flagd does.
pub(crate) fn fractional(args: &[Value], flag_key: &str, targeting_key: Option<&Value>) -> Value {
    let Some(first) = args.first() else {
        return Value::Null;
    };
    let (bucket_by, buckets) = if first.is_array() {
        match targeting_key {
            Some(Value::String(t)) if !t.is_empty() => (
                Value::Array(vec![
                    Value::String(flag_key.to_string()),
                    Value::String(t.clone()),
                ]),
                args,
            ),
            _ => return Value::Null,
        }
    } else {
        (first.clone(), &args[1..])
    };
    if bucket_by.is_null() {
        return Value::Null;
    }
    let Some(weighted) = parse_buckets(buckets) else {
        return Value::Null;
    };
    let total: u64 = weighted.iter().map(|(_, w)| *w).sum();
    if total == 0 || total > MAX_WEIGHT_SUM {
        return Value::Null;
    }
    let mut bytes = Vec::new();
    cbor(&bucket_by, &mut bytes, 0);
    let hash = u64::from(murmur3_x86_32(&bytes, 0));
    bucket_of(hash, total, &weighted)
}

fn bucket_of(hash: u64, total: u64, weighted: &[(Value, u64)]) -> Value {
    let bucket = (hash * total) >> 32;
    let mut end = 0;
    for (variant, weight) in weighted {
        end += weight;
        if bucket < end {
            return variant.clone();
        }
    }
    Value::Null
}

/// `[variant]` or `[variant, weight]` each; `None` if any is malformed (flagd gives up then).
pub(crate) fn parse_buckets(buckets: &[Value]) -> Option<Vec<(Value, u64)>> {
    let mut out = Vec::with_capacity(buckets.len());
    for b in buckets {
        let Value::Array(items) = b else { return None };
        match items.as_slice() {
            [variant] => out.push((variant.clone(), 1)),
            [variant, Value::Number(w)] => {
                let weight = if let Some(u) = w.as_u64() {
                    u
                } else if w.as_i64().is_some() {
                    0 // negative weights are clamped to 0
                } else {
                    return None;
                };
                out.push((variant.clone(), weight));
            }
            _ => return None,
        }
    }
    Some(out)
}

fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend([m | 24, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend((n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend((n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend(n.to_be_bytes());
    }
}

/// Canonical CBOR (RFC 7049 §3.9, as Python's `cbor2.dumps(canonical=True)`), integral floats
/// written as integers (flagd's number normalisation).
pub(crate) fn cbor(v: &Value, out: &mut Vec<u8>, depth: usize) {
    if depth > crate::logic::MAX_DEPTH {
        out.push(0xf6);
        return;
    }
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                head(0, u, out);
            } else if let Some(i) = n.as_i64() {
                head(1, (-1 - i) as u64, out);
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f >= 0.0 && f <= u64::MAX as f64 {
                    head(0, f as u64, out);
                } else if f.fract() == 0.0 && f < 0.0 && f >= -(2f64.powi(63)) {
                    head(1, (-1 - f as i64) as u64, out);
                } else {
                    float(f, out);
                }
            }
        }
        Value::String(s) => {
            head(3, s.len() as u64, out);
            out.extend(s.as_bytes());
        }
        Value::Array(items) => {
            head(4, items.len() as u64, out);
            for item in items {
                cbor(item, out, depth + 1);
            }
        }
        Value::Object(map) => {
            let mut entries: Vec<(Vec<u8>, &Value)> = map
                .iter()
                .map(|(k, v)| {
                    let mut key = Vec::new();
                    cbor(&Value::String(k.clone()), &mut key, depth + 1);
                    (key, v)
                })
                .collect();
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
            head(5, entries.len() as u64, out);
            for (k, v) in entries {
                out.extend(k);
                cbor(v, out, depth + 1);
            }
        }
    }
}

/// The shortest IEEE float (half, single, double) that holds `f` exactly.
fn float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend([0xf9, 0x7e, 0x00]);
        return;
    }
    let single = f as f32;
    if f64::from(single) == f {
        if let Some(half) = half_bits(single) {
            out.push(0xf9);
            out.extend(half.to_be_bytes());
        } else {
            out.push(0xfa);
            out.extend(single.to_bits().to_be_bytes());
        }
    } else {
        out.push(0xfb);
        out.extend(f.to_bits().to_be_bytes());
    }
}

fn half_bits(f: f32) -> Option<u16> {
    let bits = f.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    if f == 0.0 {
        return Some(sign);
    }
    if f.is_infinite() {
        return Some(sign | 0x7c00);
    }
    let exp = ((bits >> 23) & 0xff) as i32 - 127;
    let mant = bits & 0x7f_ffff;
    if (-14..=15).contains(&exp) {
        if mant & 0x1fff != 0 {
            return None;
        }
        return Some(sign | (((exp + 15) as u16) << 10) | (mant >> 13) as u16);
    }
    if (-24..-14).contains(&exp) {
        let full = mant | 0x80_0000;
        let shift = 13 + (-14 - exp) as u32;
        if full & ((1 << shift) - 1) != 0 {
            return None;
        }
        return Some(sign | (full >> shift) as u16);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        cbor(&v, &mut out, 0);
        out
    }

    #[test]
    fn cbor_matches_rfc_examples() {
        assert_eq!(enc(json!(0)), [0x00]);
        assert_eq!(enc(json!(23)), [0x17]);
        assert_eq!(enc(json!(24)), [0x18, 0x18]);
        assert_eq!(enc(json!(1000)), [0x19, 0x03, 0xe8]);
        assert_eq!(enc(json!(-1)), [0x20]);
        assert_eq!(enc(json!(-1000)), [0x39, 0x03, 0xe7]);
        assert_eq!(enc(json!(1.0)), [0x01]);
        assert_eq!(enc(json!(1.5)), [0xf9, 0x3e, 0x00]);
        assert_eq!(enc(json!(100000.5)), [0xfa, 0x47, 0xc3, 0x50, 0x40]);
        assert_eq!(
            enc(json!(1.1)),
            [0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]
        );
        assert_eq!(enc(json!(5.960464477539063e-8)), [0xf9, 0x00, 0x01]);
        assert_eq!(enc(json!("IETF")), [0x64, 0x49, 0x45, 0x54, 0x46]);
        assert_eq!(enc(json!([1, [2, 3]])), [0x82, 0x01, 0x82, 0x02, 0x03]);
        assert_eq!(
            enc(json!({"b": 1, "a": 2, "aa": 3})),
            [
                0xa3, 0x61, 0x61, 0x02, 0x61, 0x62, 0x01, 0x62, 0x61, 0x61, 0x03
            ]
        );
        assert_eq!(enc(json!(true)), [0xf5]);
        assert_eq!(enc(json!(null)), [0xf6]);
    }

    #[test]
    fn buckets_cover_the_hash_range_in_weight_order() {
        let w = vec![(json!("a"), 1), (json!("b"), 1)];
        assert_eq!(bucket_of(0, 2, &w), json!("a"));
        assert_eq!(bucket_of(u64::from(u32::MAX), 2, &w), json!("b"));
        assert_eq!(bucket_of(1 << 31, 2, &w), json!("b"));
        assert_eq!(bucket_of((1 << 31) - 1, 2, &w), json!("a"));
    }

    #[test]
    fn malformed_buckets_give_null() {
        assert_eq!(
            fractional(&[json!(["a", 1.5])], "f", Some(&json!("u"))),
            Value::Null
        );
        assert_eq!(
            fractional(&[json!(["a", 0])], "f", Some(&json!("u"))),
            Value::Null
        );
        assert_eq!(fractional(&[json!(["a"])], "f", None), Value::Null);
        assert_eq!(
            fractional(&[json!("x"), json!(["a"])], "f", None),
            json!("a")
        );
        assert_eq!(
            fractional(&[json!(["a", -5]), json!(["b", 3])], "f", Some(&json!("u"))),
            json!("b")
        );
    }
}

//! Agreement with flagd's own evaluator: `openfeature-flagd-core` (PyPI, installed into
//! `.venv-tests` by scripts/setup) and gantry-flags assign the same fractional bucket to each of
//! 1,000 targeting keys, for the same flag JSON.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use gantry_flags::{FlagSet, Reason};
use serde_json::{Value, json};

const FLAGD_EVAL: &str = r#"
import json, sys
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
req = json.load(sys.stdin)
core = FlagdCore()
core.set_flags(req["flags"])
out = []
for flag in req["evaluate"]:
    row = []
    for ctx in req["contexts"]:
        attrs = {k: v for k, v in ctx.items() if k != "targetingKey"}
        r = core.resolve_string_value(flag, "none", EvaluationContext(targeting_key=ctx.get("targetingKey"), attributes=attrs))
        row.append(r.variant)
    out.append(row)
json.dump(out, sys.stdout)
"#;

fn venv_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-tests/bin/python")
}

/// The variant flagd-core picks for each flag of `evaluate` and each context (None: no variant).
fn flagd_variants(
    flags: &Value,
    evaluate: &[&str],
    contexts: &[Value],
) -> Vec<Vec<Option<String>>> {
    let python = venv_python();
    let request = json!({"flags": flags, "evaluate": evaluate, "contexts": contexts});
    let mut child = Command::new(&python)
        .args(["-c", FLAGD_EVAL])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write request");
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "flagd-core failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("flagd-core JSON")
}

/// Fails (never skips) when the venv or the package is missing.
fn require_flagd_core() {
    let python = venv_python();
    let probe = Command::new(&python)
        .args(["-c", "import openfeature.contrib.tools.flagd.core"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "{} cannot import openfeature-flagd-core ({other:?}): run scripts/setup",
            python.display()
        ),
    }
}

/// The CBOR encoding of the bucketing value has length headers of 1, 2 and 3 bytes and
/// several number forms: long and non-ASCII flag and targeting keys, and a numeric `bucketBy`
/// (integers of each width, negative, whole and fractional floats) land where flagd puts them.
#[test]
fn bucketing_agrees_for_long_unicode_keys_and_numeric_values() {
    require_flagd_core();
    let long_flag = "checkout-experiment-with-a-rather-long-flag-key-ß-ünïcode";
    let flags = json!({
        "flags": {
            long_flag: {
                "state": "ENABLED",
                "variants": {"a": "a", "b": "b", "c": "c"},
                "defaultVariant": "a",
                "targeting": {"fractional": [["a", 25], ["b", 25], ["c", 50]]}
            },
            "by-number": {
                "state": "ENABLED",
                "variants": {"a": "a", "b": "b", "c": "c"},
                "defaultVariant": "a",
                "targeting": {"fractional": [{"var": "n"}, ["a", 1], ["b", 1], ["c", 1]]}
            }
        }
    });
    let numbers = [
        json!(0),
        json!(23),
        json!(24),
        json!(255),
        json!(256),
        json!(65_535),
        json!(65_536),
        json!(4_294_967_295u64),
        json!(4_294_967_296u64),
        json!(-1),
        json!(-25),
        json!(-70_000),
        json!(2.0),
        json!(0.5),
        json!(1.5),
        json!(-2.75),
        json!(1.2345678),
        json!(1e10),
        json!(65_504.0),
        json!(100_000.5),
        json!(1e-8),
    ];
    let contexts: Vec<Value> = (0..600usize)
        .map(|i| {
            let base = ["k", "ключ-", "鍵", "🔑"][i % 4];
            json!({
                "targetingKey": format!("{}{i}", base.repeat(i % 300 + 1)),
                "n": numbers[i % numbers.len()].clone(),
            })
        })
        .collect();
    let evaluate = [long_flag, "by-number"];
    let theirs = flagd_variants(&flags, &evaluate, &contexts);
    let set = FlagSet::parse_flagd(&flags.to_string(), "flags.json").expect("valid flags");
    for (f, flag) in evaluate.iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        for (i, ctx) in contexts.iter().enumerate() {
            let ours = set.evaluate(flag, ctx).expect("evaluates");
            assert_eq!(
                ours.variant, theirs[f][i],
                "flag {flag}, context {ctx}: gantry and flagd-core disagree"
            );
            seen.insert(ours.variant);
        }
        assert_eq!(seen.len(), 3, "{flag}: {seen:?}");
    }
}

#[test]
fn fractional_buckets_agree_with_flagd_core() {
    require_flagd_core();
    let flags = json!({
        "flags": {
            "three-way": {
                "state": "ENABLED",
                "variants": {"red": "r", "green": "g", "blue": "b"},
                "defaultVariant": "red",
                "targeting": {"fractional": [["red", 20], ["green", 30], ["blue", 50]]}
            },
            "relative": {
                "state": "ENABLED",
                "variants": {"a": "a", "b": "b", "c": "c"},
                "defaultVariant": "a",
                "targeting": {"fractional": [["a", 1], ["b", 2], ["c", 7]]}
            },
            "by-email": {
                "state": "ENABLED",
                "variants": {"a": "a", "b": "b", "c": "c"},
                "defaultVariant": "a",
                "targeting": {"fractional": [{"var": "email"}, ["a", 33], ["b", 33], ["c", 34]]}
            },
            "even": {
                "state": "ENABLED",
                "variants": {"x": "x", "y": "y", "z": "z"},
                "defaultVariant": "x",
                "targeting": {"if": [{"starts_with": [{"var": "targetingKey"}, "user"]},
                    {"fractional": [["x"], ["y"], ["z"]]}, null]}
            }
        }
    });
    let contexts: Vec<Value> = (0..1000)
        .map(|i| json!({"targetingKey": format!("user-{i}-{}", i * 7919 % 1000), "email": format!("u{i}@example.com")}))
        .collect();
    let evaluate = ["three-way", "relative", "by-email", "even"];
    let theirs = flagd_variants(&flags, &evaluate, &contexts);

    let set = FlagSet::parse_flagd(&flags.to_string(), "flags.json").expect("valid flags");
    for (f, flag) in evaluate.iter().enumerate() {
        let mut counts = std::collections::BTreeMap::new();
        for (i, ctx) in contexts.iter().enumerate() {
            let ours = set.evaluate(flag, ctx).expect("evaluates");
            assert_eq!(ours.reason, Reason::Split, "{flag} for {ctx}");
            assert_eq!(
                ours.variant, theirs[f][i],
                "flag {flag}, context {ctx}: gantry and flagd-core disagree"
            );
            *counts
                .entry(ours.variant.unwrap_or_default())
                .or_insert(0u32) += 1;
        }
        // Every bucket is used: the comparison is not trivially one variant everywhere.
        assert_eq!(counts.len(), 3, "{flag}: {counts:?}");
    }
}

//! FlagSet behaviour through the public API: flagd parsing, `$ref`, operators, reasons, overrides,
//! ETags and checks.

use gantry_flags::{ErrorCode, FlagSet, Override, Reason, Severity};
use serde_json::{Value, json};

fn set(doc: Value) -> FlagSet {
    match FlagSet::parse_flagd(&doc.to_string(), "flags.json") {
        Ok(s) => s,
        Err(problems) => panic!("unexpected problems: {problems:#?}"),
    }
}

fn flag_with(targeting: Value) -> FlagSet {
    set(json!({"flags": {"f": {
        "state": "ENABLED",
        "variants": {"yes": "Y", "no": "N", "true": "T", "false": "F"},
        "defaultVariant": "no",
        "targeting": targeting
    }}}))
}

fn variant(s: &FlagSet, ctx: Value) -> Option<String> {
    s.evaluate("f", &ctx).expect("evaluates").variant
}

const SAMPLE: &str = r##"{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "metadata": {"team": "web", "version": 3},
  "$evaluators": {
    "is_staff": {"ends_with": [{"var": "email"}, "@example.com"]}
  },
  "flags": {
    "new-ui": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"$ref": "is_staff"}, "on", null]},
      "metadata": {"version": 4}
    },
    "color": {
      "state": "ENABLED",
      "variants": {"red": "#f00", "blue": "#00f", "green": "#0f0"},
      "defaultVariant": "red",
      "targeting": {"fractional": [["red", 25], ["blue", 25], ["green", 50]]}
    },
    "limit": {"state": "DISABLED", "variants": {"low": 10, "high": 1000}, "defaultVariant": "low"},
    "cfg": {"state": "ENABLED", "variants": {"a": {"x": 1}}, "defaultVariant": "a"}
  }
}"##;

#[test]
fn parses_flagd_and_resolves_refs() {
    let s = FlagSet::parse_flagd(SAMPLE, "flags.json").expect("valid");
    // 4 flags + 4 built-in kill switches + the brownout shed share
    assert_eq!(s.len(), 9);
    assert_eq!(
        s.evaluate("brownout_shed_percent", &json!({}))
            .expect("built in")
            .value,
        Some(json!(0))
    );
    assert!(
        s.check_override("brownout_shed_percent", &json!(101))
            .is_err()
    );
    assert!(
        s.check_override("brownout_shed_percent", &json!(30))
            .is_ok()
    );
    let staff = s
        .evaluate("new-ui", &json!({"email": "a@example.com"}))
        .expect("ok");
    assert_eq!(
        (staff.value, staff.variant.as_deref(), staff.reason),
        (Some(json!(true)), Some("on"), Reason::TargetingMatch)
    );
    assert_eq!(
        staff.metadata.get("version"),
        Some(&json!(4)),
        "flag metadata wins over the set's"
    );
    assert_eq!(
        staff.metadata.get("team"),
        Some(&json!("web")),
        "set metadata is inherited"
    );
    let other = s
        .evaluate("new-ui", &json!({"email": "a@else.org"}))
        .expect("ok");
    assert_eq!(
        (other.value, other.reason),
        (Some(json!(false)), Reason::Default)
    );
    let obj = s.evaluate("cfg", &json!({})).expect("ok");
    assert_eq!(
        (obj.value, obj.reason),
        (Some(json!({"x": 1})), Reason::Static)
    );
}

#[test]
fn every_problem_is_reported_with_a_path() {
    let doc = r#"{"$evaluators": {}, "flags": {
        "a": {"state": "ON", "variants": {"x": 1}, "defaultVariant": "x"},
        "b": {"state": "ENABLED", "defaultVariant": "x"},
        "c": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x", "targeting": {"$ref": "nope"}},
        "d": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x", "colour": 1},
        "e": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "y"},
        "f": {"state": "ENABLED", "variants": {"x": 1, "y": "one"}, "defaultVariant": "x"},
        "brownout": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x"}
    }}"#;
    let problems = FlagSet::parse_flagd(doc, "flags.json").expect_err("invalid");
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    // Parse-level and structural problems come in the same run.
    for want in [
        "flags.e.defaultVariant",
        "flags.f.variants.y",
        "flags.brownout",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    for want in [
        "flags.a.state",
        "flags.b.variants",
        "flags.c.targeting.$ref",
        "flags.d.colour",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    // Structural problems come once the document parses.
    let doc = r#"{"flags": {
        "e": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "y"},
        "f": {"state": "ENABLED", "variants": {"x": 1, "y": "one"}, "defaultVariant": "x"},
        "g": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x", "targeting": {"regex": ["a", "b"]}},
        "brownout": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x"}
    }}"#;
    let problems = FlagSet::parse_flagd(doc, "flags.json").expect_err("invalid");
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "flags.e.defaultVariant",
        "flags.f.variants.y",
        "flags.g.targeting.regex",
        "flags.brownout",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    assert!(
        problems
            .iter()
            .all(|p| p.severity == Severity::Error && !p.hint.is_empty())
    );
    let bad = FlagSet::parse_flagd("{\"flags\": {,}}", "flags.json").expect_err("not json");
    assert!(bad[0].message.contains("line 1"), "{}", bad[0]);
}

#[test]
fn disabled_flag_answers_disabled_without_a_value() {
    let s = FlagSet::parse_flagd(SAMPLE, "flags.json").expect("valid");
    let e = s.evaluate("limit", &json!({})).expect("ok");
    assert_eq!(
        (e.value, e.variant, e.reason),
        (None, None, Reason::Disabled)
    );
    assert_eq!(
        s.evaluate("nope", &json!({})).expect_err("missing").code,
        ErrorCode::FlagNotFound
    );
    assert_eq!(
        s.evaluate("cfg", &json!([1])).expect_err("bad ctx").code,
        ErrorCode::InvalidContext
    );
}

#[test]
fn null_default_variant_is_the_code_default() {
    let s = set(
        json!({"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": null}}}),
    );
    let e = s.evaluate("f", &json!({})).expect("ok");
    assert_eq!(
        (e.value, e.variant, e.reason),
        (None, None, Reason::Default)
    );
}

#[test]
fn kill_switches_are_built_in() {
    let s = FlagSet::default();
    for key in ["write_drain", "brownout", "emergency", "safe_mode"] {
        let e = s.evaluate(key, &Value::Null).expect("built in");
        assert_eq!(
            (e.value, e.variant.as_deref()),
            (Some(json!(false)), Some("off"))
        );
        assert_eq!(s.get(key).and_then(|f| f.owner.as_deref()), Some("gantry"));
    }
}

#[test]
fn overrides_are_static_and_typed() {
    let s = FlagSet::parse_flagd(SAMPLE, "flags.json").expect("valid");
    assert!(s.check_override("new-ui", &json!("yes")).is_err());
    assert!(s.check_override("limit", &json!(5)).is_ok());
    assert!(s.check_override("cfg", &json!(true)).is_err());
    assert!(s.check_override("ghost", &json!(true)).is_err());
    let o = s.with_overrides(&[
        Override {
            key: "new-ui".into(),
            value: json!(true),
        },
        Override {
            key: "brownout".into(),
            value: json!(true),
        },
    ]);
    let e = o.evaluate("new-ui", &json!({})).expect("ok");
    assert_eq!(
        (e.value, e.variant.as_deref(), e.reason),
        (Some(json!(true)), Some("override"), Reason::Static)
    );
    assert_eq!(
        o.evaluate("brownout", &json!({})).expect("ok").value,
        Some(json!(true))
    );
    assert_ne!(o.revision(), s.revision());
}

#[test]
fn etag_covers_set_and_context_but_not_key_order() {
    let s = FlagSet::parse_flagd(SAMPLE, "flags.json").expect("valid");
    let a = s.etag(
        &serde_json::from_str(r#"{"targetingKey": "u1", "email": "x", "n": {"b": 1, "a": 2}}"#)
            .expect("json"),
    );
    let b = s.etag(
        &serde_json::from_str(r#"{"n": {"a": 2, "b": 1}, "email": "x", "targetingKey": "u1"}"#)
            .expect("json"),
    );
    assert_eq!(a, b);
    assert!(a.starts_with('"') && a.ends_with('"'));
    assert_ne!(
        a,
        s.etag(&json!({"targetingKey": "u2", "email": "x", "n": {"a": 2, "b": 1}}))
    );
    let other = s.with_overrides(&[Override {
        key: "safe_mode".into(),
        value: json!(true),
    }]);
    assert_ne!(
        a,
        other.etag(&json!({"targetingKey": "u1", "email": "x", "n": {"a": 2, "b": 1}}))
    );
    let reordered = SAMPLE.replace(
        r#""team": "web", "version": 3"#,
        r#""version": 3, "team": "web""#,
    );
    let s2 = FlagSet::parse_flagd(&reordered, "flags.json").expect("valid");
    assert_eq!(s.revision(), s2.revision());
}

#[test]
fn merged_file_wins() {
    let file = FlagSet::parse_flagd(SAMPLE, "flags.json").expect("valid");
    let toml = set(json!({"flags": {
        "new-ui": {"state": "ENABLED", "variants": {"only": true}, "defaultVariant": "only"},
        "toml-only": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a"}
    }}));
    let m = FlagSet::merged(&toml, &file);
    assert_eq!(m.get("new-ui").map(|f| f.variants.len()), Some(2));
    assert!(m.get("toml-only").is_some());
    assert_eq!(m.len(), 10);
}

#[test]
fn operators() {
    let cases = [
        (
            json!({"if": [{"==": [{"var": "n"}, "5"]}, "yes", "no"]}),
            json!({"n": 5}),
            "yes",
        ),
        (
            json!({"if": [{"===": [{"var": "n"}, "5"]}, "yes", "no"]}),
            json!({"n": 5}),
            "no",
        ),
        (
            json!({"if": [{"!=": [{"var": "n"}, 4]}, "yes", "no"]}),
            json!({"n": 5}),
            "yes",
        ),
        (
            json!({"if": [{"!==": [{"var": "n"}, 5]}, "yes", "no"]}),
            json!({"n": 5}),
            "no",
        ),
        (
            json!({"if": [{"<": [1, {"var": "n"}, 10]}, "yes", "no"]}),
            json!({"n": 5}),
            "yes",
        ),
        (
            json!({"if": [{"<=": [5, {"var": "n"}]}, "yes", "no"]}),
            json!({"n": 5}),
            "yes",
        ),
        (
            json!({"if": [{">": [{"var": "n"}, 5]}, "yes", "no"]}),
            json!({"n": 5}),
            "no",
        ),
        (
            json!({"if": [{">=": [{"var": "n"}, 5]}, "yes", "no"]}),
            json!({"n": 5}),
            "yes",
        ),
        (
            json!({"if": [{"!": {"var": "missing"}}, "yes", "no"]}),
            json!({}),
            "yes",
        ),
        (json!({"if": [{"!!": [[]]}, "yes", "no"]}), json!({}), "no"),
        (
            json!({"if": [{"and": [true, {"var": "a"}]}, "yes", "no"]}),
            json!({"a": 1}),
            "yes",
        ),
        (
            json!({"if": [{"or": [false, {"var": "a"}]}, "yes", "no"]}),
            json!({"a": 0}),
            "no",
        ),
        (
            json!({"if": [{"in": [{"var": "c"}, ["de", "fr"]]}, "yes", "no"]}),
            json!({"c": "fr"}),
            "yes",
        ),
        (
            json!({"if": [{"in": ["ell", {"var": "s"}]}, "yes", "no"]}),
            json!({"s": "hello"}),
            "yes",
        ),
        (json!({"cat": ["y", "es"]}), json!({}), "yes"),
        (json!({"substr": ["xyes", 1]}), json!({}), "yes"),
        (json!({"substr": ["noyes", -3]}), json!({}), "yes"),
        (json!({"substr": ["xyesx", 1, 3]}), json!({}), "yes"),
        (json!({"substr": ["xyesxx", 1, -2]}), json!({}), "yes"),
        (json!({"substr": ["yes", -1e300, 1e300]}), json!({}), "yes"),
        (
            json!({"if": [{"==": [{"substr": ["yes", 0, -1e300]}, ""]}, "yes", "no"]}),
            json!({}),
            "yes",
        ),
        (
            json!({"if": [{"in": ["b", {"merge": [["a"], "b"]}]}, "yes", "no"]}),
            json!({}),
            "yes",
        ),
        (
            json!({"if": [{"missing": ["a", "b"]}, "no", "yes"]}),
            json!({"a": 1, "b": 2}),
            "yes",
        ),
        (
            json!({"if": [{"missing_some": [1, ["a", "b"]]}, "no", "yes"]}),
            json!({"b": 2}),
            "yes",
        ),
        (
            json!({"if": [{"some": [{"var": "xs"}, {">": [{"var": ""}, 2]}]}, "yes", "no"]}),
            json!({"xs": [1, 3]}),
            "yes",
        ),
        (
            json!({"if": [{"all": [{"var": "xs"}, {">": [{"var": ""}, 2]}]}, "yes", "no"]}),
            json!({"xs": [1, 3]}),
            "no",
        ),
        (
            json!({"if": [{"none": [{"var": "xs"}, {">": [{"var": ""}, 5]}]}, "yes", "no"]}),
            json!({"xs": [1, 3]}),
            "yes",
        ),
        (
            json!({"if": [{"==": [{"reduce": [{"map": [{"var": "xs"}, {"*": [{"var": ""}, 2]}]}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}, 8]}, "yes", "no"]}),
            json!({"xs": [1, 3]}),
            "yes",
        ),
        (
            json!({"if": [{"==": [{"filter": [{"var": "xs"}, {">": [{"var": ""}, 1]}]}, [3]]}, "no", "yes"]}),
            json!({"xs": [1, 3]}),
            "yes",
        ),
        (
            json!({"if": [{"starts_with": [{"var": "email"}, "admin"]}, "yes", "no"]}),
            json!({"email": "admin@x"}),
            "yes",
        ),
        (
            json!({"if": [{"ends_with": [{"var": "email"}, "@x"]}, "yes", "no"]}),
            json!({"email": "admin@x"}),
            "yes",
        ),
        (
            json!({"if": [{"sem_ver": [{"var": "version"}, ">=", "1.2.0"]}, "yes", "no"]}),
            json!({"version": "1.10.0"}),
            "yes",
        ),
        (
            json!({"if": [{"==": [{"var": "$flagd.flagKey"}, "f"]}, "yes", "no"]}),
            json!({}),
            "yes",
        ),
        (
            json!({"if": [{">": [{"var": "$flagd.timestamp"}, 1_700_000_000]}, "yes", "no"]}),
            json!({}),
            "yes",
        ),
        (
            json!({"if": [{"==": [{"var": "user.plan"}, "pro"]}, "yes", "no"]}),
            json!({"user": {"plan": "pro"}}),
            "yes",
        ),
        (
            json!({"if": [{"==": [{"var": ["plan", "pro"]}, "pro"]}, "yes", "no"]}),
            json!({}),
            "yes",
        ),
        (
            json!({"if": [{"==": [{"%": [7, 4]}, 3]}, "yes", "no"]}),
            json!({}),
            "yes",
        ),
        (
            json!({"if": [{"==": [{"max": [1, 9, 3]}, {"-": [10, 1]}]}, "yes", "no"]}),
            json!({}),
            "yes",
        ),
        (json!({"==": [1, 1]}), json!({}), "true"),
    ];
    for (rule, ctx, want) in cases {
        let s = flag_with(rule.clone());
        assert_eq!(variant(&s, ctx).as_deref(), Some(want), "rule {rule}");
    }
}

#[test]
fn targeting_null_is_default_and_unknown_variant_is_an_error() {
    let s = flag_with(json!({"if": [{"var": "x"}, "yes", null]}));
    let e = s.evaluate("f", &json!({})).expect("ok");
    assert_eq!(
        (e.variant.as_deref(), e.reason),
        (Some("no"), Reason::Default)
    );
    let s = flag_with(json!({"var": "x"}));
    assert_eq!(
        s.evaluate("f", &json!({"x": "typo"}))
            .expect_err("not a variant")
            .code,
        ErrorCode::General
    );
}

#[test]
fn evaluation_is_bounded() {
    let mut rule = json!("yes");
    for _ in 0..40 {
        rule = json!({"if": [true, rule, "no"]});
    }
    let doc = json!({"flags": {"f": {"state": "ENABLED", "variants": {"yes": 1}, "defaultVariant": "yes", "targeting": rule}}});
    let problems = FlagSet::parse_flagd(&doc.to_string(), "flags.json").expect_err("too deep");
    assert!(problems[0].message.contains("deeper"), "{problems:?}");
    let cycle = json!({"$evaluators": {"a": {"!": {"$ref": "a"}}}, "flags": {"f": {"state": "ENABLED", "variants": {"yes": 1}, "defaultVariant": "yes", "targeting": {"$ref": "a"}}}});
    let problems = FlagSet::parse_flagd(&cycle.to_string(), "flags.json").expect_err("cycle");
    assert!(problems[0].message.contains("cycle"), "{problems:?}");
    let xs: Vec<u32> = (0..1000).collect();
    let heavy = json!({"map": [{"var": "xs"}, {"map": [xs, {"+": [1, 1]}]}]});
    let s = flag_with(heavy);
    assert_eq!(
        s.evaluate("f", &json!({"xs": xs}))
            .expect_err("too many steps")
            .code,
        ErrorCode::ParseError
    );
}

#[test]
fn fractional_splits() {
    let s = FlagSet::parse_flagd(SAMPLE, "flags.json").expect("valid");
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..2000 {
        let e = s
            .evaluate("color", &json!({"targetingKey": format!("user-{i}")}))
            .expect("ok");
        assert_eq!(e.reason, Reason::Split);
        *counts.entry(e.variant.unwrap_or_default()).or_insert(0) += 1;
    }
    assert!(
        counts["green"] > 850 && counts["green"] < 1150,
        "{counts:?}"
    );
    assert!(counts["red"] > 380 && counts["red"] < 620, "{counts:?}");
    // Sticky: same key, same bucket.
    let a = s
        .evaluate("color", &json!({"targetingKey": "user-7"}))
        .expect("ok");
    let b = s
        .evaluate("color", &json!({"targetingKey": "user-7", "other": 1}))
        .expect("ok");
    assert_eq!(a.variant, b.variant);
    // No targeting key: flagd gives up on the split and serves the default.
    let e = s.evaluate("color", &json!({})).expect("ok");
    assert_eq!(
        (e.variant.as_deref(), e.reason),
        (Some("red"), Reason::Default)
    );
}

#[test]
fn check_reports_warnings_and_errors() {
    let doc = json!({"flags": {
        "old": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "expires": "2020-01-31"},
        "later": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "expires": "2099-01-31"},
        "split": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "a",
                  "targeting": {"fractional": [["a", 30], ["b", 30]]}},
        "even": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "a",
                  "targeting": {"fractional": [["a"], ["b"]]}}
    }});
    let s = set(doc);
    let problems = s.check((2026, 12, 6));
    let mut warn: Vec<&str> = problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .map(|p| p.path.as_str())
        .collect();
    warn.sort_unstable();
    assert_eq!(
        warn,
        ["flags.old.expires", "flags.split.targeting.fractional"],
        "{problems:#?}"
    );
    assert!(problems.iter().all(|p| p.severity == Severity::Warning));
    let bad = FlagSet::parse_flagd(&json!({"flags": {
        "x": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"fractional": [["zz", 50], ["a", 50]]}},
        "y": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"fractional": [["a", 0.5]]}}
    }}).to_string(), "flags.json").expect_err("bad buckets");
    let paths: Vec<&str> = bad.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "flags.x.targeting.fractional",
            "flags.y.targeting.fractional"
        ],
        "{bad:#?}"
    );
}

#[test]
fn serialises_as_ofrep_spells_it() {
    let s = FlagSet::parse_flagd(SAMPLE, "flags.json").expect("valid");
    let ok = serde_json::to_value(s.evaluate("new-ui", &json!({})).expect("ok")).expect("json");
    assert_eq!(ok["reason"], json!("DEFAULT"));
    assert_eq!(ok["variant"], json!("off"));
    assert_eq!(ok["value"], json!(false));
    let disabled =
        serde_json::to_value(s.evaluate("limit", &json!({})).expect("ok")).expect("json");
    assert_eq!(disabled["reason"], json!("DISABLED"));
    assert!(disabled.get("value").is_none() && disabled.get("variant").is_none());
    let split = serde_json::to_value(
        s.evaluate("color", &json!({"targetingKey": "k"}))
            .expect("ok"),
    )
    .expect("json");
    assert_eq!(split["reason"], json!("SPLIT"));
    let err =
        serde_json::to_value(s.evaluate("ghost", &json!({})).expect_err("missing")).expect("json");
    assert_eq!(
        err,
        json!({"key": "ghost", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "flag `ghost` is not defined"})
    );
    let all = s.evaluate_all(&json!({"targetingKey": "k"}));
    assert_eq!(all.len(), s.len());
    assert_eq!(s.keys().count(), s.len());
}

#[test]
fn hostile_input_never_panics() {
    // Every prefix and many one-character edits of a valid file: problems or a set, never a panic.
    let bytes = SAMPLE.as_bytes();
    let contexts = [
        json!({}),
        json!({"targetingKey": 5, "email": ["x"]}),
        json!({"targetingKey": "", "email": null}),
    ];
    for cut in 0..bytes.len() {
        let _ = FlagSet::parse_flagd(&String::from_utf8_lossy(&bytes[..cut]), "cut.json");
    }
    for i in (0..bytes.len()).step_by(3) {
        for replacement in [b'{', b'[', b'"', b'1', b'-', b'}'] {
            let mut edited = bytes.to_vec();
            edited[i] = replacement;
            if let Ok(s) = FlagSet::parse_flagd(&String::from_utf8_lossy(&edited), "edit.json") {
                for ctx in &contexts {
                    let _ = s.evaluate_all(ctx);
                    let _ = s.check((2026, 1, 1));
                }
            }
        }
    }
}

//! Decoding of `[flags.NAME]` tables and `[settings] flags_file`: values, spans, every problem
//! at once, and the conversion into gantry-flags' model.

use gantry_spec::{Loaded, Severity, Source, decode, parse_date};
use serde_json::json;

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|_| None);
    (source, loaded)
}

/// `severity key line` of each diagnostic.
fn heads(text: &str) -> Vec<String> {
    let (source, loaded) = load(text);
    loaded
        .diagnostics
        .iter()
        .map(|d| {
            let line = d.span.as_ref().map_or(0, |s| source.line_col(s.start).0);
            let sev = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            format!("{sev} {} {line}", d.key.as_deref().unwrap_or("-"))
        })
        .collect()
}

const GOOD: &str = r##"
[settings]
flags_file = "flags.json"

[flags.new-ui]
description = "The new checkout page"
owner = "team-checkout"
type = "bool"
variants = { on = true, off = false }
default = "off"
expires = "2027-03-31"
tags = ["checkout"]

[flags.colour]
variants = { red = "#f00", blue = "#00f", conf = { size = 3, ratio = 0.5 } }
default = "red"
state = "disabled"
"##;

#[test]
fn a_valid_table_decodes_with_its_values() {
    let (source, loaded) = load(GOOD);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let flags = &loaded.spec.flags;
    assert_eq!(
        flags.file.as_ref().map(|f| f.value.as_str()),
        Some("flags.json")
    );
    assert_eq!(flags.defs.len(), 2);
    let ui = &flags.defs[0];
    assert_eq!(ui.name.value, "new-ui");
    assert_eq!(source.line_col(ui.name.span.start).0, 5);
    assert_eq!(ui.owner.as_deref(), Some("team-checkout"));
    assert_eq!(ui.expires.as_ref().map(|e| e.value), Some((2027, 3, 31)));
    assert!(ui.enabled.value);
    let flag = ui.to_flag("gantry.toml");
    assert_eq!(flag.variants.get("on"), Some(&json!(true)));
    assert_eq!(flag.default_variant.as_deref(), Some("off"));
    assert_eq!(flag.expires.as_deref(), Some("2027-03-31"));
    let colour = flags.defs[1].to_flag("gantry.toml");
    assert_eq!(
        colour.variants.get("conf"),
        Some(&json!({"size": 3, "ratio": 0.5}))
    );
    assert_eq!(colour.state, gantry_flags::FlagState::Disabled);
    // The span of a problem path points at the key it names.
    let def = &flags.defs[1];
    assert_eq!(
        source
            .line_col(def.span_of("flags.colour.defaultVariant").start)
            .0,
        16
    );
    assert_eq!(
        source
            .line_col(def.span_of("flags.colour.variants.blue").start)
            .0,
        15
    );
    assert_eq!(source.line_col(def.span_of("flags.colour").start).0, 14);
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let text = r#"
[flags.a]
type = "boolean"
variants = { on = true }
default = "on"
expires = "2027-02-30"

[flags.b]
default = "x"
colour = "red"

[flags.c]
variants = "on"

[flags."bad name!"]
variants = { on = true }
default = "on"
"#;
    assert_eq!(
        heads(text),
        [
            "error flags.a.type 3",
            "error flags.a.expires 6",
            "warning flags.b.colour 10",
            "error flags.b 8",
            "error flags.c.variants 13",
            "error flags.bad name! 15",
        ]
    );
}

#[test]
fn dates_are_checked_against_the_calendar() {
    assert_eq!(parse_date("2028-02-29"), Some((2028, 2, 29)));
    assert_eq!(parse_date("2027-02-29"), None);
    assert_eq!(parse_date("2027-13-01"), None);
    assert_eq!(parse_date("2027-1-01"), None);
    assert_eq!(parse_date("tomorrow"), None);
}

//! Decoding of `start_breaker`: the valid forms, inheritance from `[defaults]`, and every error with its position and hint.

use gantry_spec::{Diagnostic, Dur, Loaded, Severity, Source, StartBreaker, decode};
use std::time::Duration;

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|_| None);
    (source, loaded)
}

fn breaker(loaded: &Loaded, service: &str) -> Option<StartBreaker> {
    loaded
        .spec
        .services
        .iter()
        .find(|s| s.name.value == service)
        .unwrap_or_else(|| panic!("no service {service}"))
        .start_breaker
}

fn sb(failures: u32, cooldown_ms: u64) -> StartBreaker {
    StartBreaker {
        failures,
        cooldown: Dur(Duration::from_millis(cooldown_ms)),
    }
}

/// `code key line:col` of each diagnostic, for compact assertions.
fn summary(source: &Source, d: &Diagnostic) -> String {
    let (line, col) = d.span.as_ref().map_or((0, 0), |s| source.line_col(s.start));
    format!(
        "{} {} {}:{line}:{col}",
        match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        d.code,
        d.key.as_deref().unwrap_or("-"),
    )
}

#[test]
fn absent_means_no_breaker() {
    let (_, loaded) = load("[services.a]\ncommand = \"x\"\n");
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(breaker(&loaded, "a"), None);
    assert_eq!(loaded.spec.defaults.start_breaker, None);
}

#[test]
fn valid_tables_decode_with_defaults_for_missing_keys() {
    let (_, loaded) = load(
        r#"
[services.full]
command = "x"
retry = { attempts = 10 }
start_breaker = { failures = 2, cooldown = "1m30s" }

[services.partial]
command = "x"
retry = { attempts = 10 }
start_breaker = { cooldown = "250ms" }

[services.empty]
command = "x"
retry = { attempts = 10 }

[services.empty.start_breaker]
"#,
    );
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(breaker(&loaded, "full"), Some(sb(2, 90_000)));
    assert_eq!(breaker(&loaded, "partial"), Some(sb(3, 250)));
    assert_eq!(breaker(&loaded, "empty"), Some(sb(3, 30_000)));
    assert_eq!(StartBreaker::default(), sb(3, 30_000));
}

#[test]
fn inherited_from_defaults_unless_the_service_sets_its_own() {
    let (_, loaded) = load(
        r#"
[defaults]
retry = { attempts = 5 }
start_breaker = { failures = 2, cooldown = "10s" }

[services.inherits]
command = "x"

[services.own]
command = "x"
start_breaker = { failures = 4, cooldown = "1s" }
"#,
    );
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.spec.defaults.start_breaker, Some(sb(2, 10_000)));
    assert_eq!(breaker(&loaded, "inherits"), Some(sb(2, 10_000)));
    // The whole table is replaced, not merged key by key (like retry and start_limit).
    assert_eq!(breaker(&loaded, "own"), Some(sb(4, 1_000)));
}

#[test]
fn wrong_types_are_errors_with_position_and_hint() {
    let text = r#"
[services.a]
command = "x"
start_breaker = 3

[services.b]
command = "x"
retry = { attempts = 10 }
start_breaker = { failures = "3", cooldown = 30 }

[services.c]
command = "x"
retry = { attempts = 10 }
start_breaker = { cooldown = true }
"#;
    let (source, loaded) = load(text);
    let got: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| summary(&source, d))
        .collect();
    assert_eq!(
        got,
        [
            "error wrong-type services.a.start_breaker:4:17",
            "error wrong-type services.b.start_breaker.failures:9:30",
            "error bad-duration services.b.start_breaker.cooldown:9:46",
            "error wrong-type services.c.start_breaker.cooldown:14:30",
        ]
    );
    let d = &loaded.diagnostics;
    assert_eq!(d[0].message, "expected a table, found an integer");
    assert_eq!(d[1].message, "expected an integer, found a string");
    assert_eq!(d[2].message, "a duration needs a unit");
    assert!(d.iter().all(|d| d.hint.is_some()), "{d:?}");
    assert!(d[2].hint.as_deref().unwrap().contains("\"5s\""), "{d:?}");
    // Not a table: no breaker. A bad value inside: the breaker stays, with that key's default.
    assert_eq!(breaker(&loaded, "a"), None);
    assert_eq!(breaker(&loaded, "b"), Some(sb(3, 30_000)));
}

#[test]
fn out_of_range_values_are_errors() {
    let text = r#"
[defaults]
start_breaker = { failures = 0 }

[services.a]
command = "x"
retry = { attempts = 10 }
start_breaker = { failures = 1001, cooldown = "0s" }

[services.b]
command = "x"
retry = { attempts = 10 }
start_breaker = { failures = -1, cooldown = "5 parsecs" }
"#;
    let (source, loaded) = load(text);
    let got: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| summary(&source, d))
        .collect();
    assert_eq!(
        got,
        [
            "error out-of-range defaults.start_breaker.failures:3:30",
            "error out-of-range services.a.start_breaker.failures:8:30",
            "error out-of-range services.a.start_breaker.cooldown:8:47",
            "error out-of-range services.b.start_breaker.failures:13:30",
            "error bad-duration services.b.start_breaker.cooldown:13:45",
        ]
    );
    let d = &loaded.diagnostics;
    assert_eq!(
        d[0].message,
        "value out of range: must be between 1 and 1000"
    );
    assert_eq!(d[2].message, "cooldown must be greater than zero");
    assert!(
        d[2].hint.as_deref().unwrap().contains("at least 1ms"),
        "{d:?}"
    );
    assert!(d[4].message.starts_with("invalid duration"), "{d:?}");
    assert!(loaded.has_errors());
}

#[test]
fn unknown_keys_in_the_table_are_warnings_with_a_suggestion() {
    let (source, loaded) = load(
        r#"
[services.a]
command = "x"
retry = { attempts = 10 }
start_breaker = { failure = 2, cooldown = "1s" }
"#,
    );
    let got: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| summary(&source, d))
        .collect();
    assert_eq!(
        got,
        ["warning unknown-key services.a.start_breaker.failure:5:19"]
    );
    assert_eq!(
        loaded.diagnostics[0].hint.as_deref(),
        Some("did you mean `failures`?")
    );
    assert!(!loaded.has_errors());
    assert_eq!(breaker(&loaded, "a"), Some(sb(3, 1_000)));
}

#[test]
fn a_breaker_that_cannot_open_before_the_retries_run_out_is_a_warning() {
    let text = r#"
[defaults]
start_breaker = { failures = 2, cooldown = "1s" }

[services.no_retry]
command = "x"

[services.equal]
command = "x"
retry = { attempts = 3 }
start_breaker = { failures = 3, cooldown = "1s" }

[services.fine]
command = "x"
retry = { attempts = 3 }
"#;
    let (source, loaded) = load(text);
    let got: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| summary(&source, d))
        .collect();
    assert_eq!(
        got,
        [
            // Inherited: points at the service, whose key names it.
            "warning out-of-range services.no_retry.start_breaker:5:11",
            "warning out-of-range services.equal.start_breaker:11:17",
        ]
    );
    assert_eq!(
        loaded.diagnostics[1].message,
        "the start breaker never opens: it needs 3 failed attempts, retry allows 3"
    );
    assert!(!loaded.has_errors());
}

#[test]
fn rendered_diagnostics() {
    let text = r#"[services.api]
command = "api"
retry = { attempts = 10 }
start_breaker = { failures = 0, cooldown = "0ms" }

[services.worker]
command = "worker"
start_breaker = { failures = 2, cooldown = 5 }
"#;
    let (source, loaded) = load(text);
    let rendered: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| d.render(&source))
        .collect();
    insta::assert_snapshot!(rendered.join("\n\n"));
}

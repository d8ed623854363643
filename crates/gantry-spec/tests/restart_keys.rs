//! Decoding of `healthy_after` and `start_grace`: defaults, inheritance from `[defaults]`, per-service overrides, and a bad value's error with its position.

use gantry_spec::{Loaded, Source, decode, keys};
use std::time::Duration;

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|_| None);
    (source, loaded)
}

fn times(loaded: &Loaded, service: &str) -> (Duration, Duration) {
    let s = loaded
        .spec
        .services
        .iter()
        .find(|s| s.name.value == service)
        .unwrap_or_else(|| panic!("no service {service}"));
    (s.healthy_after.0, s.start_grace.0)
}

#[test]
fn defaults_then_the_defaults_table_then_the_service() {
    let (_, plain) = load("[services.a]\ncommand = \"a\"\n");
    assert!(!plain.has_errors(), "{:?}", plain.diagnostics);
    assert_eq!(times(&plain, "a"), (keys::HEALTHY_AFTER, keys::START_GRACE));
    assert_eq!(keys::HEALTHY_AFTER, Duration::from_secs(1));
    assert_eq!(keys::START_GRACE, Duration::from_millis(250));

    let (_, loaded) = load(
        r#"
[defaults]
healthy_after = "5s"
start_grace = "1s"

[services.a]
command = "a"

[services.b]
command = "b"
healthy_after = "200ms"
start_grace = "0s"
"#,
    );
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(
        times(&loaded, "a"),
        (Duration::from_secs(5), Duration::from_secs(1))
    );
    assert_eq!(
        times(&loaded, "b"),
        (Duration::from_millis(200), Duration::ZERO)
    );
}

#[test]
fn a_bad_duration_is_an_error_at_its_key() {
    let (source, loaded) = load("[services.a]\ncommand = \"a\"\nstart_grace = \"soon\"\n");
    assert!(loaded.has_errors());
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.key.as_deref() == Some("services.a.start_grace"))
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    let (line, _) = source.line_col(d.span.as_ref().unwrap().start);
    assert_eq!(line, 3);
}

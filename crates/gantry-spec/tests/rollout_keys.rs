//! Decoding of `[services.NAME.rollout]`: the strategy and analysis defaults, `${PORT}` kept in
//! the check URL of a replicated service, and each bad value reported at its key.

use gantry_spec::{Loaded, RolloutStrategy, Severity, Source, decode};
use std::time::Duration;

fn load(text: &str) -> Loaded {
    decode(&Source::new("gantry.toml", text), &|_| None)
}

#[test]
fn a_blue_green_table_decodes_with_its_values() {
    let loaded = load(
        r#"
[services.api]
command = "app --port ${PORT}"
replicas = 2
replica_ports = "9100-9101"
rollout = { strategy = "blue_green", interval = "30s", max_error_rate = "2.5%", max_p99 = "250ms", min_requests = 20, check = "http://127.0.0.1:${PORT}/smoke" }

[services.web]
command = "web"
rollout = { steps = [5, 50, 100] }
"#,
    );
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let r = loaded.spec.services[0].rollout.clone().unwrap();
    assert_eq!(r.strategy, RolloutStrategy::BlueGreen);
    assert_eq!(r.interval.unwrap().0, Duration::from_secs(30));
    assert!((r.max_error_ratio.unwrap() - 0.025).abs() < 1e-9);
    assert_eq!(r.max_p99.unwrap().0, Duration::from_millis(250));
    assert_eq!(r.min_requests, Some(20));
    assert_eq!(r.check.as_deref(), Some("http://127.0.0.1:${PORT}/smoke"));
    let w = loaded.spec.services[1].rollout.clone().unwrap();
    assert_eq!(w.strategy, RolloutStrategy::Canary);
    assert_eq!(w.steps, Some(vec![5, 50, 100]));
}

#[test]
fn bad_values_are_errors_at_their_key_and_unknown_keys_warn() {
    let loaded = load(
        r#"
[services.api]
command = "app"
rollout = { strategy = "bluegreen", steps = [50, 10], max_error_rate = "0.01", check = "127.0.0.1/x", intervall = "1s" }
"#,
    );
    let keys: Vec<(Severity, String)> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.key.clone().unwrap_or_default()))
        .collect();
    for key in ["strategy", "steps", "max_error_rate", "check"] {
        assert!(
            keys.contains(&(Severity::Error, format!("services.api.rollout.{key}"))),
            "{key}: {keys:?}"
        );
    }
    assert!(
        keys.contains(&(Severity::Warning, "services.api.rollout.intervall".into())),
        "{keys:?}"
    );
    let strategy = loaded
        .diagnostics
        .iter()
        .find(|d| d.key.as_deref() == Some("services.api.rollout.strategy"))
        .unwrap();
    assert!(
        strategy
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("blue_green"),
        "{strategy:?}"
    );
}

//! Decoding of a probe's `watchdog`: a notify liveness probe's keep-alive interval; anywhere else a warning, and its absence on a notify liveness probe a warning too.

mod support;

use gantry_spec::{Dur, Loaded, Source, decode};
use std::time::Duration;

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|_| None);
    (source, loaded)
}

/// `severity code key line:col: message` of each diagnostic of a service `a` with `probes`.
fn problems(probes: &str) -> Vec<String> {
    let (source, loaded) = load(&format!("[services.a]\ncommand = \"x\"\n{probes}\n"));
    support::problems_of(&source, &loaded)
        .into_iter()
        .map(|p| format!("{}: {}", p.head, p.message))
        .collect()
}

fn watchdog(probes: &str) -> Option<Dur> {
    let (_, loaded) = load(&format!("[services.a]\ncommand = \"x\"\n{probes}\n"));
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.spec.services[0]
        .liveness
        .as_ref()
        .and_then(|p| p.watchdog)
}

#[test]
fn a_notify_liveness_probe_takes_a_watchdog_interval() {
    let text = "liveness = { notify = true, watchdog = \"1500ms\", failure_threshold = 1 }";
    assert_eq!(watchdog(text), Some(Dur(Duration::from_millis(1500))));
    assert!(problems(text).is_empty(), "{:#?}", problems(text));
}

#[test]
fn a_notify_liveness_probe_without_a_watchdog_is_a_warning() {
    assert_eq!(
        problems("liveness = { notify = true }"),
        [
            "warning no-watchdog services.a.liveness 3:12: a notify liveness probe without `watchdog` can never fail: any READY=1 or WATCHDOG=1 passes it and silence goes unnoticed"
        ]
    );
    assert_eq!(watchdog("liveness = { notify = true }"), None);
    // Readiness by notify needs none: READY=1 once is the whole protocol.
    assert!(problems("readiness = { notify = true }").is_empty());
}

#[test]
fn a_watchdog_anywhere_else_is_ignored_with_a_warning() {
    assert_eq!(
        problems("readiness = { notify = true, watchdog = \"5s\" }"),
        [
            "warning ignored-key services.a.readiness.watchdog 3:41: `watchdog` applies to a notify liveness probe only; ignored here"
        ]
    );
    assert_eq!(
        problems("liveness = { tcp = \"127.0.0.1:1\", watchdog = \"5s\" }"),
        [
            "warning ignored-key services.a.liveness.watchdog 3:46: `watchdog` applies to a notify liveness probe only; ignored here"
        ]
    );
    assert_eq!(
        watchdog("liveness = { tcp = \"127.0.0.1:1\", watchdog = \"5s\" }"),
        None
    );
}

#[test]
fn a_zero_or_malformed_watchdog_is_an_error() {
    assert_eq!(
        problems("liveness = { notify = true, watchdog = \"0s\" }"),
        [
            "error out-of-range services.a.liveness.watchdog 3:40: watchdog must be greater than zero"
        ]
    );
    let found = problems("liveness = { notify = true, watchdog = 10 }");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("error bad-duration services.a.liveness.watchdog 3:40"),
        "{found:#?}"
    );
}

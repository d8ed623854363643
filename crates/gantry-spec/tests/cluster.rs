//! Decoding of `[cluster]`: defaults, a missing or non-postgres store, the lease's range, names; the password never in a diagnostic.

use gantry_spec::{Loaded, Source, decode};
use std::time::Duration;

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|_| None);
    (source, loaded)
}

const SVC: &str = "[services.a]\ncommand = \"true\"\n";

#[test]
fn defaults_and_set_keys() {
    let (_, l) = load(&format!(
        "[cluster]\nstore = \"postgres://u:pw@db:5432/x\"\n{SVC}"
    ));
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let c = l.spec.cluster.expect("[cluster]");
    assert_eq!(c.store.value, "postgres://u:pw@db:5432/x");
    assert_eq!(c.cluster, "gantry");
    assert_eq!(c.name, None);
    assert_eq!(c.lease.0, Duration::from_secs(5));
    let (_, l) = load(&format!(
        "[cluster]\nstore = \"postgresql://db/x\"\nname = \"web-1\"\ncluster = \"shop\"\nlease = \"2s\"\n{SVC}"
    ));
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let c = l.spec.cluster.unwrap();
    assert_eq!(
        (c.name.as_deref(), c.cluster.as_str(), c.lease.0),
        (Some("web-1"), "shop", Duration::from_secs(2))
    );
    let (_, l) = load(SVC);
    assert!(l.spec.cluster.is_none());
}

#[test]
fn every_problem_is_reported_with_a_hint_and_no_password() {
    let (source, l) = load(&format!(
        "[cluster]\nstore = \"mysql://u:hunter2@db/x\"\nlease = \"10ms\"\nname = \"\"\nleese = \"1s\"\n{SVC}"
    ));
    let rendered: Vec<String> = l.diagnostics.iter().map(|d| d.render(&source)).collect();
    let codes: Vec<&str> = l.diagnostics.iter().map(|d| d.code).collect();
    assert!(codes.contains(&"invalid-value"), "{rendered:#?}");
    assert!(codes.contains(&"out-of-range"), "{rendered:#?}");
    assert_eq!(codes.iter().filter(|c| **c == "invalid-value").count(), 2);
    assert!(
        rendered.iter().any(|r| r.contains("leese")),
        "unknown key warned: {rendered:#?}"
    );
    for r in &rendered {
        assert!(r.contains("hint: "), "{r}");
    }
    // The diagnostic about the store masks its password (the source line itself is the user's).
    let store = l
        .diagnostics
        .iter()
        .find(|d| d.key.as_deref() == Some("cluster.store"))
        .unwrap();
    assert!(!store.message.contains("hunter2"), "{}", store.message);
    assert!(l.spec.cluster.is_none(), "no usable store: no cluster");
    let (_, l) = load(&format!("[cluster]\nlease = \"5s\"\n{SVC}"));
    assert_eq!(l.diagnostics.len(), 1, "{:#?}", l.diagnostics);
    assert_eq!(l.diagnostics[0].code, "missing-key");
}

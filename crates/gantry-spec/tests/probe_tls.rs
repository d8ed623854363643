//! The TLS keys of a probe table: decoded into `TlsOptions`, a client certificate needs both files, and `insecure_skip_verify` or a key with no effect is a warning with its position.

use gantry_spec::{ProbeKind, Source, TlsOptions, decode};

fn load(probe: &str) -> gantry_spec::Loaded {
    let text = format!("[services.api]\ncommand = \"x\"\nreadiness = {probe}\n");
    let source = Source::new("gantry.toml", &text);
    decode(&source, &|_| None)
}

fn messages(loaded: &gantry_spec::Loaded, errors: bool) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() == errors)
        .map(|d| format!("{} {}", d.key.as_deref().unwrap_or(""), d.message))
        .collect()
}

fn readiness(loaded: &gantry_spec::Loaded) -> &ProbeKind {
    &loaded.spec.services[0]
        .readiness
        .as_ref()
        .expect("a readiness probe")
        .kind
}

#[test]
fn https_probe_keys_are_decoded() {
    let l = load(
        r#"{ http = "https://127.0.0.1:8443/health", ca_file = "certs/ca.pem", cert_file = "c.pem", key_file = "c.key" }"#,
    );
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let ProbeKind::Http { tls, .. } = readiness(&l) else {
        panic!("an http probe");
    };
    assert_eq!(
        tls,
        &TlsOptions {
            ca_file: Some("certs/ca.pem".into()),
            cert_file: Some("c.pem".into()),
            key_file: Some("c.key".into()),
            insecure_skip_verify: false,
        }
    );
}

#[test]
fn store_probes_take_the_tls_keys_too() {
    let l =
        load(r#"{ postgres = "postgres://app@db/app?sslmode=verify-full", ca_file = "ca.pem" }"#);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let ProbeKind::Postgres(p) = readiness(&l) else {
        panic!("a postgres probe");
    };
    assert_eq!(p.tls.ca_file.as_deref(), Some("ca.pem"));
}

#[test]
fn a_client_certificate_needs_both_files() {
    let l = load(r#"{ http = "https://h/", cert_file = "c.pem" }"#);
    assert_eq!(
        messages(&l, true),
        [
            "services.api.readiness.cert_file `cert_file` without `key_file`: a client certificate needs both"
        ]
    );
    let l = load(r#"{ redis = "rediss://h:6380", key_file = "c.key" }"#);
    assert_eq!(messages(&l, true).len(), 1, "{:?}", l.diagnostics);
    let l = load(r#"{ http = "https://h/", ca_file = "" }"#);
    assert_eq!(
        messages(&l, true),
        ["services.api.readiness.ca_file `ca_file` is empty"]
    );
}

#[test]
fn insecure_skip_verify_is_a_warning_with_what_to_do() {
    let l = load(r#"{ http = "https://h/", insecure_skip_verify = true }"#);
    assert!(!l.has_errors());
    let w = &l.diagnostics[0];
    assert_eq!(
        w.key.as_deref(),
        Some("services.api.readiness.insecure_skip_verify")
    );
    assert!(w.message.contains("not checked"), "{}", w.message);
    assert!(w.hint.as_deref().unwrap_or("").contains("ca_file"), "{w:?}");
    assert_eq!(w.span.as_ref().map(|s| s.start > 0), Some(true));
    // false says nothing.
    let l = load(r#"{ http = "https://h/", insecure_skip_verify = false }"#);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
}

#[test]
fn tls_keys_without_effect_are_warnings() {
    let l = load(r#"{ tcp = "127.0.0.1:5432", ca_file = "ca.pem" }"#);
    assert_eq!(
        messages(&l, false),
        ["services.api.readiness.ca_file `ca_file` has no effect on a tcp probe (ignored)"]
    );
    let l = load(r#"{ http = "http://127.0.0.1/", ca_file = "ca.pem" }"#);
    assert_eq!(
        messages(&l, false),
        [
            "services.api.readiness.http TLS keys have no effect: `http://127.0.0.1/` is not an https:// URL"
        ]
    );
}

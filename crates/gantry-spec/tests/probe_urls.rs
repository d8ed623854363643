//! http probe URLs: a port outside 1–65535 or a missing host is an error with its position, not a probe that fails at every run.

use gantry_spec::{Source, decode};

fn errors(url: &str) -> Vec<String> {
    let text = format!("[services.api]\ncommand = \"x\"\nreadiness = {{ http = \"{url}\" }}\n");
    let source = Source::new("gantry.toml", &text);
    let loaded = decode(&source, &|_| None);
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} {}", d.key.as_deref().unwrap_or(""), d.message))
        .collect()
}

#[test]
fn out_of_range_ports_and_missing_hosts_are_rejected() {
    let e = errors("http://127.0.0.1:99999/");
    assert_eq!(
        e,
        [
            "services.api.readiness.http `http://127.0.0.1:99999/`: port `99999` is not a number from 1 to 65535"
        ]
    );
    assert_eq!(errors("http://127.0.0.1:0/").len(), 1);
    assert_eq!(errors("http://127.0.0.1:80x/").len(), 1);
    assert_eq!(errors("http:///health").len(), 1);
    assert_eq!(errors("http://[::1/health").len(), 1);
}

#[test]
fn valid_urls_pass() {
    for ok in [
        "http://127.0.0.1:8000/health",
        "http://localhost/health?x=1",
        "https://user:pw@db.example:443/",
        "http://[::1]:8080/",
        "http://[::1]/",
    ] {
        assert!(errors(ok).is_empty(), "{ok}: {:?}", errors(ok));
    }
}

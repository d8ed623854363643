//! Decoding of `[alerts]` and `[slo.NAME]`: every problem with file:line and a hint.

use gantry_spec::{Loaded, Severity, Source, decode};

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|_| None);
    (source, loaded)
}

fn heads(text: &str) -> Vec<String> {
    let (source, loaded) = load(text);
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            let (line, _) = source.line_col(d.span.as_ref().expect("a position").start);
            assert!(
                d.render(&source).contains("hint: "),
                "{}",
                d.render(&source)
            );
            format!("{} {} {line}", d.code, d.key.as_deref().unwrap_or("-"))
        })
        .collect()
}

const STACK: &str = r#"
[services.api]
command = "api"
upstream = "127.0.0.1:9000"

[ingress]
listen = "127.0.0.1:8080"

[[ingress.routes]]
path = "/api"
service = "api"
"#;

#[test]
fn alerts_and_slos_decode_and_their_mistakes_are_named() {
    let good = format!(
        "{STACK}\n[alerts]\nwebhook = \"http://127.0.0.1:9093/hook\"\ndisabled = [\"disk_low\"]\nrepeat_interval = \"1h\"\n\n[slo.api]\nroute = \"/api\"\navailability = \"99.9%\"\n"
    );
    let (_, loaded) = load(&good);
    assert!(
        loaded
            .diagnostics
            .iter()
            .all(|d| d.severity != Severity::Error),
        "{:#?}",
        loaded.diagnostics
    );
    let a = loaded.spec.alerts.as_ref().unwrap();
    assert_eq!(a.disabled[0].value, "disk_low");
    assert!(a.log);
    assert_eq!(loaded.spec.slos.len(), 1);
    assert!((loaded.spec.slos[0].availability - 99.9).abs() < 1e-9);
    assert_eq!(loaded.spec.slos[0].min_requests, 100);
    // No window: 30 days.
    assert_eq!(
        loaded.spec.slos[0].window.0,
        std::time::Duration::from_secs(30 * 86_400)
    );

    let bad = format!(
        "{STACK}\n[alerts]\nwebhook = \"ftp://x\"\ndisabled = [\"crashloop\"]\n\n[slo.api]\nroute = \"/apj\"\navailability = \"99.9%\"\n\n[slo.web]\nroute = \"/api\"\navailability = \"100%\"\n"
    );
    assert_eq!(
        heads(&bad),
        [
            "invalid-value alerts.webhook 14",
            "unknown-name alerts.disabled 15",
            "unknown-name slo.api.route 18",
            "missing-key slo.web 21",
        ]
    );
    let (source, loaded) = load(&bad);
    let text: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| d.render(&source))
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("did you mean `crash_loop`?")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|t| t.contains("did you mean `/api`?")),
        "{text:#?}"
    );
}

/// `[slo.NAME] window`: any duration from 1h to 90d; one outside, or not a duration, is an error at
/// its line with what to write.
#[test]
fn an_slo_window_is_read_and_a_bad_one_is_named_at_its_line() {
    let slo = |window: &str| {
        format!(
            "{STACK}\n[slo.api]\nroute = \"/api\"\navailability = \"99.9%\"\nwindow = {window}\n"
        )
    };
    for (text, secs) in [
        ("\"7d\"", 7 * 86_400),
        ("\"1h\"", 3_600),
        ("\"90d\"", 90 * 86_400),
        ("\"36h\"", 36 * 3_600),
    ] {
        let (_, loaded) = load(&slo(text));
        assert!(
            loaded
                .diagnostics
                .iter()
                .all(|d| d.severity != Severity::Error),
            "{text}: {:#?}",
            loaded.diagnostics
        );
        assert_eq!(
            loaded.spec.slos[0].window.0,
            std::time::Duration::from_secs(secs),
            "{text}"
        );
    }
    // The window is on line 16 of the file.
    for (text, code) in [
        ("\"59m\"", "out-of-range"),
        ("\"91d\"", "out-of-range"),
        ("\"a month\"", "bad-duration"),
        ("30", "bad-duration"),
    ] {
        assert_eq!(
            heads(&slo(text)),
            [format!("{code} slo.api.window 16")],
            "{text}"
        );
    }
    let (source, loaded) = load(&slo("\"91d\""));
    let shown = loaded.diagnostics[0].render(&source);
    assert!(shown.contains("between 1h and 90d"), "{shown}");
    assert!(shown.contains("gantry.toml:16:"), "{shown}");
}

//! Decoding of `[settings] retention` and of a service's own `logs` rotation (over `[defaults]` and `[settings]`, key by key).

mod support;

use gantry_spec::{Dur, Loaded, LogRotation, Retention, Source, decode};
use std::time::Duration;

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|_| None);
    (source, loaded)
}

fn clean(text: &str) -> Loaded {
    let (_, loaded) = load(text);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded
}

/// `severity code key line:col` of each diagnostic.
fn heads(text: &str) -> Vec<String> {
    let (source, loaded) = load(text);
    support::problems_of(&source, &loaded)
        .into_iter()
        .map(|p| p.head)
        .collect()
}

fn days(n: u64) -> Dur {
    Dur(Duration::from_secs(n * 86_400))
}

#[test]
fn retention_defaults_to_a_hundred_boots_and_thirty_days_of_resolved_missions() {
    let want = Retention {
        boots: 100,
        missions: days(30),
    };
    assert_eq!(Retention::default(), want);
    assert_eq!(clean("").spec.settings.retention, want);
    assert_eq!(
        clean("[settings]\nretention = {}\n")
            .spec
            .settings
            .retention,
        want
    );
}

#[test]
fn retention_keys_are_read() {
    let spec = clean("[settings]\nretention = { boots = 5, missions = \"12h\" }\n").spec;
    assert_eq!(
        spec.settings.retention,
        Retention {
            boots: 5,
            missions: Dur(Duration::from_secs(12 * 3600)),
        }
    );
    let spec = clean("[settings.retention]\nmissions = \"7d\"\n").spec;
    assert_eq!(spec.settings.retention.missions, days(7));
    assert_eq!(spec.settings.retention.boots, 100);
}

#[test]
fn bad_retention_values_are_errors_at_the_value_and_keep_the_default() {
    let text = "[settings]\nretention = { boots = 0, missions = \"soon\", keep = 3 }\n";
    assert_eq!(
        heads(text),
        [
            "warning unknown-key settings.retention.keep 2:45",
            "error out-of-range settings.retention.boots 2:23",
            "error bad-duration settings.retention.missions 2:37",
        ]
    );
    let (_, loaded) = load(text);
    assert_eq!(loaded.spec.settings.retention, Retention::default());
    assert_eq!(
        heads("[settings]\nretention = 100\n"),
        ["error wrong-type settings.retention 2:13"]
    );
}

#[test]
fn a_service_rotation_refines_defaults_and_settings_key_by_key() {
    let spec = clean(
        r#"
[settings]
logs = { max_size = "1MiB", keep = 5 }

[defaults]
logs = { keep = 2 }

[services.plain]
command = "x"

[services.big]
command = "x"
logs = { max_size = "64MiB" }

[services.own]
command = "x"
logs = { max_size = "8KiB", keep = 0 }
"#,
    )
    .spec;
    let rotation = |name: &str| {
        spec.services
            .iter()
            .find(|s| s.name.value == name)
            .unwrap()
            .logs
    };
    assert_eq!(
        rotation("plain"),
        LogRotation {
            max_size: 1 << 20,
            keep: 2
        }
    );
    assert_eq!(
        rotation("big"),
        LogRotation {
            max_size: 64 << 20,
            keep: 2
        }
    );
    assert_eq!(
        rotation("own"),
        LogRotation {
            max_size: 8 << 10,
            keep: 0
        }
    );
    assert_eq!(
        spec.defaults.logs,
        Some(LogRotation {
            max_size: 1 << 20,
            keep: 2
        })
    );
}

#[test]
fn without_service_or_defaults_rotation_a_service_uses_settings() {
    let spec = clean("[settings]\nlogs = { keep = 9 }\n[services.a]\ncommand = \"x\"\n").spec;
    assert_eq!(
        spec.services[0].logs,
        LogRotation {
            max_size: 10 << 20,
            keep: 9
        }
    );
    let spec = clean("[services.a]\ncommand = \"x\"\n").spec;
    assert_eq!(spec.services[0].logs, LogRotation::default());
}

#[test]
fn a_bad_service_rotation_is_reported_at_its_key() {
    assert_eq!(
        heads("[services.a]\ncommand = \"x\"\nlogs = { max_size = \"1KiB\", kept = 1 }\n"),
        [
            "warning unknown-key services.a.logs.kept 3:29",
            "error out-of-range services.a.logs.max_size 3:21",
        ]
    );
    assert_eq!(
        heads("[defaults]\nlogs = { keep = -1 }\n"),
        ["error out-of-range defaults.logs.keep 2:17"]
    );
}

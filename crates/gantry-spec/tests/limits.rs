//! Decoding of `memory_max` and `cpu_max`: the valid forms, inheritance from `[defaults]`, and every error with its position and hint.

mod support;

use gantry_spec::{Limits, Loaded, MilliCpus, Severity, Source, decode};

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|name| (name == "CPU").then(|| "25%".into()));
    (source, loaded)
}

/// The limits of each service, in file order; the file must decode without a diagnostic.
fn limits(text: &str) -> Vec<Limits> {
    let (_, loaded) = load(text);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.spec.services.iter().map(|s| s.limits).collect()
}

fn lim(memory_max: Option<u64>, cpu_max: Option<u32>) -> Limits {
    Limits {
        memory_max,
        cpu_max: cpu_max.map(MilliCpus),
    }
}

#[test]
fn sizes_and_cpu_shares_in_every_form() {
    let cases = [
        ("memory_max = \"64MiB\"", lim(Some(64 << 20), None)),
        ("memory_max = 1048576", lim(Some(1 << 20), None)),
        ("memory_max = \"1.5GiB\"", lim(Some(3 << 29), None)),
        ("cpu_max = 0.2", lim(None, Some(200))),
        ("cpu_max = 2", lim(None, Some(2000))),
        ("cpu_max = \"50%\"", lim(None, Some(500))),
        ("cpu_max = \"0.5\"", lim(None, Some(500))),
        ("cpu_max = \"${CPU}\"", lim(None, Some(250))),
        (
            "memory_max = \"256MiB\"\ncpu_max = 1.5",
            lim(Some(256 << 20), Some(1500)),
        ),
        ("", lim(None, None)),
    ];
    for (keys, want) in cases {
        let text = format!("[services.a]\ncommand = \"true\"\n{keys}\n");
        assert_eq!(limits(&text), [want], "{keys}");
    }
}

#[test]
fn defaults_give_each_limit_a_service_does_not_set_itself() {
    let text = r#"
[defaults]
memory_max = "128MiB"
cpu_max = 0.5

[services.plain]
command = "true"

[services.own_memory]
command = "true"
memory_max = "1GiB"

[services.own_cpu]
command = "true"
cpu_max = "10%"
"#;
    assert_eq!(
        limits(text),
        [
            lim(Some(128 << 20), Some(500)),
            lim(Some(1 << 30), Some(500)),
            lim(Some(128 << 20), Some(100)),
        ]
    );
}

#[test]
fn limits_display_as_written() {
    assert_eq!(
        lim(Some(64 << 20), Some(200)).to_string(),
        "memory_max 64MiB, cpu_max 0.2 CPU"
    );
    assert_eq!(lim(None, Some(2000)).to_string(), "cpu_max 2 CPUs");
    assert!(lim(None, None).is_empty());
}

/// `severity code key line:col` and `message / hint` of each diagnostic.
fn problems(keys: &str) -> Vec<(String, String)> {
    let (source, loaded) = load(&format!("[services.a]\ncommand = \"true\"\n{keys}\n"));
    support::problems_of(&source, &loaded)
        .into_iter()
        .map(|p| (p.head.clone(), p.text()))
        .collect()
}

#[track_caller]
fn one_problem(keys: &str, head: &str, says: &str) {
    let found = problems(keys);
    assert_eq!(found.len(), 1, "{keys}: {found:#?}");
    assert_eq!(found[0].0, head, "{keys}: {}", found[0].1);
    assert!(found[0].1.contains(says), "{keys}: {}", found[0].1);
}

#[test]
fn bad_values_are_errors_at_the_value_with_what_to_write() {
    let mem = "services.a.memory_max 3:14";
    one_problem(
        "memory_max = \"256MB\"",
        &format!("error bad-size {mem}"),
        "write `256MiB`",
    );
    one_problem(
        "memory_max = 256",
        &format!("error out-of-range {mem}"),
        "256B is below the minimum of 1MiB",
    );
    one_problem(
        "memory_max = true",
        &format!("error wrong-type {mem}"),
        "a size",
    );
    let cpu = "services.a.cpu_max 3:11";
    one_problem(
        "cpu_max = \"half\"",
        &format!("error bad-cpu {cpu}"),
        "`half` is not a CPU share / write a number of CPUs (cpu_max = 0.5) or a percentage",
    );
    one_problem(
        "cpu_max = 0.001",
        &format!("error bad-cpu {cpu}"),
        "below the minimum of 0.01 CPU",
    );
    one_problem(
        "cpu_max = -1",
        &format!("error bad-cpu {cpu}"),
        "not a CPU share",
    );
    one_problem(
        "cpu_max = 5000",
        &format!("error bad-cpu {cpu}"),
        "above the maximum of 1024 CPUs",
    );
    one_problem(
        "cpu_max = [1]",
        &format!("error wrong-type {cpu}"),
        "a number of CPUs",
    );
}

#[test]
fn limits_on_an_external_service_are_a_warning() {
    let (_, loaded) = load(
        "[services.db]\nkind = \"external\"\nreadiness = { tcp = \"127.0.0.1:5432\" }\nmemory_max = \"1GiB\"\n",
    );
    let codes: Vec<_> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.code, d.key.clone()))
        .collect();
    assert_eq!(
        codes,
        [(
            Severity::Warning,
            "ignored-key",
            Some("services.db.memory_max".to_string())
        )]
    );
}

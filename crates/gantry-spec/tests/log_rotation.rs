//! Decoding of `[settings] logs`: the valid forms of `max_size` and `keep`, the defaults, and every error with its position and hint.

mod support;

use gantry_spec::{Loaded, LogRotation, Source, decode};

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|name| (name == "LOG_SIZE").then(|| "2MiB".into()));
    (source, loaded)
}

fn logs(text: &str) -> LogRotation {
    let (_, loaded) = load(text);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.spec.settings.logs
}

fn rotation(max_size: u64, keep: u32) -> LogRotation {
    LogRotation { max_size, keep }
}

#[test]
fn absent_means_ten_mebibytes_and_three_kept() {
    assert_eq!(logs(""), rotation(10 << 20, 3));
    assert_eq!(
        logs("[settings]\napi = \"127.0.0.1:7070\"\n"),
        rotation(10 << 20, 3)
    );
    assert_eq!(LogRotation::default(), rotation(10 << 20, 3));
}

#[test]
fn sizes_with_binary_units_or_plain_bytes() {
    let cases = [
        (
            "{ max_size = \"512KiB\", keep = 5 }",
            rotation(512 << 10, 5),
        ),
        ("{ max_size = \"10MiB\" }", rotation(10 << 20, 3)),
        ("{ max_size = \"1GiB\" }", rotation(1 << 30, 3)),
        ("{ max_size = \"1.5MiB\" }", rotation(3 << 19, 3)),
        ("{ max_size = \"64 KiB\" }", rotation(64 << 10, 3)),
        ("{ max_size = 4096 }", rotation(4096, 3)),
        ("{ max_size = \"4096\" }", rotation(4096, 3)),
        ("{ max_size = 0x10000 }", rotation(65536, 3)),
        ("{ max_size = \"${LOG_SIZE}\" }", rotation(2 << 20, 3)),
        ("{ keep = 0 }", rotation(10 << 20, 0)),
        ("{ keep = 1000 }", rotation(10 << 20, 1000)),
        ("{}", rotation(10 << 20, 3)),
    ];
    for (value, want) in cases {
        assert_eq!(
            logs(&format!("[settings]\nlogs = {value}\n")),
            want,
            "{value}"
        );
    }
    // The table form too.
    assert_eq!(
        logs("[settings.logs]\nmax_size = \"8KiB\"\nkeep = 2\n"),
        rotation(8 << 10, 2)
    );
}

/// `severity code key line:col` and the message of each diagnostic of `logs = {value}`.
fn problems(value: &str) -> Vec<(String, String)> {
    let (source, loaded) = load(&format!("[settings]\nlogs = {value}\n"));
    // A bad value keeps the default: the rest of the file still decodes.
    let logs = loaded.spec.settings.logs;
    assert!(
        logs.max_size >= 4096,
        "{value}: max_size fell to {}",
        logs.max_size
    );
    support::problems_of(&source, &loaded)
        .into_iter()
        .map(|p| (p.head.clone(), p.text()))
        .collect()
}

#[track_caller]
fn one_problem(value: &str, head: &str, says: &str) {
    let found = problems(value);
    assert_eq!(found.len(), 1, "{value}: {found:#?}");
    assert_eq!(found[0].0, head, "{value}: {}", found[0].1);
    assert!(found[0].1.contains(says), "{value}: {}", found[0].1);
}

#[test]
fn invalid_sizes_are_errors_at_the_value() {
    let at = "settings.logs.max_size 2:21";
    one_problem(
        "{ max_size = \"10MB\" }",
        &format!("error bad-size {at}"),
        "sizes are binary, write `10MiB`",
    );
    one_problem(
        "{ max_size = \"10 parsecs\" }",
        &format!("error bad-size {at}"),
        "\"512KiB\", \"10MiB\", \"1GiB\"",
    );
    one_problem(
        "{ max_size = \"\" }",
        &format!("error bad-size {at}"),
        "empty size",
    );
    one_problem(
        "{ max_size = 1.5 }",
        &format!("error bad-size {at}"),
        "a size is a whole number of bytes",
    );
    one_problem(
        "{ max_size = -4096 }",
        &format!("error bad-size {at}"),
        "cannot be negative",
    );
    one_problem(
        "{ max_size = \"99999999999TiB\" }",
        &format!("error bad-size {at}"),
        "too large",
    );
    one_problem(
        "{ max_size = true }",
        &format!("error wrong-type {at}"),
        "expected a size such as \"10MiB\", found a boolean",
    );
}

#[test]
fn a_size_below_four_kibibytes_is_out_of_range() {
    let head = "error out-of-range settings.logs.max_size 2:21";
    one_problem(
        "{ max_size = 1024 }",
        head,
        "1KiB is below the minimum of 4KiB",
    );
    one_problem(
        "{ max_size = \"4095B\" }",
        head,
        "4095B is below the minimum of 4KiB / use at least \"4KiB\"",
    );
    one_problem("{ max_size = 0 }", head, "0B is below the minimum of 4KiB");
}

#[test]
fn keep_is_a_whole_number_from_zero() {
    let head = "error out-of-range settings.logs.keep 2:17";
    one_problem("{ keep = -1 }", head, "between 0 and 1000");
    one_problem("{ keep = 1001 }", head, "between 0 and 1000");
    one_problem(
        "{ keep = \"3\" }",
        "error wrong-type settings.logs.keep 2:17",
        "expected an integer, found a string",
    );
}

#[test]
fn logs_must_be_a_table_and_unknown_keys_get_a_suggestion() {
    one_problem(
        "\"10MiB\"",
        "error wrong-type settings.logs 2:8",
        "expected a table, found a string",
    );
    one_problem(
        "{ max_sise = \"1MiB\" }",
        "warning unknown-key settings.logs.max_sise 2:10",
        "did you mean `max_size`?",
    );
}

#[test]
fn every_error_at_once() {
    let found = problems("{ max_size = \"1MB\", keep = -2 }");
    let heads: Vec<&str> = found.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        heads,
        [
            "error bad-size settings.logs.max_size 2:21",
            "error out-of-range settings.logs.keep 2:35",
        ]
    );
}

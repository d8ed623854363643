//! Decoding of `data_dir` and `data_size` (a service that keeps data): the valid forms, the
//! documented default, and every bad value as a diagnostic at its line with what to write.

mod support;

use gantry_spec::{Loaded, Source, decode, keys};

fn load(text: &str) -> (Source, Loaded) {
    let source = Source::new("gantry.toml", text);
    let loaded = decode(&source, &|name| {
        (name == "DATA").then(|| "/srv/data".into())
    });
    (source, loaded)
}

/// `severity code key line:col | message / hint` of each diagnostic of a service `a`.
fn problems(service: &str) -> Vec<String> {
    let (source, loaded) = load(&format!("[services.a]\n{service}\n"));
    support::problems_of(&source, &loaded)
        .into_iter()
        .map(|p| format!("{} | {}", p.head, p.text()))
        .collect()
}

#[test]
fn data_dir_and_data_size_decode_in_every_form() {
    let cases = [
        ("data_dir = \"/var/lib/pg\"", Some("/var/lib/pg"), None),
        ("data_dir = \"data/pg\"", Some("data/pg"), None),
        ("data_dir = \"${DATA}/pg\"", Some("/srv/data/pg"), None),
        (
            "data_dir = \"/d\"\ndata_size = \"20GiB\"",
            Some("/d"),
            Some(20u64 << 30),
        ),
        (
            "data_dir = \"/d\"\ndata_size = 2097152",
            Some("/d"),
            Some(2 << 20),
        ),
        ("", None, None),
    ];
    for (keys, dir, size) in cases {
        let (_, loaded) = load(&format!("[services.a]\ncommand = \"true\"\n{keys}\n"));
        assert!(
            loaded.diagnostics.is_empty(),
            "{keys}: {:#?}",
            loaded.diagnostics
        );
        let s = &loaded.spec.services[0];
        assert_eq!(s.data_dir.as_ref().map(|d| d.value.as_str()), dir, "{keys}");
        assert_eq!(s.data_size, size, "{keys}");
    }
}

#[test]
fn the_documented_default_size_is_the_constant() {
    let text = keys::DATA_SIZE_DEFAULT.trim_matches('"');
    assert_eq!(gantry_spec::size::parse_size(text), Ok(keys::DATA_SIZE));
}

#[test]
fn bad_values_are_errors_at_their_line_with_what_to_write() {
    let cases = [
        (
            "command = \"true\"\ndata_dir = \"\"",
            "error invalid-value services.a.data_dir 3:12 | data_dir: the path is empty",
        ),
        (
            "command = \"true\"\ndata_dir = \"../elsewhere\"",
            "error invalid-value services.a.data_dir 3:12 | data_dir: the path climbs out with `..`",
        ),
        (
            "command = \"true\"\ndata_dir = 5",
            "error wrong-type services.a.data_dir 3:12",
        ),
        (
            "kind = \"task\"\ncommand = \"true\"\ndata_dir = \"/d\"",
            "error invalid-value services.a.data_dir 4:12 | data_dir applies to kind = \"process\" only",
        ),
        (
            "kind = \"external\"\nreadiness = { tcp = \"db:5432\" }\ndata_dir = \"/d\"",
            "error invalid-value services.a.data_dir 4:12 | data_dir applies to kind = \"process\" only",
        ),
        (
            "command = \"true\"\ndata_dir = \"/d\"\ndata_size = \"10GB\"",
            "error bad-size services.a.data_size 4:13",
        ),
        (
            "command = \"true\"\ndata_dir = \"/d\"\ndata_size = \"1KiB\"",
            "error out-of-range services.a.data_size 4:13 | 1KiB is below the minimum of 1MiB",
        ),
        (
            "command = \"true\"\ndata_size = \"1GiB\"",
            "warning ignored-key services.a.data_size 3:13 | data_size without data_dir is ignored",
        ),
    ];
    for (service, want) in cases {
        let found = problems(service);
        assert_eq!(found.len(), 1, "{service}: {found:#?}");
        assert!(
            found[0].starts_with(want),
            "{service}:\n{}\nwant {want}",
            found[0]
        );
    }
}

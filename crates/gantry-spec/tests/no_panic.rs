//! Property tests: the decoder never panics, and every diagnostic it returns points inside the text and renders.
//!
//! Two generators: arbitrary strings, and TOML-ish documents assembled from
//! fragments of valid gantry syntax driven by the key registry (so new keys are
//! exercised automatically), with random, wrong-typed and junk values, and an
//! occasional cut or stray character to reach the syntax-error path.

use gantry_spec::depth::MAX_DEPTH;
use gantry_spec::keys::{self, Key, Ty};
use gantry_spec::{Source, decode};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

/// Decodes `text` and checks every diagnostic's span and rendering.
fn check(text: &str) -> Result<(), TestCaseError> {
    let source = Source::new("f.toml", text);
    let loaded = decode(&source, &|name| (name == "SET").then(|| "5s".to_string()));
    for d in &loaded.diagnostics {
        if let Some(span) = &d.span {
            prop_assert!(
                span.start <= span.end && span.end <= text.len(),
                "span {span:?} outside a text of {} bytes: {d:?}",
                text.len()
            );
        }
        let rendered = d.render(&source);
        prop_assert!(rendered.contains(d.code), "{rendered}");
        // Nesting 33 levels deep takes at least 32 of `[`, `{` and `.`.
        if d.code == "too-deep" {
            let nesting = text
                .chars()
                .filter(|c| matches!(c, '[' | '{' | '.'))
                .count();
            prop_assert!(
                nesting >= MAX_DEPTH,
                "too-deep with {nesting} brackets and dots"
            );
        }
        let _ = d.to_json(&source);
    }
    Ok(())
}

/// A TOML basic string holding `s`, escaped.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A table key: bare when TOML allows it, quoted otherwise.
fn key_text(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        quote(name)
    }
}

fn name() -> BoxedStrategy<String> {
    prop_oneof![
        6 => prop::sample::select(vec!["a", "b", "c", "db", "api", "web-1", "x.y", "A", "Db"])
            .prop_map(str::to_string),
        1 => "[A-Za-z0-9_.-]{0,10}",
        1 => "\\PC{0,6}",
        1 => "[a-z]{60,70}",
    ]
    .boxed()
}

/// Strings with the characters that matter to interpolation, shell splitting and URLs.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z0-9 ._:/-]{0,12}",
        1 => "[$]{0,2}[{]?[A-Z_:-]{0,6}[}]?[a-z ]{0,3}",
        1 => "[a-z ]{0,4}['\"][a-z ]{0,4}",
        1 => "\\PC{0,10}",
        1 => Just("${SET}".to_string()),
        1 => Just("${UNSET:-1s}".to_string()),
    ]
    .prop_map(|s| quote(&s))
    .boxed()
}

fn scalar() -> BoxedStrategy<String> {
    prop_oneof![
        2 => text(),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => "-?[0-9]{1,3}".prop_map(|s| s.trim_start_matches('0').to_string())
            .prop_map(|s| if s.is_empty() || s == "-" { "0".into() } else { s }),
        1 => prop::sample::select(vec!["0x1F", "0o7", "0b101", "1e400", "-0.0", "inf", "nan", "3.5"])
            .prop_map(str::to_string),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => Just("1979-05-27T07:32:00Z".to_string()),
        1 => Just("[]".to_string()),
        1 => Just("{}".to_string()),
    ]
    .boxed()
}

/// Any value, possibly nested once.
fn junk() -> BoxedStrategy<String> {
    scalar()
        .prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec((name(), inner), 0..3).prop_map(|v| {
                    let mut seen = std::collections::HashSet::new();
                    let body: Vec<String> = v
                        .into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .map(|(k, x)| format!("{} = {x}", key_text(&k)))
                        .collect();
                    format!("{{ {} }}", body.join(", "))
                }),
            ]
        })
        .boxed()
}

fn duration() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec!["250ms", "1s", "1.5s", "5m", "1m30s", "2h", "1d", "10us", "0s", "0ms"])
            .prop_map(quote),
        2 => "[0-9]{0,4}(\\.[0-9]{0,3})?(us|ms|s|m|h|d|x|µs| s)?([0-9]{1,2}(s|m))?".prop_map(|s| quote(&s)),
        1 => Just(quote("99999999999999999999d")),
        1 => Just(quote("${SET}")),
        1 => Just(quote("${UNSET}")),
        1 => any::<i32>().prop_map(|n| n.to_string()),
        1 => Just("1.5".to_string()),
        1 => junk(),
    ]
    .boxed()
}

fn size(min: u64) -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec!["4KiB", "512KiB", "10MiB", "1.5GiB", "10 MiB", "4096B", "1TiB"])
            .prop_map(quote),
        2 => "[0-9]{0,5}(\\.[0-9]{0,2})? ?(B|KiB|MiB|GiB|TiB|KB|MB|k|x)?".prop_map(|s| quote(&s)),
        1 => prop::sample::select(vec![0, min.saturating_sub(1), min, u64::MAX / 2])
            .prop_map(|n| n.to_string()),
        1 => Just(quote("99999999999TiB")),
        1 => Just(quote("${SET}")),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => Just("1.5".to_string()),
        1 => junk(),
    ]
    .boxed()
}

fn cpu() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec!["0.5", "2", "0.01", "1024"]).prop_map(str::to_string),
        2 => "[0-9]{0,5}(\\.[0-9]{0,3})? ?%?".prop_map(|s| quote(&s)),
        1 => any::<f64>().prop_map(|x| format!("{x:?}")),
        1 => prop::sample::select(vec!["inf", "nan", "-0.0", "1e400", "0.0005"]).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => Just(quote("${SET}")),
        1 => junk(),
    ]
    .boxed()
}

fn int(min: i64, max: i64) -> BoxedStrategy<String> {
    prop_oneof![
        4 => (min..=max).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![min.saturating_sub(1), max.saturating_add(1), 0, -1, i64::MAX, i64::MIN])
            .prop_map(|n| n.to_string()),
        1 => junk(),
    ]
    .boxed()
}

fn command() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec!["python3 app.py", "sh -c 'echo hi'", "x", "", " ", "'open", "a \"b c\" d"])
            .prop_map(quote),
        2 => prop::collection::vec(text(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
        1 => prop::collection::vec(scalar(), 1..3).prop_map(|v| format!("[{}]", v.join(", "))),
        1 => junk(),
    ]
    .boxed()
}

fn str_list() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::collection::vec(name().prop_map(|n| quote(&n)), 0..4)
            .prop_map(|v| format!("[{}]", v.join(", "))),
        1 => junk(),
    ]
    .boxed()
}

/// A value for a probe kind key or a string key: plausible addresses and patterns.
fn probe_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "http://127.0.0.1:8000/health", "https://x", "ftp://x", "127.0.0.1:5432", "h:0",
            ":80", "h:99999", "listening on", "(unclosed", "postgres://u@h/db", "redis://h",
            "", "${SET}",
        ])
        .prop_map(quote),
        1 => text(),
        1 => junk(),
    ]
    .boxed()
}

fn condition() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(vec!["started", "ready", "completed", "READY", "healthy", ""])
            .prop_map(quote),
        1 => junk(),
    ]
    .boxed()
}

fn depends_on() -> BoxedStrategy<String> {
    let entry = prop_oneof![
        3 => condition(),
        2 => (prop::option::of(condition()), prop::option::of(scalar()), prop::option::of(scalar()))
            .prop_map(|(c, r, x)| {
                let mut parts = Vec::new();
                if let Some(c) = c { parts.push(format!("condition = {c}")); }
                if let Some(r) = r { parts.push(format!("required = {r}")); }
                if let Some(x) = x { parts.push(format!("extra = {x}")); }
                format!("{{ {} }}", parts.join(", "))
            }),
        1 => junk(),
    ];
    prop_oneof![
        3 => str_list(),
        3 => prop::collection::btree_map(name(), entry, 0..5).prop_map(|m| {
            let body: Vec<String> = m.into_iter().map(|(k, v)| format!("{} = {v}", key_text(&k))).collect();
            format!("{{ {} }}", body.join(", "))
        }),
        1 => junk(),
    ]
    .boxed()
}

/// A value for a key of type `ty`: usually plausible, sometimes wrong.
fn value_for(ty: Ty) -> BoxedStrategy<String> {
    let typed: BoxedStrategy<String> = match ty {
        Ty::Str => probe_string(),
        Ty::Bool => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        Ty::Int { min, max } => int(min, max),
        Ty::Duration => duration(),
        Ty::Size { min } => size(min),
        Ty::Cpu => cpu(),
        Ty::Enum(options) => prop_oneof![
            4 => prop::sample::select(options.to_vec()).prop_map(quote),
            1 => prop::sample::select(options.to_vec()).prop_map(|o| quote(&o.to_uppercase())),
            1 => "[a-z-]{0,8}".prop_map(|s| quote(&s)),
        ]
        .boxed(),
        Ty::Command => command(),
        Ty::StrOrList => prop_oneof![text(), str_list()].boxed(),
        Ty::StrList => str_list(),
        Ty::IntList { min, max } => prop::collection::vec(int(min, max), 0..4)
            .prop_map(|v| format!("[{}]", v.join(", ")))
            .boxed(),
        Ty::Table(keys) => inline_table(keys),
        Ty::TableList(keys) => prop::collection::vec(inline_table(keys), 0..3)
            .prop_map(|v| format!("[{}]", v.join(", ")))
            .boxed(),
        Ty::MapOf(inner, _) => prop::collection::btree_map(name(), value_for(*inner), 0..3)
            .prop_map(|m| {
                let body: Vec<String> = m
                    .into_iter()
                    .map(|(k, v)| format!("{} = {v}", key_text(&k)))
                    .collect();
                format!("{{ {} }}", body.join(", "))
            })
            .boxed(),
        Ty::DependsOn => depends_on(),
        Ty::Probe => probe(),
        Ty::Any => scalar(),
    };
    prop_oneof![8 => typed, 1 => junk()].boxed()
}

/// `key = value` pairs for a random subset of a table's keys, plus maybe an unknown key.
fn entries(keys: &'static [Key]) -> BoxedStrategy<Vec<String>> {
    let known =
        prop::sample::subsequence(keys.to_vec(), 0..=keys.len().min(8)).prop_flat_map(|chosen| {
            chosen
                .into_iter()
                .map(|k| value_for(k.ty).prop_map(move |v| format!("{} = {v}", k.name)))
                .collect::<Vec<_>>()
        });
    let unknown = prop::option::weighted(
        0.15,
        (
            prop::sample::select(vec!["comand", "dependson", "zzz", "Kind"]),
            scalar(),
        ),
    )
    .prop_map(|o| o.map(|(k, v)| format!("{k} = {v}")));
    (known, unknown)
        .prop_map(|(mut lines, extra)| {
            lines.extend(extra);
            lines
        })
        .boxed()
}

fn inline_table(keys: &'static [Key]) -> BoxedStrategy<String> {
    entries(keys)
        .prop_map(|e| format!("{{ {} }}", e.join(", ")))
        .boxed()
}

fn probe() -> BoxedStrategy<String> {
    // Zero, one or two kind keys (one is the valid case) plus random tuning keys.
    let kinds = prop::sample::subsequence(keys::PROBE_KINDS.to_vec(), 0..=2);
    let common: Vec<Key> = keys::PROBE
        .iter()
        .copied()
        .filter(|k| !keys::PROBE_KINDS.contains(&k.name))
        .collect();
    let tuning = prop::sample::subsequence(common, 0..=4);
    (kinds, tuning)
        .prop_flat_map(|(kinds, tuning)| {
            let mut parts: Vec<BoxedStrategy<String>> = Vec::new();
            for kind in kinds {
                let ty = keys::find(keys::PROBE, kind).unwrap().ty;
                parts.push(
                    value_for(ty)
                        .prop_map(move |v| format!("{kind} = {v}"))
                        .boxed(),
                );
            }
            for k in tuning {
                parts.push(
                    value_for(k.ty)
                        .prop_map(move |v| format!("{} = {v}", k.name))
                        .boxed(),
                );
            }
            parts
        })
        .prop_map(|parts| format!("{{ {} }}", parts.join(", ")))
        .boxed()
}

/// A `[services.NAME]` section.
fn service() -> BoxedStrategy<(String, Vec<String>)> {
    (name(), entries(keys::SERVICE)).boxed()
}

/// A whole document: top-level keys inline, then services, secrets and profiles as headers.
fn document() -> impl Strategy<Value = String> {
    let top_inline: Vec<Key> = keys::TOP
        .iter()
        .copied()
        .filter(|k| !matches!(k.name, "services" | "secrets" | "profiles"))
        .collect();
    let top = prop::sample::subsequence(top_inline, 0..=5).prop_flat_map(|chosen| {
        chosen
            .into_iter()
            .map(|k| value_for(k.ty).prop_map(move |v| format!("{} = {v}", k.name)))
            .collect::<Vec<_>>()
    });
    let services = prop::collection::vec(service(), 0..8);
    let secrets = prop::collection::vec((name(), entries(keys::SECRET)), 0..2);
    let profiles = prop::collection::vec((name(), entries(keys::PROFILE)), 0..2);
    let mutation = prop_oneof![
        8 => Just(None),
        1 => (any::<prop::sample::Index>(), Just(String::new())).prop_map(Some),
        1 => (any::<prop::sample::Index>(), "[\\[\\]{}=\"'#,.\n]|\\PC").prop_map(Some),
    ];
    (top, services, secrets, profiles, mutation).prop_map(
        |(top, services, secrets, profiles, mutation)| {
            let mut doc = top.join("\n");
            doc.push('\n');
            let mut seen = std::collections::HashSet::new();
            for (table, list) in [
                ("services", services),
                ("secrets", secrets),
                ("profiles", profiles),
            ] {
                for (n, lines) in list {
                    if !seen.insert((table, n.clone())) {
                        continue;
                    }
                    doc.push_str(&format!("\n[{table}.{}]\n", key_text(&n)));
                    for line in lines {
                        doc.push_str(&line);
                        doc.push('\n');
                    }
                }
            }
            if let Some((at, insert)) = mutation {
                let boundaries: Vec<usize> = doc
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain([doc.len()])
                    .collect();
                let at = boundaries[at.index(boundaries.len())];
                if insert.is_empty() {
                    doc.truncate(at);
                } else {
                    doc.insert_str(at, &insert);
                }
            }
            doc
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC*") {
        check(&text)?;
    }

    #[test]
    fn toml_punctuation_never_panics(text in "[\\[\\]{}=\"'#,.a-z0-9_$ \n\t\\\\-]{0,80}") {
        check(&text)?;
    }

    #[test]
    fn gantry_like_documents_never_panic(doc in document()) {
        check(&doc)?;
    }
}

/// The structured generator must reach the decoder proper, not only the syntax errors.
#[test]
fn generator_mostly_produces_parsable_toml() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = document();
    let (mut parsed, mut with_services, total) = (0, 0, 200);
    for _ in 0..total {
        let doc = strategy.new_tree(&mut runner).unwrap().current();
        let loaded = decode(&Source::new("f.toml", doc.as_str()), &|_| None);
        if !loaded.diagnostics.iter().any(|d| d.code == "syntax") {
            parsed += 1;
            if !loaded.spec.services.is_empty() {
                with_services += 1;
            }
        }
    }
    assert!(
        parsed * 2 > total,
        "only {parsed} of {total} documents parse"
    );
    assert!(
        with_services * 4 > total,
        "only {with_services} of {total} documents have services"
    );
}

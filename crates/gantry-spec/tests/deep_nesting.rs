//! Keys, arrays and inline tables nested thousands of levels deep: an error at file:line:column with what to do, never a crash.

use gantry_spec::depth::MAX_DEPTH;
use gantry_spec::{Diagnostic, Source, decode};

/// Decodes `text` on a thread with a small stack (the size of a runtime worker's, and far
/// below the main thread's), so that a recursive walk of a deep tree would overflow here.
fn decode_small_stack(text: String) -> (Source, Vec<Diagnostic>) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let source = Source::new("deep.toml", text);
            let loaded = decode(&source, &|_| None);
            (source, loaded.diagnostics)
        })
        .unwrap()
        .join()
        .expect("decoding did not panic")
}

/// The only diagnostic is the depth error: its line, column, rendering and JSON.
fn the_depth_error(text: String) -> (usize, usize, String) {
    let (source, diags) = decode_small_stack(text);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(d.code, "too-deep", "{d:?}");
    assert!(d.is_error());
    let json = d.to_json(&source);
    let (line, column) = (
        json["line"].as_u64().expect("a line") as usize,
        json["column"].as_u64().expect("a column") as usize,
    );
    let rendered = d.render(&source);
    assert!(
        rendered.starts_with(&format!("error[too-deep]: deep.toml:{line}:{column}: ")),
        "{rendered}"
    );
    assert!(
        rendered.contains("hint: flatten this part of the file"),
        "{rendered}"
    );
    // A line of 100,000 keys is shown as an excerpt, not whole.
    assert!(rendered.len() < 1500, "{} bytes rendered", rendered.len());
    (line, column, rendered)
}

fn dotted(n: usize) -> String {
    vec!["a"; n].join(".")
}

#[test]
fn a_dotted_key_thousands_of_levels_deep_is_an_error_at_the_first_segment_beyond_the_limit() {
    for n in [MAX_DEPTH + 1, 1000, 100_000] {
        let text = format!("[services.x]\ncommand = \"true\"\n{} = 1\n", dotted(n));
        // [services.x] is two levels, so the 31st segment of the key is the 33rd level.
        let (line, column, rendered) = the_depth_error(text);
        assert_eq!((line, column), (3, 2 * 30 + 1), "{n} levels:\n{rendered}");
        assert!(rendered.contains("this key is nested more than 32 levels deep"));
    }
}

#[test]
fn a_table_header_thousands_of_levels_deep_is_an_error_at_its_position() {
    for n in [1000, 100_000] {
        let text = format!("# a comment\n\n[{}]\n", dotted(n));
        let (line, column, _) = the_depth_error(text);
        assert_eq!((line, column), (3, 2 + 2 * 32));
    }
}

#[test]
fn deep_arrays_and_inline_tables_name_the_first_bracket_beyond_the_limit() {
    for n in [1000, 100_000] {
        // `x` is level 1: the 32nd bracket would open level 33.
        let arrays = format!("x = {}{}\n", "[".repeat(n), "]".repeat(n));
        let (line, column, rendered) = the_depth_error(arrays);
        assert_eq!((line, column), (1, 5 + 31), "{rendered}");
        assert!(rendered.contains("this array is nested"), "{rendered}");

        let tables = format!("x = {}1{}\n", "{a = ".repeat(n), "}".repeat(n));
        let (line, column, rendered) = the_depth_error(tables);
        assert_eq!((line, column), (1, 5 + 31 * 5), "{rendered}");
        assert!(
            rendered.contains("this inline table is nested"),
            "{rendered}"
        );
    }
}

#[test]
fn dotted_keys_inside_nested_inline_tables_are_refused_before_anything_walks_them() {
    // Each inline table holds a 70-segment dotted key: the parser's own limits (80 of
    // each) pass this, and the tree is 70 × 70 levels deep.
    let key = dotted(70);
    let text = format!(
        "[services.x]\ncommand = \"true\"\nx = {}1{}\n",
        format!("{{ {key} = ").repeat(70),
        " }".repeat(70)
    );
    let (line, column, _) = the_depth_error(text);
    // services.x.x is level 3, the `{` opens level 4: the 29th segment is level 32.
    assert_eq!((line, column), (3, 7 + 2 * 29));
}

#[test]
fn nesting_up_to_the_limit_is_decoded_as_usual() {
    // services, x and 30 segments: 32 levels, an unknown key (a warning), no error.
    let text = format!("[services.x]\ncommand = \"true\"\n{} = [[1]]\n", dotted(28));
    let (_, diags) = decode_small_stack(text);
    assert!(diags.iter().all(|d| d.code == "unknown-key"), "{diags:#?}");
    // A syntax error is still the parser's, with its own message.
    let (_, diags) = decode_small_stack("[services.x\ncommand = 1\n".into());
    assert!(diags.iter().any(|d| d.code == "syntax"), "{diags:#?}");
}

//! Fuzz-ish: the sample files cut, spliced and sprinkled with bytes many thousand ways. No
//! importer may panic, and whenever one succeeds, gantry-spec must load what it wrote without
//! an error (the promise `gantry import` makes is a file `gantry check` accepts).

use gantry_import::{Options, compose, process_compose, procfile};
use std::path::Path;

/// A small deterministic generator (xorshift), so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "\n",
    ":",
    " ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "&a ",
    "*a",
    "<<: *a\n",
    "'",
    "\"",
    "${",
    "}",
    "$$",
    "\t",
    "~",
    "null",
    "true",
    "-1",
    "99999999999999999999",
    "0s",
    "1m30s",
    "\u{0}",
    "é",
    "depends_on: [x]\n",
    "condition: service_healthy\n",
    "test: [CMD-SHELL, x]\n",
    "restart: on-failure:0\n",
    "ports: ['0:0']\n",
    "replicas: 0\n",
    "command: \"\"\n",
    "---\n",
    "...\n",
    "? ",
    "!!str ",
    "|\n  x\n",
    "#",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !chars.is_empty() => {
                let at = rng.below(chars.len());
                chars.truncate(at);
            }
            1 if !chars.is_empty() => {
                let at = rng.below(chars.len());
                let len = rng.below(20).min(chars.len() - at);
                chars.drain(at..at + len);
            }
            _ => {
                let at = rng.below(chars.len() + 1);
                let piece = PIECES[rng.below(PIECES.len())];
                for (i, c) in piece.chars().enumerate() {
                    chars.insert(at + i, c);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn assert_loads(what: &str, input: &str, imported: &gantry_import::Imported) {
    let text = imported.to_toml("source", "test");
    // Every variable set: a `${VAR:?message}` the source had is rightly an error without it.
    let loaded = gantry_spec::decode(
        &gantry_spec::Source::new("gantry.toml", text.clone()),
        &|_| Some("x".into()),
    );
    let source = gantry_spec::Source::new("gantry.toml", text.clone());
    let (_, plan) = gantry_plan::build(&loaded.spec, &source, &Default::default());
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .chain(&plan)
        .filter(|d| d.is_error())
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the import of\n---\n{input}\n---\nwrote\n---\n{text}\n---\nwhich does not load: {errors:#?}"
    );
}

#[test]
fn mutated_samples_never_panic_and_successes_always_load() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let samples = [
        ("compose", "compose-webapp/compose.yaml"),
        ("compose", "compose-edge/compose.yaml"),
        ("compose", "compose-hostcmds/compose.yaml"),
        ("process-compose", "pc-stack/process-compose.yaml"),
        ("process-compose", "pc-small/process-compose.yml"),
        ("procfile", "procfile-node/Procfile"),
        ("procfile", "procfile-rails/Procfile"),
        // The large ones: fewer rounds, each is many times the size.
        ("compose", "compose-platform/compose.yaml"),
        ("process-compose", "pc-platform/process-compose.yaml"),
        ("procfile", "procfile-platform/Procfile"),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let opts = Options::default();
    let mut ok = 0;
    for (format, file) in samples {
        let text = std::fs::read_to_string(data.join(file)).unwrap();
        let rounds = if file.contains("-platform/") {
            300
        } else {
            1500
        };
        for _ in 0..rounds {
            let input = mutate(&text, &mut rng);
            let result = match format {
                "compose" => compose::import(&input, &opts),
                "process-compose" => process_compose::import(&input, &opts),
                _ => procfile::import(&input, &opts),
            };
            match result {
                Ok(imported) => {
                    ok += 1;
                    assert_loads(file, &input, &imported);
                }
                Err(e) => assert!(e.line >= 1 && !e.message.is_empty(), "{e:?}"),
            }
        }
    }
    assert!(
        ok > 2000,
        "too few mutations still imported ({ok}); the test tests little"
    );
}

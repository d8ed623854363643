//! Fuzz target `check`: what `gantry check` does with arbitrary UTF-8 — decode, then build the plan — must never panic.
#![no_main]

use gantry_plan::{Timings, build, render_dot, render_json, render_mermaid, render_text};
use gantry_spec::{Source, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source::new("fuzz.toml", text);
    let loaded = decode(&source, &|name| (name == "SET").then(|| "1s".to_string()));
    let mut diagnostics = loaded.diagnostics;
    // Like the CLI: a file that does not parse has no plan.
    if !diagnostics.iter().any(|d| d.code == "syntax") {
        let (plan, plan_diags) = build(&loaded.spec, &source, &Timings::new());
        if !plan_diags.iter().any(|d| d.is_error()) {
            let _ = (
                render_text(&plan),
                render_json(&plan),
                render_dot(&plan),
                render_mermaid(&plan),
            );
        }
        diagnostics.extend(plan_diags);
    }
    for d in &diagnostics {
        if let Some(span) = &d.span {
            assert!(span.start <= span.end && span.end <= text.len(), "{d:?}");
        }
        let _ = d.render(&source);
        let _ = d.to_json(&source);
    }
});

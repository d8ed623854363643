//! `gantry check`: validate the file and report every problem at once.

use crate::Outcome;
use crate::load::load;
use std::path::Path;

pub fn run(file: &Path, json: bool) -> anyhow::Result<Outcome> {
    let checked = match load(file, &Default::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    let (mut errors, mut warnings) = checked.counts();
    let flags_file = checked.spec.flags.file.as_ref().map(|f| {
        crate::flags_check::check_file(&checked.source.path, &f.value, crate::flags_check::today())
    });
    let file_problems = flags_file.as_ref().map_or(&[][..], |f| &f.problems[..]);
    let file_errors = file_problems
        .iter()
        .filter(|p| p.severity == gantry_flags::Severity::Error)
        .count();
    errors += file_errors;
    warnings += file_problems.len() - file_errors;
    if json {
        let out = serde_json::json!({
            "file": checked.source.path,
            "valid": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "services": checked.spec.services.len(),
            "diagnostics": checked.diagnostics.iter().map(|d| d.to_json(&checked.source))
                .chain(flags_file.iter().flat_map(|f| f.problems.iter().map(|p| crate::flags_check::to_json(&f.path, p))))
                .collect::<Vec<_>>(),
        });
        crate::emit(&format!("{}\n", serde_json::to_string_pretty(&out)?));
    } else {
        checked.print_diagnostics();
        if let Some(f) = &flags_file {
            for p in &f.problems {
                eprintln!("{}\n", crate::flags_check::render(&f.path, p));
            }
        }
        let spec = &checked.spec;
        if spec.settings.api.starts_with("unix:")
            && (!spec.flags.defs.is_empty() || spec.flags.file.is_some())
        {
            eprintln!("{}\n", gantry_runtime::driver::UNIX_API_NOTE);
        }
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        if errors > 0 {
            eprintln!(
                "{}: invalid: {}, {}",
                checked.source.path,
                plural(errors, "error"),
                plural(warnings, "warning")
            );
        } else {
            println!(
                "{}: ok: {}, {}, {}{}",
                checked.source.path,
                // A replicated service counts once; its instances show as units.
                if checked.plan.units.len() == checked.spec.services.len() {
                    plural(checked.spec.services.len(), "service")
                } else {
                    format!(
                        "{} ({} with instances)",
                        plural(checked.spec.services.len(), "service"),
                        plural(checked.plan.units.len(), "unit")
                    )
                },
                plural(checked.plan.edge_count(), "dependency")
                    .replace("dependencys", "dependencies"),
                plural(checked.plan.waves.len(), "wave"),
                if warnings > 0 {
                    format!(" ({})", plural(warnings, "warning"))
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(if errors > 0 {
        Outcome::Usage
    } else {
        Outcome::Success
    })
}

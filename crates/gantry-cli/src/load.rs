//! Reads a stack file, decodes it and builds the plan; shared by every command that needs the file.

use gantry_plan::{Plan, Timings};
use gantry_spec::{Diagnostic, Source, Spec};
use std::path::Path;

/// A file that was read and checked.
pub struct Checked {
    pub source: Source,
    pub spec: Spec,
    pub plan: Plan,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn counts(&self) -> (usize, usize) {
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        (errors, self.diagnostics.len() - errors)
    }

    /// Prints every diagnostic to stderr, rendered with the source line.
    pub fn print_diagnostics(&self) {
        for d in &self.diagnostics {
            eprintln!("{}\n", d.render(&self.source));
        }
    }
}

/// The largest config file gantry reads: 64 MiB (10,000 services take about 4 MiB).
const CONFIG_CAP: u64 = 64 * 1024 * 1024;

/// Reads and checks `path`.
pub fn load(path: &Path, timings: &Timings) -> Result<Checked, String> {
    Ok(check_text(
        &path.display().to_string(),
        read(path)?,
        timings,
        &|name| std::env::var(name).ok(),
    ))
}

/// Reads and decodes `path` without building the plan or checking flags: what a client
/// command needs (`[settings]`, the service names). At 1,000 services this is most of
/// `gantry status`'s own time otherwise. The plan is left empty.
fn load_spec(path: &Path) -> Result<Checked, String> {
    let source = Source::new(path.display().to_string(), read(path)?);
    let loaded = gantry_spec::decode(&source, &|name| std::env::var(name).ok());
    Ok(Checked {
        source,
        spec: loaded.spec,
        plan: Plan::default(),
        diagnostics: loaded.diagnostics,
    })
}

/// The file's text, capped; an unreadable file is an error naming the path and what to do.
fn read(path: &Path) -> Result<String, String> {
    gantry_state::bounded::read_capped_text(path, CONFIG_CAP).map_err(|e| {
        let hint = match &e {
            _ if e.io_kind() == Some(std::io::ErrorKind::NotFound) => {
                "\n  hint: run `gantry init` to write a starter file, or pass -f FILE"
            }
            gantry_state::bounded::ReadError::InvalidUtf8 { .. } => {
                "\n  hint: save the file as UTF-8"
            }
            _ => "",
        };
        match e {
            gantry_state::bounded::ReadError::Io { .. } => format!("{e}{hint}"),
            _ => format!("cannot read the config: {e}{hint}"),
        }
    })
}

/// Checks text as if it were the file `name` (pure: the environment is passed in).
pub fn check_text(
    name: &str,
    text: String,
    timings: &Timings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Checked {
    let source = Source::new(name, text);
    let loaded = gantry_spec::decode(&source, env);
    let mut diagnostics = loaded.diagnostics;
    let (plan, plan_diags) = if diagnostics.iter().any(|d| d.code == "syntax") {
        (Plan::default(), Vec::new())
    } else {
        gantry_plan::build(&loaded.spec, &source, timings)
    };
    diagnostics.extend(plan_diags);
    diagnostics.extend(gantry_spec::flag_diagnostics(
        &loaded.spec,
        name,
        crate::flags_check::today(),
    ));
    diagnostics.sort_by_key(|d| (d.span.as_ref().map_or(usize::MAX, |s| s.start), d.severity));
    Checked {
        source,
        spec: loaded.spec,
        plan,
        diagnostics,
    }
}

/// Loads `path` for a command that needs a valid file. On a problem it prints it (the
/// diagnostics, then `<file>: <verdict>`) and returns the usage outcome to exit with.
pub fn load_valid(path: &Path, verdict: &str) -> Result<Checked, crate::Outcome> {
    let checked = load(path, &Default::default()).map_err(|e| {
        eprintln!("error: {e}");
        crate::Outcome::Usage
    })?;
    if checked.has_errors() {
        checked.print_diagnostics();
        eprintln!("{}: {verdict}", checked.source.path);
        return Err(crate::Outcome::Usage);
    }
    Ok(checked)
}

/// Loads the file for a client command (status, stop, down, logs, missions, wait), which
/// only needs `[settings]` to find the running instance. An error that leaves the settings
/// in doubt (a syntax error: the whole file falls back to defaults; any error under
/// `settings`) is refused: guessing would reach another instance on the default port or
/// read another state dir.
pub fn load_for_client(path: &Path) -> Result<Checked, String> {
    let checked = load_spec(path)?;
    let doubtful: Vec<&gantry_spec::Diagnostic> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .filter(|d| {
            d.code == "syntax"
                || d.key.is_none()
                || d.key
                    .as_deref()
                    .is_some_and(|k| k == "settings" || k.starts_with("settings."))
        })
        .collect();
    if let Some(first) = doubtful.first() {
        return Err(format!(
            "{} has errors that leave its [settings] (API address, state dir) in doubt:\n{}\n  hint: fix the file (`gantry check` lists every problem); a running instance is not affected",
            checked.source.path,
            first.render(&checked.source)
        ));
    }
    Ok(checked)
}

/// Loads the file again for the running `gantry up` (`gantry reload`, SIGHUP): the same
/// checks and the same selection as `up`. Errors are rendered as `gantry check` renders
/// them and start with [`gantry_runtime::driver::INVALID`] (the API answers 422).
pub fn reload(path: &Path, selection: &gantry_plan::Selection) -> Result<(Spec, Plan), String> {
    let invalid = gantry_runtime::driver::INVALID;
    let checked = load(path, &Default::default()).map_err(|e| format!("{invalid}: {e}"))?;
    if checked.has_errors() {
        let (errors, _) = checked.counts();
        let rendered: Vec<String> = checked
            .diagnostics
            .iter()
            .map(|d| d.render(&checked.source))
            .collect();
        return Err(format!(
            "{invalid} {} ({errors} error(s)):\n{}",
            checked.source.path,
            rendered.join("\n\n")
        ));
    }
    let plan = gantry_plan::select(checked.plan, &checked.spec, selection)
        .map_err(|e| format!("{invalid} {}: {e}", checked.source.path))?;
    Ok((checked.spec, plan))
}

/// The directory relative paths in the file are resolved against.
pub fn base_dir(file: &Path) -> &Path {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

//! `gantry check` for feature flags: today's date for expiry warnings, and the flagd JSON file
//! named by `[settings] flags_file` (read relative to the stack file, checked with gantry-flags).

use gantry_flags::{FlagProblem, FlagSet, Severity};
use std::path::Path;
use std::time::SystemTime;

/// The largest flags file gantry reads: 16 MiB.
const FLAGS_FILE_CAP: u64 = 16 * 1024 * 1024;

/// Today's UTC date as `(year, month, day)`.
pub fn today() -> (i32, u32, u32) {
    let stamp = gantry_time::rfc3339_utc(SystemTime::now());
    gantry_spec::parse_date(stamp.get(..10).unwrap_or("")).unwrap_or((1970, 1, 1))
}

/// The flags file as shown in messages and where it is read from.
pub struct FlagsFile {
    /// The path as written in `[settings] flags_file`, resolved against the stack file's directory.
    pub path: String,
    /// Every problem (errors and warnings), each with the JSON path it is about.
    pub problems: Vec<FlagProblem>,
}

/// Reads and checks the flags file `written` (relative to `stack_file`), if the stack names one.
pub fn check_file(stack_file: &str, written: &str, today: (i32, u32, u32)) -> FlagsFile {
    let base = Path::new(stack_file).parent().unwrap_or(Path::new(""));
    let full = base.join(written);
    let path = full.display().to_string();
    let problems = match gantry_state::bounded::read_capped_text(&full, FLAGS_FILE_CAP) {
        Err(e) => vec![FlagProblem {
            severity: Severity::Error,
            origin: path.clone(),
            path: "$".to_string(),
            message: format!("cannot read the flags file: {e}"),
            hint: "create it (flagd's JSON format: {\"flags\": {...}}), or fix `[settings] flags_file`".to_string(),
        }],
        Ok(text) => match FlagSet::parse_flagd(&text, &path) {
            Ok(set) => set
                .check(today)
                .into_iter()
                .filter(|p| p.origin != "built-in")
                .collect(),
            Err(problems) => problems,
        },
    };
    FlagsFile { path, problems }
}

/// One problem as the terminal shows it: `error[flag]: flags.json: flags.x.defaultVariant: ...`.
pub fn render(file: &str, p: &FlagProblem) -> String {
    let sev = match p.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!(
        "{sev}[flag]: {file}: {}: {}\n  hint: {}",
        p.path, p.message, p.hint
    )
}

/// One problem as `gantry check --json` lists it.
pub fn to_json(file: &str, p: &FlagProblem) -> serde_json::Value {
    serde_json::json!({
        "severity": p.severity,
        "code": "flag",
        "file": file,
        "key": p.path,
        "message": p.message,
        "hint": p.hint,
    })
}

//! Mission records: every NO-GO, boot failure or drift becomes something a person can act on, kept in the state store.

use crate::preflight::{Report, Severity, Status};
use crate::store::Store;
use std::path::Path;

/// A mission to record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewMission {
    pub service: Option<String>,
    pub layer: Option<String>,
    /// The check that failed, e.g. "preflight: port" or "boot: readiness".
    pub check: String,
    pub error: String,
    /// Up to 50 lines of the service's output (already redacted).
    pub output: Vec<String>,
    /// What must pass for the mission to resolve itself.
    pub fix_criteria: String,
    pub next_step: String,
}

/// Records a mission for every critical pre-flight failure (best effort: a broken
/// state store must not hide the NO-GO itself).
pub fn record_preflight(state_dir: &Path, report: &Report) {
    let Ok(store) = Store::open(state_dir) else {
        return;
    };
    for c in report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail && c.severity == Severity::Critical)
    {
        let _ = store.open_mission(&NewMission {
            service: c.service.clone(),
            layer: None,
            check: format!("preflight: {}", c.check),
            error: c.message.clone(),
            output: Vec::new(),
            fix_criteria: format!("the pre-flight check `{}` passes", c.check),
            next_step: c
                .hint
                .clone()
                .unwrap_or_else(|| "run `gantry preflight` for details".into()),
        });
    }
}

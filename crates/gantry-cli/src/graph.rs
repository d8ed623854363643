//! `gantry graph`: the boot plan as text, dot, mermaid or JSON.

use crate::{GraphFormat, Outcome};
use std::path::Path;

pub fn run(file: &Path, format: GraphFormat) -> anyhow::Result<Outcome> {
    let checked = match crate::load::load_valid(file, "invalid; run `gantry check` for details") {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    // Once boots are recorded, the critical path uses the last boot's real timings.
    let state_dir = gantry_state::StateDir::for_stack(file, &checked.spec.settings.state_dir);
    let timings = gantry_state::store::Store::open_existing(&state_dir)
        .map(|s| s.last_timings())
        .unwrap_or_default();
    let rebuilt;
    let plan = if timings.is_empty() {
        &checked.plan
    } else {
        rebuilt = gantry_plan::build(&checked.spec, &checked.source, &timings).0;
        &rebuilt
    };
    match format {
        GraphFormat::Text => crate::emit(&gantry_plan::render_text(plan)),
        GraphFormat::Dot => crate::emit(&gantry_plan::render_dot(plan)),
        GraphFormat::Mermaid => crate::emit(&gantry_plan::render_mermaid(plan)),
        GraphFormat::Json => crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&gantry_plan::render_json(plan))?
        )),
    }
    Ok(Outcome::Success)
}

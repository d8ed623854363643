//! `gantry graph`: the boot plan as text, dot, mermaid or JSON.

use crate::load::load;
use crate::{GraphFormat, Outcome};
use std::path::Path;

pub fn run(file: &Path, format: GraphFormat) -> anyhow::Result<Outcome> {
    let checked = match load(file, &Default::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    if checked.has_errors() {
        checked.print_diagnostics();
        eprintln!(
            "{}: invalid; run `gantry check` for details",
            checked.source.path
        );
        return Ok(Outcome::Usage);
    }
    let plan = &checked.plan;
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

//! `gantry export prometheus-rules`: the stack's alert rules as Prometheus alerting rules over
//! gantry's `/metrics` (what cannot be expressed there is named on stderr, not dropped silently).

use crate::Outcome;
use std::path::Path;

pub fn prometheus_rules(file: &Path) -> anyhow::Result<Outcome> {
    let checked = match crate::load::load_valid(file, "invalid; run `gantry check` for details") {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    // The units as they run: a replicated critical service is its instances.
    let critical: Vec<String> = checked
        .plan
        .units
        .iter()
        .filter(|u| u.service.priority == gantry_spec::Priority::Critical)
        .map(|u| u.name().to_string())
        .collect();
    let (yaml, warnings) = gantry_alerts::prometheus_rules(
        &gantry_alerts::default_rules(),
        &gantry_alerts::PromContext {
            critical_services: critical,
        },
    );
    for w in warnings {
        eprintln!("warning: {w}");
    }
    crate::emit(&yaml);
    Ok(Outcome::Success)
}

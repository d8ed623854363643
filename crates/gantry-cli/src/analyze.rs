//! `gantry analyze`: where the last boot spent its time — critical chain, blame, comparison with the previous boot, SVG waterfall.
//!
//! Only the command lives here (arguments, loading, printing, exit codes); the analysis itself
//! — boots read from the state store, critical chain, blame, comparison, text, JSON and SVG —
//! is `gantry_state::analyze`.

use crate::Outcome;
use crate::load::load;
use gantry_state::StateDir;
use gantry_state::analyze::{
    Deps, comparable, header, read_boots, render_blame, render_compare, render_svg, render_text,
    to_json,
};
use std::path::Path;

/// Output format of `gantry analyze`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AnalyzeFormat {
    Text,
    Json,
    Svg,
}

/// `gantry analyze`: reads the last decided boot (and the one before with `compare`) and prints
/// the critical chain (text), the blame list (`blame`), a comparison, JSON or an SVG waterfall.
pub fn run(
    file: &Path,
    format: AnalyzeFormat,
    compare: bool,
    blame: bool,
) -> anyhow::Result<Outcome> {
    if compare && format == AnalyzeFormat::Svg {
        eprintln!(
            "error: --compare cannot be drawn as SVG; the waterfall shows one boot\n  hint: use `gantry analyze --compare` (text) or `--compare --format json`"
        );
        return Ok(Outcome::Usage);
    }
    let checked = match load(file, &Default::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Outcome::Usage);
        }
    };
    if checked.has_errors() && format != AnalyzeFormat::Svg {
        eprintln!(
            "warning: {} has errors, so dependencies may be missing from the critical chain\n  hint: run `gantry check` for details",
            checked.source.path
        );
    }
    let deps = Deps::from_plan(&checked.plan);

    let state_dir = StateDir::for_stack(file, &checked.spec.settings.state_dir);
    // With --compare, enough history to find an earlier boot of the same selection.
    let boots = read_boots(&state_dir, if compare { 50 } else { 1 }).map_err(anyhow::Error::msg)?;
    let current = &boots[0]; // read_boots returns at least one or an error
    let previous = if compare {
        let Some(prev) = boots.get(1) else {
            anyhow::bail!(
                "only one decided boot (#{}) in {}: nothing to compare with\n  hint: run `gantry up` again, then `gantry analyze --compare`",
                current.id,
                state_dir.state_db().display()
            );
        };
        let Some(same) = comparable(current, &boots[1..]) else {
            anyhow::bail!(
                "boot #{} ran {} service(s), and no earlier boot ran the same ones (boot #{} ran {}): comparing them would report differences of selection as regressions\n  hint: run `gantry up` with the same --only / --except / --profile as boot #{}, then `gantry analyze --compare`",
                current.id,
                current.services.len(),
                prev.id,
                prev.services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                current.id
            );
        };
        Some(same)
    } else {
        None
    };

    let text = match format {
        AnalyzeFormat::Svg => render_svg(current, &deps),
        AnalyzeFormat::Json => {
            let value = to_json(current, &deps, blame, previous);
            format!("{}\n", serde_json::to_string_pretty(&value)?)
        }
        AnalyzeFormat::Text => match previous {
            Some(prev) => render_compare(current, prev, blame),
            None if blame => format!("{}\n\n{}", header(current), render_blame(&current.services)),
            None => render_text(current, &deps),
        },
    };
    crate::emit(&text);
    Ok(Outcome::Success)
}

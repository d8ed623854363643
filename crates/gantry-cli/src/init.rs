//! `gantry init`: writes a commented starter gantry.toml that passes `gantry check`.

use crate::Outcome;
use std::path::Path;

pub const STARTER: &str = include_str!("templates/starter.toml");

pub fn run(file: &Path, force: bool) -> anyhow::Result<Outcome> {
    if file.exists() && !force {
        eprintln!(
            "error: {} already exists\n  hint: pass --force to overwrite it, or -f OTHER.toml",
            file.display()
        );
        return Ok(Outcome::Usage);
    }
    std::fs::write(file, STARTER)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    println!(
        "wrote {}; next: `gantry check` then `gantry up`",
        file.display()
    );
    Ok(Outcome::Success)
}

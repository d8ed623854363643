//! `gantry import compose|procfile|process-compose FILE`: reads the file, hands it to
//! gantry-import, writes the gantry.toml (never over an existing file without --force) and
//! prints what did not carry over.

use crate::Outcome;
use std::path::{Path, PathBuf};

/// Which format `gantry import` reads.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    Compose,
    Procfile,
    ProcessCompose,
}

impl Format {
    fn label(self) -> &'static str {
        match self {
            Format::Compose => "docker compose",
            Format::Procfile => "Procfile",
            Format::ProcessCompose => "process-compose",
        }
    }
}

pub fn run(format: Format, source: &Path, output: &Path, force: bool) -> anyhow::Result<Outcome> {
    let shown = source.display().to_string();
    // A little over what the import takes, so a larger file gets the import's own message.
    let cap = gantry_import::yaml::MAX_BYTES as u64 + 1;
    let text = match gantry_state::bounded::read_capped_text(source, cap) {
        Ok(t) => t,
        Err(e) => {
            let hint = if e.io_kind() == Some(std::io::ErrorKind::NotFound) {
                "check the path; it is relative to the current directory"
            } else {
                "name the compose, process-compose or Procfile file itself"
            };
            eprintln!("error: {e}\n  hint: {hint}");
            return Ok(Outcome::Usage);
        }
    };
    if same_file(source, output) {
        eprintln!(
            "error: {} is the file being imported\n  hint: write the result elsewhere with -o gantry.toml",
            output.display()
        );
        return Ok(Outcome::Usage);
    }
    if output.exists() && !force {
        eprintln!(
            "error: {} already exists; nothing written\n  hint: pass --force to overwrite it, or -o OTHER.toml",
            output.display()
        );
        return Ok(Outcome::Usage);
    }
    let src_dir = dir_of(source);
    let out_dir = dir_of(output);
    let path_prefix = match (src_dir.canonicalize(), out_dir.canonicalize()) {
        (Ok(a), Ok(b)) if a == b => String::new(),
        (Ok(a), _) => format!("{}/", a.display()),
        _ => String::new(),
    };
    let options = gantry_import::Options {
        path_prefix,
        dotenv: src_dir.join(".env").is_file(),
    };
    let imported = match format {
        Format::Compose => gantry_import::compose::import(&text, &options),
        Format::Procfile => gantry_import::procfile::import(&text, &options),
        Format::ProcessCompose => gantry_import::process_compose::import(&text, &options),
    };
    let imported = match imported {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {}", e.render(&shown));
            return Ok(Outcome::Usage);
        }
    };
    let toml = imported.to_toml(&shown, format.label());
    // What we write must pass `gantry check`: checked the same way before writing, with every
    // variable set (a `${VAR:?message}` from the source is the user's to set).
    let checked = crate::load::check_text(
        &output.display().to_string(),
        toml.clone(),
        &Default::default(),
        &|_| Some("x".to_string()),
    );
    if checked.has_errors() {
        checked.print_diagnostics();
        eprintln!(
            "error: the translation of {shown} does not load (a bug in `gantry import`); nothing written\n  hint: report it with the file, or write gantry.toml by hand (`gantry init`)"
        );
        return Ok(Outcome::Failure);
    }
    if let Err(e) = std::fs::write(output, &toml) {
        eprintln!(
            "error: cannot write {}: {e}\n  hint: check the directory exists and is writable",
            output.display()
        );
        return Ok(Outcome::Failure);
    }
    let n = imported.file.services.len();
    eprintln!(
        "imported {n} service{} from {shown} into {}",
        if n == 1 { "" } else { "s" },
        output.display()
    );
    if !imported.notes.is_empty() {
        eprintln!(
            "{} thing(s) did not carry over as written (also at the top of {}):",
            imported.notes.len(),
            output.display()
        );
        for note in &imported.notes {
            eprintln!("  {}", note.render(&shown));
        }
    }
    eprintln!(
        "next: `gantry -f {} check`, then `gantry -f {} up`",
        output.display(),
        output.display()
    );
    Ok(Outcome::Success)
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

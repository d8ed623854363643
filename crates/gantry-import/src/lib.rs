//! Other tools' stack files translated into a gantry.toml: docker compose, process-compose and
//! Procfile. Pure: text in, gantry.toml text and a report out; the CLI does the reading and
//! writing. Everything that does not carry over is a [`Note`] with its line, never dropped.

mod common;
pub mod compose;
mod emit;
pub mod process_compose;
pub mod procfile;
pub mod yaml;

pub use common::{compose_duration, seconds};
pub use emit::{Cmd, Dep, GantryFile, Probe, Service};

/// One thing the import did not carry over as it was (or carried over approximately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// 1-based line in the source file, where one is known.
    pub line: Option<usize>,
    /// The service (as named in the source) it concerns.
    pub service: Option<String>,
    pub message: String,
}

impl Note {
    /// `FILE:LINE: SERVICE: message`.
    pub fn render(&self, file: &str) -> String {
        let mut out = file.to_string();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
        }
        out.push_str(": ");
        if let Some(s) = &self.service {
            out.push_str(s);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

/// Notes in the order of the file's lines; those about the whole file last.
fn sort_notes(notes: &mut [Note]) {
    notes.sort_by_key(|n| n.line.unwrap_or(usize::MAX));
}

/// The result of an import: the file to write and what did not carry over.
#[derive(Debug, Clone)]
pub struct Imported {
    pub file: GantryFile,
    pub notes: Vec<Note>,
}

impl Imported {
    /// The gantry.toml text: the report as comments at the top, then the tables.
    pub fn to_toml(&self, source_name: &str, format: &str) -> String {
        let source_name: String = source_name
            .chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
        let source_name = source_name.as_str();
        let mut out = format!("# Imported from {source_name} ({format}) by `gantry import`.\n");
        if self.notes.is_empty() {
            out.push_str("# Everything in it carried over.\n");
        } else {
            out.push_str(&format!(
                "# {} thing(s) did not carry over as written; review them:\n",
                self.notes.len()
            ));
            for n in &self.notes {
                // A TOML comment takes printable characters only.
                let rendered: String = n
                    .render(source_name)
                    .chars()
                    .map(|c| {
                        if c.is_control() && c != '\n' && c != '\t' {
                            '\u{fffd}'
                        } else {
                            c
                        }
                    })
                    .collect();
                for (i, line) in rendered.lines().enumerate() {
                    out.push_str(if i == 0 { "#   - " } else { "#     " });
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out.push('\n');
        out.push_str(&self.file.render());
        out
    }
}

/// A source file that cannot be imported at all: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: String,
}

impl ImportError {
    pub fn render(&self, file: &str) -> String {
        format!(
            "{file}:{}:{}: {}\n  hint: {}",
            self.line, self.col, self.message, self.hint
        )
    }
}

impl From<yaml::YamlError> for ImportError {
    fn from(e: yaml::YamlError) -> Self {
        ImportError {
            line: e.line,
            col: e.col,
            message: e.message,
            hint: "fix the file so that a YAML parser reads it (e.g. `docker compose config` or a YAML linter shows the same place)".into(),
        }
    }
}

/// What the caller knows about the file's surroundings (the import itself does no I/O).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Prefix for relative paths taken from the source (env files, working dirs), when the
    /// gantry.toml is written to another directory than the source: e.g. `../app/`.
    pub path_prefix: String,
    /// Procfile: a `.env` file exists next to it.
    pub dotenv: bool,
}

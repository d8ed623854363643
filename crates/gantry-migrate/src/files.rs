//! The migration directory: `NNNN_name.up.sql` / `NNNN_name.down.sql` pairs, their checksums,
//! and `new` (the next pair).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Error;

/// One migration found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// The number before the first `_` (`0003` → 3).
    pub version: i64,
    /// What follows the `_` (`0003_add_email` → `add_email`).
    pub name: String,
    /// The file name without `.up.sql` (`0003_add_email`), as shown in messages.
    pub stem: String,
    /// The up file.
    pub up: PathBuf,
    /// The down file, when there is one.
    pub down: Option<PathBuf>,
    /// SHA-256 of the up file's bytes, lowercase hex.
    pub checksum: String,
}

/// A freshly created pair of files (see [`crate::new_migration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMigration {
    pub version: i64,
    pub up: PathBuf,
    pub down: PathBuf,
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The migrations in `dir`, sorted by version. Files that are not `.sql` are ignored; a
/// `.sql` file whose name does not follow the pattern, two up files with one version, or a
/// down file without its up file is an error, all of them reported at once.
pub fn scan(dir: &Path) -> Result<Vec<MigrationFile>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::Config(if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "the migrations directory {} does not exist; create it, or write the first \
                 migration with `gantry migrate new NAME`",
                dir.display()
            )
        } else {
            format!(
                "cannot read the migrations directory {}: {e}",
                dir.display()
            )
        })
    })?;
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::Config(format!("cannot read {}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    let mut problems = Vec::new();
    let mut ups: BTreeMap<i64, (String, String)> = BTreeMap::new();
    let mut downs: BTreeMap<i64, (String, String)> = BTreeMap::new();
    for file in names {
        let Some((version, name, up)) = parse_name(&file) else {
            problems.push(format!(
                "{}: not a migration file name; use NNNN_name.up.sql and NNNN_name.down.sql",
                dir.join(&file).display()
            ));
            continue;
        };
        let map = if up { &mut ups } else { &mut downs };
        if let Some((other, _)) = map.get(&version) {
            problems.push(format!(
                "{} and {}: two {} files for version {version}; renumber one of them",
                dir.join(other).display(),
                dir.join(&file).display(),
                if up { "up" } else { "down" },
            ));
            continue;
        }
        map.insert(version, (file, name));
    }
    for (version, (file, name)) in &downs {
        match ups.get(version) {
            None => problems.push(format!(
                "{}: a down file without its up file {}",
                dir.join(file).display(),
                file.replace(".down.sql", ".up.sql")
            )),
            Some((up_file, up_name)) if up_name != name => problems.push(format!(
                "{}: the name does not match the up file {up_file}; rename it to {}",
                dir.join(file).display(),
                up_file.replace(".up.sql", ".down.sql")
            )),
            Some(_) => {}
        }
    }
    let mut out = Vec::new();
    for (version, (file, name)) in ups {
        let up = dir.join(&file);
        let bytes = match std::fs::read(&up) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("cannot read {}: {e}", up.display()));
                continue;
            }
        };
        let down = downs
            .get(&version)
            .filter(|(_, n)| *n == name)
            .map(|(f, _)| dir.join(f));
        out.push(MigrationFile {
            version,
            stem: file.trim_end_matches(".up.sql").to_string(),
            name,
            up,
            down,
            checksum: sha256_hex(&bytes),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::Config(problems.join("\n")))
    }
}

/// `0003_add_email.up.sql` → (3, "add_email", true).
fn parse_name(file: &str) -> Option<(i64, String, bool)> {
    let (stem, up) = if let Some(s) = file.strip_suffix(".up.sql") {
        (s, true)
    } else {
        (file.strip_suffix(".down.sql")?, false)
    };
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, name.to_string(), up))
}

/// `Add users!` → `add_users`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// Creates the next pair in `dir` (created when missing): version = the highest one + 1,
/// zero-padded to 4 digits (or to the width the directory already uses), name slugged
/// (`Add users` → `add_users`). Never overwrites a file.
pub fn new_migration(dir: &Path, name: &str) -> Result<NewMigration, Error> {
    let slugged = slug(name);
    if slugged.is_empty() {
        return Err(Error::Config(format!(
            "{name:?} is not a usable migration name; use letters, digits and underscores"
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
    let existing = scan(dir)?;
    let width = existing
        .iter()
        .map(|m| m.stem.split_once('_').map_or(4, |(d, _)| d.len()))
        .max()
        .unwrap_or(4)
        .max(4);
    let version = existing.last().map_or(1, |m| m.version + 1);
    let stem = format!("{version:0width$}_{slugged}");
    let up = dir.join(format!("{stem}.up.sql"));
    let down = dir.join(format!("{stem}.down.sql"));
    let up_text = format!(
        "-- {stem}: up. Applied once by `gantry migrate up`; never edit it after it was applied\n\
         -- (the checksum is recorded): change the schema in a new migration instead.\n\
         -- PostgreSQL and SQLite run it in one transaction; MySQL commits each DDL statement.\n\n"
    );
    let down_text = format!("-- {stem}: down. Reverts {stem}.up.sql (`gantry migrate down`).\n\n");
    write_new(&up, &up_text)?;
    if let Err(e) = write_new(&down, &down_text) {
        let _ = std::fs::remove_file(&up);
        return Err(e);
    }
    Ok(NewMigration { version, up, down })
}

fn write_new(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
}

/// True when `sql` holds nothing but whitespace and `--` / `#` line comments (MySQL rejects
/// an empty query, so such a file is recorded without being sent).
pub(crate) fn is_blank_sql(sql: &str) -> bool {
    sql.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with("--") || l.starts_with('#')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(
            parse_name("0003_add_email.up.sql"),
            Some((3, "add_email".into(), true))
        );
        assert_eq!(parse_name("12_x.down.sql"), Some((12, "x".into(), false)));
        assert_eq!(parse_name("0003.up.sql"), None);
        assert_eq!(parse_name("v3_x.up.sql"), None);
        assert_eq!(parse_name("0003_x.sql"), None);
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Add users!"), "add_users");
        assert_eq!(slug("--"), "");
    }

    #[test]
    fn blank_sql() {
        assert!(is_blank_sql("-- nothing\n\n  # also nothing\n"));
        assert!(!is_blank_sql("-- x\nSELECT 1;"));
    }
}

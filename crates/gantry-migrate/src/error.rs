//! What can go wrong, worded as what happened, where (file, version, database) and what to do.

use std::path::PathBuf;
use std::time::Duration;

use crate::catalog::{Drift, short};

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// A finding about the history, the files or the schema. Whether it blocks `up` depends on
/// its kind (see [`Problem::is_blocking`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A migration failed earlier (`success = false` in the history): nothing runs until
    /// `repair VERSION`.
    Dirty {
        version: i64,
        name: String,
        file: Option<PathBuf>,
    },
    /// An applied migration's up file changed since it was applied.
    Changed {
        version: i64,
        name: String,
        file: PathBuf,
        recorded: String,
        current: String,
    },
    /// An applied migration has no file any more (a warning: it cannot run again anyway).
    MissingFile { version: i64, name: String },
    /// The live schema differs from the recorded schema hash.
    Drift(Drift),
    /// A pending migration older than the newest applied one was applied (a warning).
    OutOfOrder {
        version: i64,
        name: String,
        newest_applied: i64,
    },
}

impl Problem {
    /// True for a problem that makes `up` NO-GO. Drift blocks only with
    /// `on_drift = "fail"` (`drift_blocks`); a missing file and out-of-order are warnings.
    pub fn is_blocking(&self, drift_blocks: bool) -> bool {
        match self {
            Problem::Dirty { .. } | Problem::Changed { .. } => true,
            Problem::Drift(_) => drift_blocks,
            Problem::MissingFile { .. } | Problem::OutOfOrder { .. } => false,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Dirty {
                version,
                name,
                file,
            } => {
                let shown = file
                    .as_ref()
                    .map_or_else(|| name.clone(), |p| p.display().to_string());
                write!(
                    f,
                    "version {version} ({shown}) failed earlier and is marked dirty \
                     (success = false); no migration runs until it is repaired.\n  \
                     hint: make the schema look as it did before that migration (on MySQL part \
                     of it may have been applied), fix the file, then run \
                     `gantry migrate repair {version}`: the dirty row is removed and the next \
                     `up` runs the migration again"
                )
            }
            Problem::Changed {
                version,
                file,
                recorded,
                current,
                ..
            } => write!(
                f,
                "version {version}: {} changed after it was applied (checksum recorded {}, \
                 file now {}).\n  hint: restore the file as it was applied (e.g. git checkout); \
                 put schema changes in a new migration (`gantry migrate new NAME`); if the edit \
                 changes nothing in the database (a comment, formatting), record the new \
                 checksum with `gantry migrate repair {version}`",
                file.display(),
                short(recorded),
                short(current)
            ),
            Problem::MissingFile { version, name } => write!(
                f,
                "version {version} ({name}) is applied but its up file is missing from the \
                 directory (is this code older than the database?)"
            ),
            Problem::Drift(d) => write!(
                f,
                "{d}\n  hint: someone changed the schema outside the migrations: undo the \
                 change, or put it in a migration; to accept the live schema as it is, run \
                 `gantry migrate repair --schema`"
            ),
            Problem::OutOfOrder {
                version,
                name,
                newest_applied,
            } => write!(
                f,
                "version {version} ({name}) was applied out of order: version \
                 {newest_applied} was already applied"
            ),
        }
    }
}

/// The errors of every operation. [`Error::is_usage`] tells configuration / usage errors
/// (exit code 2) from failures (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad URL, directory or file name.
    #[error("{0}")]
    Config(String),
    /// Reading or writing a local file failed.
    #[error("{0}")]
    Io(String),
    /// The database could not be reached or refused us.
    #[error("{0}")]
    Connect(String),
    /// The database does not exist and `create_database` is off (or the operation never
    /// creates one).
    #[error("{what}\n  hint: {hint}")]
    DatabaseMissing { what: String, hint: String },
    /// Another migrator held the lock for all of `lock_timeout`.
    #[error(
        "could not take the migration lock on {database} within {}: {}\n  hint: wait for the \
         other migrator to finish, or stop it if it is stuck; raise lock_timeout for long \
         migrations",
        fmt_duration(*waited),
        holder.as_deref().unwrap_or("held by a session this database does not name")
    )]
    Lock {
        database: String,
        waited: Duration,
        /// Who holds it, when the database says (pid, application name, client address).
        holder: Option<String>,
    },
    /// Blocking problems found before anything ran.
    #[error("{}", no_go(.0))]
    NoGo(Vec<Problem>),
    /// A migration's SQL failed; the history has a `success = false` row for it (up), or
    /// the row was kept (down).
    #[error("{}", migration_failed(self))]
    MigrationFailed {
        direction: Direction,
        version: i64,
        name: String,
        file: PathBuf,
        /// The database's error, with the line in the file when it says where.
        message: String,
        /// MySQL: DDL is not transactional, so statements before the failing one stay.
        transactional: bool,
        /// The dirty mark could not be written (the connection broke).
        not_recorded: Option<String>,
    },
    /// `down` reached a migration without a down file.
    #[error(
        "version {version} ({name}) has no down file: create {} to revert it",
        expected.display()
    )]
    NoDownFile {
        version: i64,
        name: String,
        expected: PathBuf,
    },
    /// `repair VERSION` for a version that is not in the history.
    #[error(
        "version {0} is not in the history: nothing to repair (run `gantry migrate status` to \
         see the applied versions)"
    )]
    NotInHistory(i64),
    /// Any other database error, with what was being done.
    #[error("{0}")]
    Database(String),
}

impl Error {
    /// Usage or configuration errors (exit code 2), as opposed to failures (1).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Config(_) | Error::NotInHistory(_))
    }
}

fn no_go(problems: &[Problem]) -> String {
    let mut out = format!(
        "NO-GO: {} problem{} before any migration ran:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n- ");
        out.push_str(&p.to_string());
    }
    out
}

fn migration_failed(e: &Error) -> String {
    let Error::MigrationFailed {
        direction,
        version,
        file,
        message,
        transactional,
        not_recorded,
        ..
    } = e
    else {
        return String::new();
    };
    let mut out = format!("version {version}: {} failed: {message}", file.display(),);
    match (direction, transactional) {
        (Direction::Up, true) => out.push_str(
            "\n  it ran in one transaction, which was rolled back: nothing of it was applied",
        ),
        (Direction::Up, false) => out.push_str(
            "\n  MySQL cannot roll back DDL: the statements before the failing one may have been \
             applied (the migration may be half-applied); check the schema",
        ),
        (Direction::Down, true) => out.push_str(
            "\n  it ran in one transaction, which was rolled back: the migration is still applied",
        ),
        (Direction::Down, false) => out.push_str(
            "\n  MySQL cannot roll back DDL: the statements before the failing one may have been \
             reverted; check the schema",
        ),
    }
    match (direction, transactional, not_recorded) {
        (_, _, Some(why)) => out.push_str(&format!(
            "\n  the failure could not be recorded in the history ({why})"
        )),
        (Direction::Up, _, None) => out.push_str(&format!(
            "\n  version {version} is now marked dirty; every `up` is NO-GO until you fix the \
             file{} and run `gantry migrate repair {version}`",
            if *transactional {
                ""
            } else {
                ", undo what was applied"
            }
        )),
        (Direction::Down, true, None) => {}
        (Direction::Down, false, None) => out.push_str(&format!(
            "\n  version {version} is now marked dirty; finish the revert by hand (the rest of \
             the down file), then `gantry migrate repair {version}` removes it from the history"
        )),
    }
    out
}

/// `250ms`, `1.5s`, `2m`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{:.1}s", d.as_secs_f64())
        }
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

//! What a [`Migrator`](crate::Migrator) takes (its options) and gives back (the reports of up,
//! down, status, verify and repair).

use super::*;

/// How a [`Migrator`] behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// `up` creates the database when it is missing (PostgreSQL: `CREATE DATABASE` from the
    /// `postgres` maintenance database; MySQL: `CREATE DATABASE IF NOT EXISTS`; SQLite: the
    /// file and its directory).
    pub create_database: bool,
    /// What `up` does when the live schema drifted from the recorded hash.
    pub on_drift: OnDrift,
    /// How long to wait for another migrator's lock.
    pub lock_timeout: Duration,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// Relative `dir` and `sqlite://` paths are taken from here (the stack file's directory
    /// for a migrate service).
    pub base_dir: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_database: false,
            on_drift: OnDrift::Fail,
            lock_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            base_dir: PathBuf::from("."),
        }
    }
}

impl Options {
    /// The options of a `kind = "migrate"` service whose file is in `base_dir`.
    pub fn from_spec(spec: &MigrateSpec, base_dir: &Path) -> Options {
        Options {
            create_database: spec.create_database,
            on_drift: spec.on_drift,
            lock_timeout: spec.lock_timeout.0,
            base_dir: base_dir.to_path_buf(),
            ..Options::default()
        }
    }
}

/// One migration that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub name: String,
    /// The file that ran (up or down).
    pub file: PathBuf,
    pub duration: Duration,
}

/// What [`Migrator::up`] did.
#[derive(Debug, Clone)]
pub struct UpReport {
    /// The database did not exist and was created.
    pub created_database: bool,
    /// What ran, in order.
    pub applied: Vec<Applied>,
    /// Migrations that were applied before.
    pub already_applied: usize,
    /// The recorded schema hash now.
    pub schema_hash: String,
    /// Non-blocking findings: drift with `on_drift = "warn"`, missing files, out of order.
    pub warnings: Vec<Problem>,
}

/// What [`Migrator::down`] did.
#[derive(Debug, Clone)]
pub struct DownReport {
    /// What was reverted, newest first.
    pub reverted: Vec<Applied>,
    pub schema_hash: String,
    /// Drift and changed up files do not stop a `down`; they are reported here.
    pub warnings: Vec<Problem>,
}

/// How an applied migration's file compares with the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Applied; the up file has the recorded checksum.
    Ok,
    /// Applied; the up file changed since.
    Changed,
    /// Applied; no up file any more.
    MissingFile,
    /// Not applied yet.
    Pending,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Ok => "ok",
            FileState::Changed => "changed",
            FileState::MissingFile => "missing file",
            FileState::Pending => "pending",
        }
    }
}

/// One version in [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    pub version: i64,
    pub name: String,
    /// `0003_add_email`: the file's stem, or the version padded to 4 digits and the name.
    pub label: String,
    pub file: Option<PathBuf>,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`; `None` when pending.
    pub applied_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub state: FileState,
    /// A failed migration (`success = false`).
    pub dirty: bool,
}

/// What [`Migrator::status`] found.
#[derive(Debug, Clone)]
pub struct Status {
    /// The URL, password masked.
    pub database: String,
    pub dir: PathBuf,
    /// Every version in the history or the directory, ascending.
    pub rows: Vec<StatusRow>,
    /// The recorded schema hash and when it was recorded, if any.
    pub recorded: Option<(String, String)>,
    pub live_hash: String,
    pub drift: Option<Drift>,
}

impl Status {
    pub fn pending(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.state == FileState::Pending)
            .count()
    }

    /// The status as JSON (`database`, `dir`, `migrations[]`, `schema`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "database": self.database,
            "dir": self.dir.display().to_string(),
            "migrations": self.rows.iter().map(|r| serde_json::json!({
                "version": r.version,
                "name": r.name,
                "file": r.file.as_ref().map(|f| f.display().to_string()),
                "applied_at": r.applied_at,
                "duration_ms": r.duration_ms,
                "checksum": r.state.as_str(),
                "dirty": r.dirty,
            })).collect::<Vec<_>>(),
            "schema": {
                "recorded_hash": self.recorded.as_ref().map(|r| &r.0),
                "recorded_at": self.recorded.as_ref().map(|r| &r.1),
                "live_hash": self.live_hash,
                "drift": self.drift.as_ref().map(|d| d.diff_lines()),
            },
        })
    }
}

/// What [`Migrator::verify`] found.
#[derive(Debug, Clone)]
pub struct Verify {
    pub status: Status,
    /// Dirty rows, changed files and drift (problems), missing files (warnings).
    pub problems: Vec<Problem>,
}

impl Verify {
    /// No dirty row, no changed file, no drift.
    pub fn is_ok(&self) -> bool {
        !self.problems.iter().any(|p| p.is_blocking(true))
    }
}

/// What [`Migrator::repair`] / [`Migrator::repair_schema`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// The dirty row was deleted; the next `up` runs the migration again.
    ClearedDirty { version: i64, name: String },
    /// The changed file's checksum was recorded (nothing ran).
    Rechecksummed {
        version: i64,
        name: String,
        file: PathBuf,
        old: String,
        new: String,
    },
    /// Nothing was wrong with this version (or nothing can be done: `reason`).
    NothingToRepair { version: i64, reason: String },
    /// The live schema was recorded as the new schema hash.
    SchemaRecorded {
        hash: String,
        /// The drift that was accepted, if there was one.
        accepted: Option<Drift>,
    },
}

//! SQL migrations for PostgreSQL, MySQL/MariaDB and SQLite: history, checksums, dirty state,
//! a lock for concurrent migrators, and the schema hash that detects drift.
//!
//! This is what a `kind = "migrate"` service runs (`gantry migrate up --service NAME`), and a
//! library for programs that migrate on their own:
//!
//! ```no_run
//! # async fn demo() -> Result<(), gantry_migrate::Error> {
//! use gantry_migrate::{Migrator, Options};
//! let m = Migrator::new("postgres://app@127.0.0.1:5432/app", "migrations", Options::default())?;
//! let report = m.up().await?;
//! println!("{} applied, schema hash {}", report.applied.len(), report.schema_hash);
//! # Ok(()) }
//! ```
//!
//! # Files
//!
//! `dir` holds `NNNN_name.up.sql` and, optionally, `NNNN_name.down.sql`. The version is the
//! number before the first `_`; they run in version order. A `.sql` file whose name does not
//! follow the pattern, two files with one version, or a down file without its up file is a
//! configuration error (all reported at once). [`new_migration`] writes the next pair.
//!
//! # History
//!
//! `gantry_schema_migrations (version, name, checksum, applied_at, duration_ms, success)`:
//! one row per applied migration; `checksum` is the SHA-256 of the up file as it ran.
//!
//! # Transactions
//!
//! PostgreSQL and SQLite have transactional DDL: each migration runs in its own transaction
//! (SQLite: a savepoint inside the run's exclusive transaction) together with its history
//! row, so a failed migration leaves nothing of itself behind. MySQL/MariaDB commit every DDL
//! statement on its own: a failed migration there may be *half-applied*; the error says which
//! statement failed and that the ones before it ran. Do not put `BEGIN` / `COMMIT` in the
//! files, nor statements that cannot run in a transaction (`CREATE INDEX CONCURRENTLY`,
//! `VACUUM`).
//!
//! # Dirty state and repair
//!
//! A failed migration leaves a `success = false` (dirty) row: every later [`Migrator::up`] is
//! NO-GO ([`Error::NoGo`]) until [`Migrator::repair`] for that version. An applied migration
//! whose up file changed (checksum mismatch) is NO-GO too, naming the file.
//!
//! [`Migrator::repair`]`(version)` fixes exactly one version, and does one of two things:
//!
//! - **dirty row** → the row is deleted: the migration counts as *not applied* and the next
//!   `up` runs it again. Before that, make the schema look as it did before the migration
//!   (needed on MySQL, where part of it may have run) and fix the file.
//! - **applied, file changed** → the file's current checksum is recorded. Nothing runs: use
//!   it only when the edit does not change what the migration does to the database
//!   (comments, formatting); schema changes belong in a new migration.
//!
//! A version that is applied, clean and unchanged is left alone ([`Repair::NothingToRepair`]);
//! a version not in the history is [`Error::NotInHistory`].
//!
//! # Lock
//!
//! Several migrators starting at once apply each migration exactly once: `up`, `down` and
//! `repair` run under a lock taken before the history is read and released at the end.
//! PostgreSQL: a session advisory lock, `pg_try_advisory_lock(key)` polled until
//! `lock_timeout`, the key derived from SHA-256 of `gantry-migrate:` + the database name.
//! MySQL: `GET_LOCK('gantry-migrate:<hash>', lock_timeout)`. SQLite: `BEGIN EXCLUSIVE` with a
//! busy timeout of `lock_timeout`. A timeout is [`Error::Lock`], naming the holder when the
//! database can tell (PostgreSQL: pid, `application_name`, client address from pg_locks and
//! pg_stat_activity; MySQL: the connection id, user and host from the processlist; SQLite:
//! the processes that have the file open). Every migrator connection identifies itself as
//! `gantry-migrate` (PostgreSQL `application_name`, MySQL `program_name`).
//!
//! # Schema hash and drift
//!
//! After migrating, the live catalog — tables, views, columns (type, nullability, default),
//! indexes, constraints, triggers; gantry's own tables excluded — is written as sorted text
//! lines (`column users.email text NOT NULL`) with their SHA-256 into `gantry_schema_hash`,
//! and read back (the read/write liveness check). Each `up`, `status` and `verify` compares
//! the live catalog with that record; a difference is [`Drift`] — someone changed the schema
//! outside the migrations — shown as a diff (`+ column users.nickname text NULL`). With
//! `on_drift = "fail"` it makes `up` NO-GO; with `"warn"` `up` goes on with a warning, and the
//! drift keeps being reported (migrations change the record only by what they changed).
//! [`Migrator::repair_schema`] accepts the live schema as the new record.
//!
//! Sources: pg_catalog (PostgreSQL), information_schema (MySQL), sqlite_master with the
//! table_info / index_list / foreign_key_list pragmas (SQLite; CHECK constraints are not
//! seen there). Functions, sequences, types and grants are not part of the hash.
//!
//! # Secrets
//!
//! Only [`Migrator::database`] (the URL with its password masked) is ever put in a message,
//! and every text from a client library is scrubbed of the password.

mod backend;
mod catalog;
mod error;
mod files;
mod types;
mod url;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gantry_spec::{MigrateSpec, OnDrift};

use backend::{Conn, HistoryRow, Recorded};
pub use catalog::{Catalog, Drift};
pub use error::{Direction, Error, Problem};
pub use files::{MigrationFile, NewMigration, new_migration};
pub use types::*;
pub use url::{Backend, redact_url};

/// The history table.
pub const HISTORY_TABLE: &str = "gantry_schema_migrations";
/// The table holding the recorded schema hash and catalog (one row).
pub const HASH_TABLE: &str = "gantry_schema_hash";

enum Op {
    Up,
    Down(usize),
    Status,
    Verify,
    Repair(i64),
    RepairSchema,
}

enum Done {
    Up(UpReport),
    Down(DownReport),
    Status(Status),
    Verify(Verify),
    Repair(Repair),
}

/// Migrates one database from one directory. Cheap to clone; every operation opens its own
/// connection and closes it before returning. SQLite work runs on tokio's blocking pool, so
/// every method must be called within a tokio runtime.
#[derive(Debug, Clone)]
pub struct Migrator {
    target: url::Target,
    dir: PathBuf,
    options: Options,
}

impl Migrator {
    /// A migrator for `url` (`postgres://`, `postgresql://`, `mysql://`, `mariadb://`,
    /// `sqlite://PATH`) and the migration directory `dir`; relative paths are taken from
    /// `options.base_dir`. Fails only on a URL of another kind.
    pub fn new(url: &str, dir: impl AsRef<Path>, options: Options) -> Result<Migrator, Error> {
        let target = url::Target::parse(url, &options.base_dir)?;
        let dir = options.base_dir.join(dir);
        Ok(Migrator {
            target,
            dir,
            options,
        })
    }

    /// The migrator of a `kind = "migrate"` service whose stack file is in `base_dir`.
    pub fn from_spec(spec: &MigrateSpec, base_dir: &Path) -> Result<Migrator, Error> {
        Migrator::new(
            &spec.database.value,
            &spec.dir,
            Options::from_spec(spec, base_dir),
        )
    }

    /// The database URL with its password masked (SQLite: `sqlite://` + the absolute path).
    pub fn database(&self) -> &str {
        &self.target.shown
    }

    /// The migration directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn backend(&self) -> Backend {
        self.target.backend
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The migrations in the directory, by version (no database needed).
    pub fn files(&self) -> Result<Vec<MigrationFile>, Error> {
        files::scan(&self.dir)
    }

    /// Applies every pending migration in version order, under the lock, after checking the
    /// history (dirty rows, changed files) and the schema hash (drift); then records the
    /// schema hash and reads it back. [`Error::NoGo`] lists every blocking problem at once;
    /// [`Error::MigrationFailed`] is a migration that failed (now marked dirty).
    pub async fn up(&self) -> Result<UpReport, Error> {
        match self.run(Op::Up).await? {
            Done::Up(r) => Ok(r),
            _ => Err(internal()),
        }
    }

    /// Reverts the `n` newest applied migrations, newest first: runs each down file and
    /// deletes its history row (in one transaction where the database allows). Refuses while
    /// a dirty row exists; a migration without a down file stops it before anything runs.
    pub async fn down(&self, n: usize) -> Result<DownReport, Error> {
        match self.run(Op::Down(n)).await? {
            Done::Down(r) => Ok(r),
            _ => Err(internal()),
        }
    }

    /// Every version with its state, and the schema hash comparison. Reads only; takes no
    /// lock and creates nothing.
    pub async fn status(&self) -> Result<Status, Error> {
        match self.run(Op::Status).await? {
            Done::Status(r) => Ok(r),
            _ => Err(internal()),
        }
    }

    /// [`Migrator::status`] plus its problems: dirty rows, changed files and drift (whatever
    /// `on_drift` says). [`Verify::is_ok`] is the verdict.
    pub async fn verify(&self) -> Result<Verify, Error> {
        match self.run(Op::Verify).await? {
            Done::Verify(r) => Ok(r),
            _ => Err(internal()),
        }
    }

    /// Repairs one version: deletes its dirty row, or records its changed file's checksum
    /// (see the crate docs for the exact semantics).
    pub async fn repair(&self, version: i64) -> Result<Repair, Error> {
        match self.run(Op::Repair(version)).await? {
            Done::Repair(r) => Ok(r),
            _ => Err(internal()),
        }
    }

    /// Records the live schema as the schema hash, accepting any drift.
    pub async fn repair_schema(&self) -> Result<Repair, Error> {
        match self.run(Op::RepairSchema).await? {
            Done::Repair(r) => Ok(r),
            _ => Err(internal()),
        }
    }

    async fn run(&self, op: Op) -> Result<Done, Error> {
        if self.target.backend != Backend::Sqlite {
            return self.exec(op).await;
        }
        // rusqlite blocks: run the whole operation on the blocking pool. Nothing in the
        // SQLite path waits on tokio I/O or timers, so `block_on` there needs no driver.
        let this = self.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || handle.block_on(this.exec(op)))
            .await
            .map_err(|e| Error::Database(format!("the SQLite worker failed: {e}")))?
    }

    async fn exec(&self, op: Op) -> Result<Done, Error> {
        let files = files::scan(&self.dir)?;
        let create = matches!(op, Op::Up) && self.options.create_database;
        let (mut conn, created) = Conn::open(&self.target, &self.options, create).await?;
        let result = match op {
            Op::Status => self.status_on(&mut conn, &files).await.map(Done::Status),
            Op::Verify => self.verify_on(&mut conn, &files).await.map(Done::Verify),
            op => self.locked(&mut conn, &files, op, created).await,
        };
        conn.close().await;
        result
    }

    async fn locked(
        &self,
        conn: &mut Conn,
        files: &[MigrationFile],
        op: Op,
        created: bool,
    ) -> Result<Done, Error> {
        conn.lock(self.options.lock_timeout).await?;
        let result = async {
            conn.ensure_tables().await?;
            match op {
                Op::Up => self.up_locked(conn, files, created).await.map(Done::Up),
                Op::Down(n) => self.down_locked(conn, files, n).await.map(Done::Down),
                Op::Repair(v) => self.repair_locked(conn, files, v).await.map(Done::Repair),
                Op::RepairSchema => self.repair_schema_locked(conn).await.map(Done::Repair),
                Op::Status | Op::Verify => Err(internal()),
            }
        }
        .await;
        let unlocked = conn.unlock().await;
        let done = result?;
        unlocked?;
        Ok(done)
    }

    async fn up_locked(
        &self,
        conn: &mut Conn,
        files: &[MigrationFile],
        created: bool,
    ) -> Result<UpReport, Error> {
        let history = conn.history().await?;
        let recorded = usable(conn.recorded().await?);
        let live_before = conn.catalog().await?;
        let mut problems = history_problems(files, &history);
        if let Some(r) = &recorded
            && let Some(d) = Drift::between(&r.catalog, &live_before)
        {
            problems.push(Problem::Drift(d));
        }
        let drift_blocks = self.options.on_drift == OnDrift::Fail;
        let (blocking, mut warnings): (Vec<Problem>, Vec<Problem>) = problems
            .into_iter()
            .partition(|p| p.is_blocking(drift_blocks));
        if !blocking.is_empty() {
            return Err(Error::NoGo(blocking));
        }
        let known: BTreeSet<i64> = history.iter().map(|h| h.version).collect();
        let newest = history.iter().map(|h| h.version).max();
        let transactional = self.target.backend.transactional_ddl();
        let mut applied = Vec::new();
        let mut before_this = live_before.clone();
        for m in files.iter().filter(|m| !known.contains(&m.version)) {
            let sql = read_sql(&m.up)?;
            // Record the checksum of exactly what runs (the file may have changed since
            // the directory was read).
            let m = MigrationFile {
                checksum: files::sha256_hex(sql.as_bytes()),
                ..m.clone()
            };
            if let Some(n) = newest
                && m.version < n
            {
                warnings.push(Problem::OutOfOrder {
                    version: m.version,
                    name: m.name.clone(),
                    newest_applied: n,
                });
            }
            if !transactional && !applied.is_empty() {
                before_this = conn.catalog().await?;
            }
            match conn.apply(&m, &sql).await {
                Ok(ms) => applied.push(Applied {
                    version: m.version,
                    name: m.name.clone(),
                    file: m.up.clone(),
                    duration: Duration::from_millis(ms.max(0) as u64),
                }),
                Err(f) => {
                    // Keep the record in step with the migrations that did run: the schema
                    // now (rolled back) or, on MySQL, as it was before this one.
                    let now = if transactional {
                        conn.catalog().await.ok()
                    } else {
                        Some(before_this)
                    };
                    if let Some(now) = now {
                        let _ = conn
                            .record(&expected(recorded.as_ref(), &live_before, &now))
                            .await;
                    }
                    return Err(Error::MigrationFailed {
                        direction: Direction::Up,
                        version: m.version,
                        name: m.name.clone(),
                        file: m.up.clone(),
                        message: f.message,
                        transactional,
                        not_recorded: f.not_recorded,
                    });
                }
            }
        }
        let live_after = if applied.is_empty() {
            live_before.clone()
        } else {
            conn.catalog().await?
        };
        let record = expected(recorded.as_ref(), &live_before, &live_after);
        let schema_hash = self.record_and_read_back(conn, &record).await?;
        Ok(UpReport {
            created_database: created,
            already_applied: known.len(),
            applied,
            schema_hash,
            warnings,
        })
    }

    /// Writes the schema hash row and reads it back: the read/write liveness check.
    async fn record_and_read_back(
        &self,
        conn: &mut Conn,
        record: &Catalog,
    ) -> Result<String, Error> {
        let hash = record.hash();
        conn.record(record).await?;
        let back = conn.recorded().await?.map(|r| r.hash);
        if back.as_deref() != Some(hash.as_str()) {
            return Err(Error::Database(format!(
                "liveness check failed on {}: wrote schema hash {} to {HASH_TABLE}, read back {}",
                self.target.shown,
                catalog::short(&hash),
                back.as_deref().map_or("nothing", catalog::short)
            )));
        }
        Ok(hash)
    }

    async fn down_locked(
        &self,
        conn: &mut Conn,
        files: &[MigrationFile],
        n: usize,
    ) -> Result<DownReport, Error> {
        let history = conn.history().await?;
        let all = history_problems(files, &history);
        let dirty: Vec<Problem> = all
            .iter()
            .filter(|p| matches!(p, Problem::Dirty { .. }))
            .cloned()
            .collect();
        if !dirty.is_empty() {
            return Err(Error::NoGo(dirty));
        }
        let recorded = usable(conn.recorded().await?);
        let live_before = conn.catalog().await?;
        let mut warnings = Vec::new();
        if let Some(r) = &recorded
            && let Some(d) = Drift::between(&r.catalog, &live_before)
        {
            warnings.push(Problem::Drift(d));
        }
        // Plan first: a missing down file stops everything before anything runs.
        let mut plan = Vec::new();
        for h in history.iter().rev().filter(|h| h.success).take(n) {
            let file = files.iter().find(|f| f.version == h.version);
            let Some(down) = file.and_then(|f| f.down.clone()) else {
                let stem = file.map_or_else(
                    || format!("{:04}_{}", h.version, h.name),
                    |f| f.stem.clone(),
                );
                return Err(Error::NoDownFile {
                    version: h.version,
                    name: h.name.clone(),
                    expected: self.dir.join(format!("{stem}.down.sql")),
                });
            };
            if let Some(f) = file
                && f.checksum != h.checksum
            {
                warnings.push(Problem::Changed {
                    version: h.version,
                    name: h.name.clone(),
                    file: f.up.clone(),
                    recorded: h.checksum.clone(),
                    current: f.checksum.clone(),
                });
            }
            plan.push((h, down));
        }
        let transactional = self.target.backend.transactional_ddl();
        let mut reverted = Vec::new();
        let mut before_this = live_before.clone();
        for (h, down) in plan {
            let sql = read_sql(&down)?;
            if !transactional && !reverted.is_empty() {
                before_this = conn.catalog().await?;
            }
            match conn.revert(h.version, &sql).await {
                Ok(ms) => reverted.push(Applied {
                    version: h.version,
                    name: h.name.clone(),
                    file: down,
                    duration: Duration::from_millis(ms.max(0) as u64),
                }),
                Err(f) => {
                    let mut not_recorded = f.not_recorded;
                    let now = if transactional {
                        conn.catalog().await.ok()
                    } else {
                        if let Err(e) = conn.mark_dirty(h.version).await {
                            not_recorded = Some(e.to_string());
                        }
                        Some(before_this)
                    };
                    if let Some(now) = now {
                        let _ = conn
                            .record(&expected(recorded.as_ref(), &live_before, &now))
                            .await;
                    }
                    return Err(Error::MigrationFailed {
                        direction: Direction::Down,
                        version: h.version,
                        name: h.name.clone(),
                        file: down,
                        message: f.message,
                        transactional,
                        not_recorded,
                    });
                }
            }
        }
        let live_after = if reverted.is_empty() {
            live_before.clone()
        } else {
            conn.catalog().await?
        };
        let record = expected(recorded.as_ref(), &live_before, &live_after);
        let schema_hash = self.record_and_read_back(conn, &record).await?;
        Ok(DownReport {
            reverted,
            schema_hash,
            warnings,
        })
    }

    async fn repair_locked(
        &self,
        conn: &mut Conn,
        files: &[MigrationFile],
        version: i64,
    ) -> Result<Repair, Error> {
        let history = conn.history().await?;
        let Some(row) = history.iter().find(|h| h.version == version) else {
            return Err(Error::NotInHistory(version));
        };
        if !row.success {
            conn.delete_row(version).await?;
            return Ok(Repair::ClearedDirty {
                version,
                name: row.name.clone(),
            });
        }
        match files.iter().find(|f| f.version == version) {
            None => Ok(Repair::NothingToRepair {
                version,
                reason: format!(
                    "it is applied but its up file is missing from {}; restore the file",
                    self.dir.display()
                ),
            }),
            Some(f) if f.checksum != row.checksum => {
                conn.set_checksum(version, &f.checksum).await?;
                Ok(Repair::Rechecksummed {
                    version,
                    name: row.name.clone(),
                    file: f.up.clone(),
                    old: row.checksum.clone(),
                    new: f.checksum.clone(),
                })
            }
            Some(_) => Ok(Repair::NothingToRepair {
                version,
                reason: "it is applied, not dirty, and its file has the recorded checksum".into(),
            }),
        }
    }

    async fn repair_schema_locked(&self, conn: &mut Conn) -> Result<Repair, Error> {
        let recorded = usable(conn.recorded().await?);
        let live = conn.catalog().await?;
        let accepted = recorded.and_then(|r| Drift::between(&r.catalog, &live));
        let hash = self.record_and_read_back(conn, &live).await?;
        Ok(Repair::SchemaRecorded { hash, accepted })
    }

    async fn status_on(&self, conn: &mut Conn, files: &[MigrationFile]) -> Result<Status, Error> {
        let history = conn.history().await?;
        let recorded = usable(conn.recorded().await?);
        let live = conn.catalog().await?;
        let mut versions: BTreeSet<i64> = history.iter().map(|h| h.version).collect();
        versions.extend(files.iter().map(|f| f.version));
        let rows = versions
            .into_iter()
            .map(|v| {
                let h = history.iter().find(|h| h.version == v);
                let f = files.iter().find(|f| f.version == v);
                let state = match (h, f) {
                    (None, _) => FileState::Pending,
                    (Some(_), None) => FileState::MissingFile,
                    (Some(h), Some(f)) if h.checksum != f.checksum => FileState::Changed,
                    _ => FileState::Ok,
                };
                let name = h.map_or_else(
                    || f.map(|f| f.name.clone()).unwrap_or_default(),
                    |h| h.name.clone(),
                );
                StatusRow {
                    version: v,
                    label: f.map_or_else(|| format!("{v:04}_{name}"), |f| f.stem.clone()),
                    name,
                    file: f.map(|f| f.up.clone()),
                    applied_at: h.map(|h| h.applied_at.clone()),
                    duration_ms: h.map(|h| h.duration_ms),
                    state,
                    dirty: h.is_some_and(|h| !h.success),
                }
            })
            .collect();
        let drift = recorded
            .as_ref()
            .and_then(|r| Drift::between(&r.catalog, &live));
        Ok(Status {
            database: self.target.shown.clone(),
            dir: self.dir.clone(),
            rows,
            recorded: recorded.map(|r| (r.hash, r.recorded_at)),
            live_hash: live.hash(),
            drift,
        })
    }

    async fn verify_on(&self, conn: &mut Conn, files: &[MigrationFile]) -> Result<Verify, Error> {
        let history = conn.history().await?;
        let status = self.status_on(conn, files).await?;
        let mut problems = history_problems(files, &history);
        if let Some(d) = &status.drift {
            problems.push(Problem::Drift(d.clone()));
        }
        Ok(Verify { status, problems })
    }
}

fn internal() -> Error {
    Error::Database("internal error: an operation answered with another one's result".into())
}

/// A recorded catalog in the current format; an older format is re-recorded, not compared.
fn usable(r: Option<Recorded>) -> Option<Recorded> {
    r.filter(|r| r.format == catalog::FORMAT)
}

/// The catalog to record after the live schema went from `before` to `after`: the old record
/// changed the same way (so drift stays visible), or `after` when nothing was recorded yet.
fn expected(recorded: Option<&Recorded>, before: &Catalog, after: &Catalog) -> Catalog {
    match recorded {
        Some(r) => r.catalog.with_changes(before, after),
        None => after.clone(),
    }
}

/// Dirty rows, changed files and missing files, by version.
fn history_problems(files: &[MigrationFile], history: &[HistoryRow]) -> Vec<Problem> {
    let mut out = Vec::new();
    for h in history {
        let file = files.iter().find(|f| f.version == h.version);
        if !h.success {
            out.push(Problem::Dirty {
                version: h.version,
                name: h.name.clone(),
                file: file.map(|f| f.up.clone()),
            });
            continue;
        }
        match file {
            None => out.push(Problem::MissingFile {
                version: h.version,
                name: h.name.clone(),
            }),
            Some(f) if f.checksum != h.checksum => out.push(Problem::Changed {
                version: h.version,
                name: h.name.clone(),
                file: f.up.clone(),
                recorded: h.checksum.clone(),
                current: f.checksum.clone(),
            }),
            Some(_) => {}
        }
    }
    out
}

fn read_sql(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))
}

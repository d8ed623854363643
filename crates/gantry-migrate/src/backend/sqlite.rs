//! SQLite: rusqlite on a file. The lock is the whole run's `BEGIN EXCLUSIVE` transaction
//! (waiting up to `lock_timeout` through the busy timeout); each migration is a savepoint
//! inside it, so a failed one is rolled back alone and the ones before it stay. The catalog
//! comes from sqlite_master and the table_info / index_list / foreign_key_list pragmas.
//!
//! The calls block; the migrator runs SQLite work on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::{Failure, HistoryRow, Recorded, ms_since};
use crate::catalog::{Catalog, FORMAT, OWN_TABLES, one_line};
use crate::files::MigrationFile;
use crate::url::Target;
use crate::{Error, HASH_TABLE, HISTORY_TABLE, Options};

pub(crate) struct Lite {
    conn: Connection,
    target: Target,
    path: PathBuf,
    in_tx: bool,
}

const SAVEPOINT: &str = "gantry_migration";

impl Lite {
    pub fn open(t: &Target, o: &Options, create: bool) -> Result<(Lite, bool), Error> {
        let path = t.path.clone().unwrap_or_default();
        let exists = path.exists();
        if !exists && !create {
            return Err(Error::DatabaseMissing {
                what: format!("the database file {} does not exist", path.display()),
                hint: "set create_database = true on the migrate service, or check the \
                       sqlite:// path (relative paths are taken from the stack file's directory)"
                    .into(),
            });
        }
        let mut created = false;
        if !exists {
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::Io(format!("cannot create {}: {e}", parent.display())))?;
            }
            // An empty file is a new database to SQLite; `create_new` makes exactly one of
            // several migrators starting at once the creator.
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => created = true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Error::Io(format!("cannot create {}: {e}", path.display())));
                }
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| Error::Connect(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(o.lock_timeout)
            .map_err(|e| Error::Connect(format!("cannot open {}: {e}", path.display())))?;
        Ok((
            Lite {
                conn,
                target: t.clone(),
                path,
                in_tx: false,
            },
            created,
        ))
    }

    fn err(&self, what: &str, e: &rusqlite::Error) -> Error {
        let hint = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                " (locked by another connection)"
            }
            Some(ErrorCode::ReadOnly) => " (the database is read-only)",
            _ => "",
        };
        Error::Database(format!("{what} on {}: {e}{hint}", self.target.shown))
    }

    pub async fn lock(&mut self, timeout: Duration) -> Result<(), Error> {
        let _ = self.conn.busy_timeout(timeout);
        match self.conn.execute_batch("BEGIN EXCLUSIVE") {
            Ok(()) => {
                self.in_tx = true;
                Ok(())
            }
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) =>
            {
                Err(Error::Lock {
                    database: self.target.shown.clone(),
                    waited: timeout,
                    holder: holders(&self.path),
                })
            }
            Err(e) => Err(self.err("taking the migration lock (BEGIN EXCLUSIVE)", &e)),
        }
    }

    pub async fn unlock(&mut self) -> Result<(), Error> {
        if std::mem::take(&mut self.in_tx) {
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| self.err("committing", &e))?;
        }
        Ok(())
    }

    pub async fn ensure_tables(&mut self) -> Result<(), Error> {
        self.conn
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    checksum TEXT NOT NULL,
                    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
                    duration_ms INTEGER NOT NULL,
                    success INTEGER NOT NULL
                );
                CREATE TABLE IF NOT EXISTS {HASH_TABLE} (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    hash TEXT NOT NULL,
                    catalog TEXT NOT NULL,
                    format INTEGER NOT NULL,
                    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
                    checked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
                );"
            ))
            .map_err(|e| self.err("creating the history tables", &e))
    }

    fn has_table(&self, name: &str) -> Result<bool, Error> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(&format!("looking for {name}"), &e))
    }

    pub async fn history(&mut self) -> Result<Vec<HistoryRow>, Error> {
        if !self.has_table(HISTORY_TABLE)? {
            return Ok(Vec::new());
        }
        let what = format!("reading {HISTORY_TABLE}");
        let read = || -> rusqlite::Result<Vec<HistoryRow>> {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT version, name, checksum, applied_at, duration_ms, success \
                 FROM {HISTORY_TABLE} ORDER BY version"
            ))?;
            let rows = stmt.query_map([], |r| {
                Ok(HistoryRow {
                    version: r.get(0)?,
                    name: r.get(1)?,
                    checksum: r.get(2)?,
                    applied_at: r.get(3)?,
                    duration_ms: r.get(4)?,
                    success: r.get::<_, i64>(5)? != 0,
                })
            })?;
            rows.collect()
        };
        read().map_err(|e| self.err(&what, &e))
    }

    fn insert(&self, m: &MigrationFile, ms: i64, success: bool) -> rusqlite::Result<()> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO {HISTORY_TABLE} (version, name, checksum, duration_ms, success) \
                     VALUES (?1, ?2, ?3, ?4, ?5)"
                ),
                (m.version, &m.name, &m.checksum, ms, success as i64),
            )
            .map(drop)
    }

    /// Runs `body` (which runs `sql`) in a savepoint: released on success, rolled back on
    /// failure.
    fn in_savepoint(
        &self,
        sql: &str,
        body: impl FnOnce() -> rusqlite::Result<()>,
    ) -> Result<(), Failure> {
        let fail = |e: rusqlite::Error| Failure {
            message: e.to_string(),
            not_recorded: None,
        };
        self.conn
            .execute_batch(&format!("SAVEPOINT {SAVEPOINT}"))
            .map_err(fail)?;
        match body() {
            Ok(()) => self
                .conn
                .execute_batch(&format!("RELEASE {SAVEPOINT}"))
                .map_err(fail),
            Err(e) => {
                let undone = self
                    .conn
                    .execute_batch(&format!("ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}"));
                Err(Failure {
                    message: describe_in(&e, sql),
                    not_recorded: undone.err().map(|e| e.to_string()),
                })
            }
        }
    }

    pub async fn apply(&mut self, m: &MigrationFile, sql: &str) -> Result<i64, Failure> {
        let start = Instant::now();
        let r = self.in_savepoint(sql, || {
            if !crate::files::is_blank_sql(sql) {
                self.conn.execute_batch(sql)?;
            }
            self.insert(m, ms_since(start), true)
        });
        match r {
            Ok(()) => Ok(ms_since(start)),
            Err(mut f) => {
                if f.not_recorded.is_none() {
                    f.not_recorded = self
                        .insert(m, ms_since(start), false)
                        .err()
                        .map(|e| e.to_string());
                }
                Err(f)
            }
        }
    }

    pub async fn revert(&mut self, version: i64, sql: &str) -> Result<i64, Failure> {
        let start = Instant::now();
        self.in_savepoint(sql, || {
            if !crate::files::is_blank_sql(sql) {
                self.conn.execute_batch(sql)?;
            }
            self.conn
                .execute(
                    &format!("DELETE FROM {HISTORY_TABLE} WHERE version = ?1"),
                    [version],
                )
                .map(drop)
        })?;
        Ok(ms_since(start))
    }

    fn exec(&self, what: &str, sql: &str, params: impl rusqlite::Params) -> Result<(), Error> {
        self.conn
            .execute(sql, params)
            .map(drop)
            .map_err(|e| self.err(what, &e))
    }

    pub async fn mark_dirty(&mut self, version: i64) -> Result<(), Error> {
        self.exec(
            "marking the migration dirty",
            &format!("UPDATE {HISTORY_TABLE} SET success = 0 WHERE version = ?1"),
            [version],
        )
    }

    pub async fn delete_row(&mut self, version: i64) -> Result<(), Error> {
        self.exec(
            &format!("deleting version {version} from {HISTORY_TABLE}"),
            &format!("DELETE FROM {HISTORY_TABLE} WHERE version = ?1"),
            [version],
        )
    }

    pub async fn set_checksum(&mut self, version: i64, checksum: &str) -> Result<(), Error> {
        self.exec(
            &format!("updating the checksum of version {version}"),
            &format!("UPDATE {HISTORY_TABLE} SET checksum = ?2 WHERE version = ?1"),
            (version, checksum),
        )
    }

    pub async fn catalog(&mut self) -> Result<Catalog, Error> {
        self.read_catalog()
            .map_err(|e| self.err("reading the catalog (sqlite_master, pragmas)", &e))
    }

    fn read_catalog(&self) -> rusqlite::Result<Catalog> {
        let c = &self.conn;
        let objects: Vec<(String, String, String, String)> = {
            let mut stmt = c.prepare(
                "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master \
                 WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut lines = Vec::new();
        for (ty, name, table, sql) in &objects {
            if OWN_TABLES.contains(&table.as_str()) {
                continue;
            }
            match ty.as_str() {
                "table" => {
                    lines.push(format!("table {name}"));
                    self.table_lines(name, &objects, &mut lines)?;
                }
                "view" => lines.push(format!("view {name} {}", one_line(sql))),
                "trigger" => lines.push(format!("trigger {table}.{name} {}", one_line(sql))),
                // Indexes are listed per table (index_list also has the automatic ones).
                _ => {}
            }
        }
        Ok(Catalog::from_lines(lines))
    }

    fn table_lines(
        &self,
        table: &str,
        objects: &[(String, String, String, String)],
        lines: &mut Vec<String>,
    ) -> rusqlite::Result<()> {
        let c = &self.conn;
        let mut stmt =
            c.prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")?;
        let cols = stmt.query_map([table], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        for col in cols {
            let (name, ty, notnull, default, pk) = col?;
            let mut line = format!(
                "column {table}.{name} {} {}",
                if ty.is_empty() { "ANY" } else { &ty },
                if notnull != 0 { "NOT NULL" } else { "NULL" }
            );
            if let Some(d) = default {
                line.push_str(&format!(" DEFAULT {d}"));
            }
            if pk > 0 {
                line.push_str(&format!(" PRIMARY KEY({pk})"));
            }
            lines.push(line);
        }
        let mut stmt = c.prepare(
            "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1) ORDER BY name",
        )?;
        let indexes: Vec<(String, i64, String, i64)> = stmt
            .query_map([table], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (name, unique, origin, partial) in indexes {
            let mut stmt = c.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
            let cols: Vec<String> = stmt
                .query_map([&name], |r| r.get::<_, Option<String>>(0))?
                .map(|c| c.map(|c| c.unwrap_or_else(|| "(expression)".into())))
                .collect::<rusqlite::Result<_>>()?;
            let mut line = format!(
                "index {table}.{name} {}({})",
                if unique != 0 { "UNIQUE " } else { "" },
                cols.join(", ")
            );
            match origin.as_str() {
                "pk" => line.push_str(" PRIMARY KEY"),
                "u" => line.push_str(" UNIQUE constraint"),
                _ => {}
            }
            if partial != 0
                && let Some((_, _, _, sql)) = objects.iter().find(|o| o.1 == name)
                && let Some((_, cond)) = sql.rsplit_once(" WHERE ")
            {
                line.push_str(&format!(" WHERE {}", one_line(cond)));
            }
            lines.push(line);
        }
        let mut stmt = c.prepare(
            "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete \
             FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
        )?;
        let fks: Vec<(i64, String, String, Option<String>, String, String)> = stmt
            .query_map([table], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut i = 0;
        while i < fks.len() {
            let id = fks[i].0;
            let group: Vec<_> = fks[i..].iter().take_while(|f| f.0 == id).collect();
            i += group.len();
            let from: Vec<&str> = group.iter().map(|f| f.2.as_str()).collect();
            let to: Vec<&str> = group.iter().map(|f| f.3.as_deref().unwrap_or("")).collect();
            let f = group[0];
            lines.push(format!(
                "constraint {table}.fk_{} FOREIGN KEY ({}) REFERENCES {}({}) ON UPDATE {} ON DELETE {}",
                from.join("_"),
                from.join(", "),
                f.1,
                to.join(", "),
                f.4,
                f.5
            ));
        }
        Ok(())
    }

    pub async fn recorded(&mut self) -> Result<Option<Recorded>, Error> {
        if !self.has_table(HASH_TABLE)? {
            return Ok(None);
        }
        self.conn
            .query_row(
                &format!(
                    "SELECT hash, catalog, format, recorded_at FROM {HASH_TABLE} WHERE id = 1"
                ),
                [],
                |r| {
                    Ok(Recorded {
                        hash: r.get(0)?,
                        catalog: Catalog::parse(&r.get::<_, String>(1)?),
                        format: r.get(2)?,
                        recorded_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(&format!("reading {HASH_TABLE}"), &e))
    }

    pub async fn record(&mut self, catalog: &Catalog) -> Result<(), Error> {
        let what = format!("writing {HASH_TABLE}");
        self.exec(
            &what,
            &format!(
                "INSERT OR IGNORE INTO {HASH_TABLE} (id, hash, catalog, format) VALUES (1, '', '', 0)"
            ),
            [],
        )?;
        self.exec(
            &what,
            &format!(
                "UPDATE {HASH_TABLE} SET \
                   recorded_at = CASE WHEN hash = ?1 THEN recorded_at \
                                 ELSE strftime('%Y-%m-%dT%H:%M:%SZ', 'now') END, \
                   hash = ?1, catalog = ?2, format = ?3, \
                   checked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') \
                 WHERE id = 1"
            ),
            (catalog.hash(), catalog.text(), FORMAT),
        )
    }

    pub async fn close(mut self) {
        // A transaction still open here means an error path: keep what was recorded
        // (applied migrations and dirty marks) rather than losing it.
        if self.in_tx {
            let _ = self.unlock().await;
        }
        let _ = self.conn.close();
    }
}

/// The error, with the line and column in the file for a syntax error (SQLite gives the
/// byte offset in the rest of the batch it was preparing).
fn describe_in(e: &rusqlite::Error, sql: &str) -> String {
    if let rusqlite::Error::SqlInputError {
        msg,
        sql: rest,
        offset,
        ..
    } = e
        && let Ok(offset) = usize::try_from(*offset)
        && sql.ends_with(rest.as_str())
        && let Some(before) = sql.get(..sql.len() - rest.len() + offset)
    {
        let (line, col) = super::line_col(sql, before.chars().count() + 1);
        return format!("{msg} at line {line}, column {col}");
    }
    e.to_string()
}

/// Processes that have the database file open (Linux /proc), for a lock timeout message.
/// SQLite does not say which connection holds its lock, so these are the candidates.
fn holders(path: &Path) -> Option<String> {
    let target = std::fs::canonicalize(path).ok()?;
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target))
        {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let mine = if pid == me { ", this process" } else { "" };
            found.push(format!("pid {pid} ({}{mine})", comm.trim()));
        }
    }
    (!found.is_empty()).then(|| {
        format!(
            "SQLite does not say which connection holds it; processes with the file open: {}",
            found.join(", ")
        )
    })
}

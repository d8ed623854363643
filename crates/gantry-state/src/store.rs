//! The embedded state store (SQLite in the state dir): the schema and its migrations, every boot and each service's timings, for `gantry graph` and `analyze`.
//!
//! The schema exists only here: everything else (missions, tests) goes through [`Store`].

use crate::StateDir;
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One service's record in a boot.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    pub name: String,
    pub state: String,
    pub priority: String,
    /// Milliseconds from the boot's start to the first spawn (None: never started).
    pub started_ms: Option<u64>,
    /// Milliseconds from the boot's start to ready/completed.
    pub ready_ms: Option<u64>,
    pub attempts: u32,
    pub error: Option<String>,
}

#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS boots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    file TEXT NOT NULL,
    outcome TEXT,
    duration_ms INTEGER,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS missions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    service TEXT,
    layer TEXT,
    check_name TEXT NOT NULL,
    error TEXT NOT NULL,
    output TEXT NOT NULL,
    fix_criteria TEXT NOT NULL,
    next_step TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    resolved_at TEXT
);
CREATE TABLE IF NOT EXISTS boot_services (
    boot_id INTEGER NOT NULL REFERENCES boots(id),
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    priority TEXT NOT NULL,
    started_ms INTEGER,
    ready_ms INTEGER,
    attempts INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (boot_id, name)
);
";

/// Columns added after the first release of their table, as `ALTER TABLE` statements.
/// Applied to every store at open; "duplicate column" (already migrated) is expected.
const MIGRATIONS: &[&str] = &[
    "ALTER TABLE missions ADD COLUMN remediation TEXT",
    "ALTER TABLE releases ADD COLUMN recipe TEXT",
    "ALTER TABLE releases ADD COLUMN restores INTEGER",
    "ALTER TABLE releases ADD COLUMN state TEXT",
];

impl Store {
    /// Opens (creating the directory, the file and the tables) the store of `state_dir`.
    pub fn open(state_dir: impl AsRef<Path>) -> Result<Store, String> {
        let dir = StateDir::new(state_dir.as_ref());
        std::fs::create_dir_all(dir.root())
            .map_err(|e| format!("cannot create state dir {}: {e}", dir.root().display()))?;
        let path = dir.state_db();
        // Created 0600 without following a planted symlink; SQLite gives its -wal and -shm
        // files the database's mode.
        crate::secure::open_private(&path, true)
            .map_err(|e| format!("cannot open state store {}: {e}", path.display()))?;
        let conn = Connection::open(&path)
            .map_err(|e| format!("cannot open state store {}: {e}", path.display()))?;
        // WAL keeps readers (`gantry graph` while `up` runs) from blocking the writer.
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        // The driver writes here on its event loop (the boot's start and decision):
        // with WAL, NORMAL syncs at checkpoints instead of at every commit, so a write
        // costs no fsync. The store stays consistent; a power cut may lose the last
        // records, which is acceptable for boot history and missions.
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        // A page cache of 256 KiB instead of SQLite's 2 MiB: the store is written a few
        // times per boot and read by commands; the pages it needs stay in the OS's cache.
        let _ = conn.pragma_update(None, "cache_size", -256);
        conn.execute_batch(SCHEMA)
            .and_then(|()| conn.execute_batch(crate::audit::SCHEMA))
            .and_then(|()| conn.execute_batch(crate::switches::SCHEMA))
            .and_then(|()| conn.execute_batch(crate::flag_overrides::SCHEMA))
            .and_then(|()| conn.execute_batch(crate::alerts::SCHEMA))
            .and_then(|()| conn.execute_batch(crate::incidents::SCHEMA))
            .and_then(|()| conn.execute_batch(crate::releases::SCHEMA))
            .map_err(|e| format!("cannot initialise state store {}: {e}", path.display()))?;
        // Older stores get the columns added since; on newer ones these fail harmlessly.
        for migration in MIGRATIONS {
            let _ = conn.execute(migration, []);
        }
        Ok(Store { conn, path })
    }

    /// Opens the existing store of `state_dir` read-only; None when there is none yet.
    pub fn open_existing(state_dir: impl AsRef<Path>) -> Option<Store> {
        let path = StateDir::new(state_dir.as_ref()).state_db();
        if !path.exists() {
            return None;
        }
        let conn =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        Some(Store { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn begin_boot(&self, started_at: &str, file: &str) -> Result<i64, String> {
        self.conn
            .execute(
                "INSERT INTO boots (started_at, file) VALUES (?1, ?2)",
                params![started_at, file],
            )
            .map_err(|e| e.to_string())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the boot decision and every service's timings in one transaction.
    pub fn finish_boot(
        &mut self,
        boot: i64,
        outcome: &str,
        duration: Duration,
        reason: Option<&str>,
        services: &[ServiceRecord],
    ) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        tx.execute(
            "UPDATE boots SET outcome = ?1, duration_ms = ?2, reason = ?3 WHERE id = ?4",
            params![outcome, duration.as_millis() as i64, reason, boot],
        )
        .map_err(|e| e.to_string())?;
        {
            // One statement for every row (a thousand services, a thousand prepares).
            let mut insert = tx
                .prepare(
                    "INSERT OR REPLACE INTO boot_services (boot_id, name, state, priority, started_ms, ready_ms, attempts, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| e.to_string())?;
            for s in services {
                insert
                    .execute(params![
                        boot,
                        s.name,
                        s.state,
                        s.priority,
                        s.started_ms.map(|v| v as i64),
                        s.ready_ms.map(|v| v as i64),
                        s.attempts,
                        s.error
                    ])
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }

    /// Time from spawn to ready for each service of the last decided boot.
    pub fn last_timings(&self) -> HashMap<String, Duration> {
        let mut out = HashMap::new();
        let sql = "SELECT name, started_ms, ready_ms FROM boot_services
                   WHERE boot_id = (SELECT MAX(id) FROM boots WHERE outcome IS NOT NULL)
                   AND started_ms IS NOT NULL AND ready_ms IS NOT NULL";
        let Ok(mut stmt) = self.conn.prepare(sql) else {
            return out;
        };
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        if let Ok(rows) = rows {
            for (name, start, ready) in rows.flatten() {
                out.insert(name, Duration::from_millis((ready - start).max(0) as u64));
            }
        }
        out
    }

    /// The services of boot `boot` (for tests and `analyze`).
    pub fn boot_services(&self, boot: i64) -> Result<Vec<ServiceRecord>, String> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, state, priority, started_ms, ready_ms, attempts, error FROM boot_services WHERE boot_id = ?1 ORDER BY name")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([boot], |r| {
                Ok(ServiceRecord {
                    name: r.get(0)?,
                    state: r.get(1)?,
                    priority: r.get(2)?,
                    started_ms: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                    ready_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                    attempts: r.get(5)?,
                    error: r.get(6)?,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    /// Every recorded boot, newest first (at most 100).
    /// The newest 100 boots; an error (not an empty list) when the store is damaged.
    pub fn history(&self) -> Result<Vec<gantry_api::model::BootRecord>, String> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, started_at, outcome, duration_ms, reason FROM boots ORDER BY id DESC LIMIT 100")
            .map_err(|e| self.damaged(&e))?;
        stmt.query_map([], |r| {
            Ok(gantry_api::model::BootRecord {
                id: r.get(0)?,
                started_at: r.get(1)?,
                outcome: r.get(2)?,
                duration_ms: r.get(3)?,
                reason: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.damaged(&e))
    }

    /// What to say when the store cannot be read.
    pub(crate) fn damaged(&self, e: &rusqlite::Error) -> String {
        format!(
            "the state store {} cannot be read ({e}); it is damaged or not a gantry state store\n  hint: move it aside (gantry starts a new history) or restore it from a backup",
            self.path.display()
        )
    }

    /// The newest boot: (id, outcome, duration_ms).
    pub fn last_boot(&self) -> Option<(i64, Option<String>, Option<i64>)> {
        self.conn
            .query_row(
                "SELECT id, outcome, duration_ms FROM boots ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok()
    }
}

/// Read-only queries for `gantry analyze`.
impl Store {
    /// The newest `limit` boots that reached a decision (outcome recorded), newest first.
    /// Unlike [`Store::history`], errors (a damaged or foreign database) are reported.
    pub fn decided_boots(
        &self,
        limit: usize,
    ) -> Result<Vec<gantry_api::model::BootRecord>, String> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started_at, outcome, duration_ms, reason FROM boots
                 WHERE outcome IS NOT NULL ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([limit.min(i64::MAX as usize) as i64], |r| {
                Ok(gantry_api::model::BootRecord {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    outcome: r.get(2)?,
                    duration_ms: r.get(3)?,
                    reason: r.get(4)?,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }
}

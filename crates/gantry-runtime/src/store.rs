//! The embedded state store (SQLite in state_dir): every boot and each service's timings, for `gantry graph` and `analyze`.

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
    conn: Connection,
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

impl Store {
    /// Opens (creating) `state_dir/state.db`.
    pub fn open(state_dir: &Path) -> Result<Store, String> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("cannot create state dir {}: {e}", state_dir.display()))?;
        let path = state_dir.join("state.db");
        let conn = Connection::open(&path)
            .map_err(|e| format!("cannot open state store {}: {e}", path.display()))?;
        // WAL keeps readers (`gantry graph` while `up` runs) from blocking the writer.
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        // The driver writes here on its event loop (the boot's start and decision):
        // with WAL, NORMAL syncs at checkpoints instead of at every commit, so a write
        // costs no fsync. The store stays consistent; a power cut may lose the last
        // records, which is acceptable for boot history and missions.
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        conn.execute_batch(SCHEMA)
            .map_err(|e| format!("cannot initialise state store {}: {e}", path.display()))?;
        // Added after the first release of the table; older stores get the column here.
        let _ = conn.execute("ALTER TABLE missions ADD COLUMN remediation TEXT", []);
        Ok(Store { conn, path })
    }

    /// Opens an existing store read-only; None when there is none yet.
    pub fn open_existing(state_dir: &Path) -> Option<Store> {
        let path = state_dir.join("state.db");
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
        for s in services {
            tx.execute(
                "INSERT OR REPLACE INTO boot_services (boot_id, name, state, priority, started_ms, ready_ms, attempts, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![boot, s.name, s.state, s.priority, s.started_ms.map(|v| v as i64), s.ready_ms.map(|v| v as i64), s.attempts, s.error],
            )
            .map_err(|e| e.to_string())?;
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

    /// Opens a mission unless the same check for the same service is already open
    /// (then its error and output are refreshed). Returns the mission id.
    pub fn open_mission(&self, m: &crate::missions::NewMission) -> Result<i64, String> {
        let now = crate::logs::rfc3339_utc(std::time::SystemTime::now());
        let output = m.output.join("\n");
        let existing: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM missions WHERE status = 'open' AND check_name = ?1 AND service IS ?2",
                params![m.check, m.service],
                |r| r.get(0),
            )
            .ok();
        if let Some(id) = existing {
            self.conn
                .execute(
                    "UPDATE missions SET error = ?1, output = ?2 WHERE id = ?3",
                    params![m.error, output, id],
                )
                .map_err(|e| e.to_string())?;
            return Ok(id);
        }
        self.conn
            .execute(
                "INSERT INTO missions (created_at, service, layer, check_name, error, output, fix_criteria, next_step) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![now, m.service, m.layer, m.check, m.error, output, m.fix_criteria, m.next_step],
            )
            .map_err(|e| e.to_string())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Adds a remediation outcome to the open mission of `check` for `service`.
    pub fn note_remediation(&self, check: &str, service: &str, text: &str) {
        let _ = self.conn.execute(
            "UPDATE missions SET remediation = ?1 WHERE status = 'open' AND check_name = ?2 AND service IS ?3",
            params![text, check, service],
        );
    }

    /// Resolves open missions of `check` (for `service`) because the check passes now.
    pub fn resolve_missions(&self, check: &str, service: Option<&str>) -> usize {
        let now = crate::logs::rfc3339_utc(std::time::SystemTime::now());
        self.conn
            .execute(
                "UPDATE missions SET status = 'resolved', resolved_at = ?1 WHERE status = 'open' AND check_name = ?2 AND service IS ?3",
                params![now, check, service],
            )
            .unwrap_or(0)
    }

    /// Missions, newest first (open ones only unless `all`).
    pub fn missions(&self, all: bool) -> Vec<serde_json::Value> {
        let sql = if all {
            "SELECT id, created_at, service, layer, check_name, error, output, fix_criteria, next_step, status, resolved_at, remediation FROM missions ORDER BY id DESC LIMIT 200"
        } else {
            "SELECT id, created_at, service, layer, check_name, error, output, fix_criteria, next_step, status, resolved_at, remediation FROM missions WHERE status = 'open' ORDER BY id DESC LIMIT 200"
        };
        let Ok(mut stmt) = self.conn.prepare(sql) else {
            return Vec::new();
        };
        stmt.query_map([], |r| {
            Ok(serde_json::json!({
                "id": r.get::<_, i64>(0)?,
                "created_at": r.get::<_, String>(1)?,
                "service": r.get::<_, Option<String>>(2)?,
                "layer": r.get::<_, Option<String>>(3)?,
                "check": r.get::<_, String>(4)?,
                "error": r.get::<_, String>(5)?,
                "output": r.get::<_, String>(6)?.lines().map(str::to_string).collect::<Vec<_>>(),
                "fix_criteria": r.get::<_, String>(7)?,
                "next_step": r.get::<_, String>(8)?,
                "status": r.get::<_, String>(9)?,
                "resolved_at": r.get::<_, Option<String>>(10)?,
                "remediation": r.get::<_, Option<String>>(11).ok().flatten(),
            }))
        })
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
    }

    /// Every recorded boot, newest first (at most 100).
    pub fn history(&self) -> Vec<gantry_api::model::BootRecord> {
        let Ok(mut stmt) = self.conn.prepare("SELECT id, started_at, outcome, duration_ms, reason FROM boots ORDER BY id DESC LIMIT 100") else {
            return Vec::new();
        };
        stmt.query_map([], |r| {
            Ok(gantry_api::model::BootRecord {
                id: r.get(0)?,
                started_at: r.get(1)?,
                outcome: r.get(2)?,
                duration_ms: r.get(3)?,
                reason: r.get(4)?,
            })
        })
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
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

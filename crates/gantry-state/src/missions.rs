//! Mission records: every NO-GO, boot failure or drift becomes something a person can act on, kept in the state store.
//!
//! This module builds on [`crate::store`] (its connection and schema); the store does not
//! know about missions beyond their table.

use crate::store::Store;
use gantry_time::rfc3339_utc;
use rusqlite::params;
use std::path::Path;

/// A mission to record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewMission {
    pub service: Option<String>,
    pub layer: Option<String>,
    /// The check that failed, e.g. "preflight: port" or "boot: readiness".
    pub check: String,
    pub error: String,
    /// Up to 50 lines of the service's output (already redacted).
    pub output: Vec<String>,
    /// What must pass for the mission to resolve itself.
    pub fix_criteria: String,
    pub next_step: String,
}

/// Records `missions` in the store of `state_dir` (best effort: a broken state store must
/// not hide the failure that caused them, which the caller reports anyway).
pub fn record_all(state_dir: impl AsRef<Path>, missions: &[NewMission]) {
    let Ok(store) = Store::open(state_dir) else {
        return;
    };
    for m in missions {
        let _ = store.open_mission(m);
    }
}

impl Store {
    /// Opens a mission unless the same check for the same service is already open
    /// (then its error and output are refreshed). Returns the mission id.
    pub fn open_mission(&self, m: &NewMission) -> Result<i64, String> {
        self.open_mission_new(m).map(|(id, _)| id)
    }

    /// [`Store::open_mission`], saying also whether the mission is new (false: an open one was
    /// refreshed), so a caller can note a new one once.
    pub fn open_mission_new(&self, m: &NewMission) -> Result<(i64, bool), String> {
        let now = rfc3339_utc(std::time::SystemTime::now());
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
            return Ok((id, false));
        }
        self.conn
            .execute(
                "INSERT INTO missions (created_at, service, layer, check_name, error, output, fix_criteria, next_step) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![now, m.service, m.layer, m.check, m.error, output, m.fix_criteria, m.next_step],
            )
            .map_err(|e| e.to_string())?;
        Ok((self.conn.last_insert_rowid(), true))
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
        let now = rfc3339_utc(std::time::SystemTime::now());
        self.conn
            .execute(
                "UPDATE missions SET status = 'resolved', resolved_at = ?1 WHERE status = 'open' AND check_name = ?2 AND service IS ?3",
                params![now, check, service],
            )
            .unwrap_or(0)
    }

    /// Missions, newest first (open ones only unless `all`).
    /// Open missions (every mission with `all`), newest first; an error (not an empty
    /// list) when the store is damaged.
    pub fn missions(&self, all: bool) -> Result<Vec<serde_json::Value>, String> {
        let sql = if all {
            "SELECT id, created_at, service, layer, check_name, error, output, fix_criteria, next_step, status, resolved_at, remediation FROM missions ORDER BY id DESC LIMIT 200"
        } else {
            "SELECT id, created_at, service, layer, check_name, error, output, fix_criteria, next_step, status, resolved_at, remediation FROM missions WHERE status = 'open' ORDER BY id DESC LIMIT 200"
        };
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.damaged(&e))?;
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
        .and_then(|rows| rows.collect())
        .map_err(|e| self.damaged(&e))
    }
}

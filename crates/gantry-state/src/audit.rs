//! The audit log: every mutation through the API or the CLI (and what gantry does by itself on an
//! operator's behalf, e.g. an override expiring), recorded before it takes effect and completed with
//! its result. Append-only: rows are never updated except for their result.

use crate::store::Store;
use rusqlite::params;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    reason TEXT,
    before TEXT,
    after TEXT,
    result TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at_ms);
";

/// One action about to be taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEntry {
    /// `operator`, `read`, `token:NAME`, `cli:USER`, or `gantry` for what gantry does by itself.
    pub actor: String,
    /// `service.restart`, `flag.set`, `stack.shutdown`, ...
    pub action: String,
    pub target: Option<String>,
    pub reason: Option<String>,
    /// The state before and the state asked for, where there is one (a flag's value).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The longest text kept in any column (a reason, a value): a bound on what one call can store.
const MAX_TEXT: usize = 4_096;

fn bounded(text: &Option<String>) -> Option<String> {
    text.as_ref().map(|t| {
        if t.len() <= MAX_TEXT {
            t.clone()
        } else {
            let mut end = MAX_TEXT;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &t[..end])
        }
    })
}

impl Store {
    /// Records an action before it takes effect; its result is `pending` until
    /// [`Store::finish_audit`]. Returns the row's id.
    pub fn record_audit(&self, entry: &AuditEntry) -> Result<i64, String> {
        let now = SystemTime::now();
        let at_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.conn
            .execute(
                "INSERT INTO audit (at_ms, at, actor, action, target, reason, before, after)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    at_ms,
                    gantry_time::rfc3339_utc(now),
                    entry.actor,
                    entry.action,
                    bounded(&entry.target),
                    bounded(&entry.reason),
                    bounded(&entry.before),
                    bounded(&entry.after),
                ],
            )
            .map_err(|e| format!("cannot write the audit log: {e}"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Sets the result of a recorded action (`ok: ...` or `refused: ...`).
    pub fn finish_audit(&self, id: i64, result: &str) -> Result<(), String> {
        let result = bounded(&Some(result.to_string())).unwrap_or_default();
        self.conn
            .execute(
                "UPDATE audit SET result = ?1 WHERE id = ?2",
                params![result, id],
            )
            .map(|_| ())
            .map_err(|e| format!("cannot write the audit log: {e}"))
    }

    /// Rows at or after `since_ms` (unix milliseconds), newest first, at most `limit`.
    pub fn audit(
        &self,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, String> {
        // A store from before the audit log has no table yet: no rows, not an error.
        let exists: bool = self
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'",
                [],
                |_| Ok(true),
            )
            .unwrap_or(false);
        if !exists {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, at, actor, action, target, reason, before, after, result FROM audit
                 WHERE at_ms >= ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params![since_ms.unwrap_or(0), limit as i64], |r| {
                Ok(serde_json::json!({
                    "id": r.get::<_, i64>(0)?,
                    "at": r.get::<_, String>(1)?,
                    "actor": r.get::<_, String>(2)?,
                    "action": r.get::<_, String>(3)?,
                    "target": r.get::<_, Option<String>>(4)?,
                    "reason": r.get::<_, Option<String>>(5)?,
                    "before": r.get::<_, Option<String>>(6)?,
                    "after": r.get::<_, Option<String>>(7)?,
                    "result": r.get::<_, String>(8)?,
                }))
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot read the audit log: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_is_recorded_before_and_completed_after_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store
            .record_audit(&AuditEntry {
                actor: "cli:alice".into(),
                action: "service.restart".into(),
                target: Some("api".into()),
                reason: Some("stuck".into()),
                ..AuditEntry::default()
            })
            .unwrap();
        let second = store
            .record_audit(&AuditEntry {
                actor: "token:bob".into(),
                action: "stack.shutdown".into(),
                reason: Some("x".repeat(10_000)),
                ..AuditEntry::default()
            })
            .unwrap();
        store.finish_audit(first, "ok: restarting").unwrap();
        let rows = store.audit(None, 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["id"], second);
        assert_eq!(rows[0]["result"], "pending");
        assert!(rows[0]["reason"].as_str().unwrap().len() <= MAX_TEXT + 3);
        assert_eq!(rows[1]["actor"], "cli:alice");
        assert_eq!(rows[1]["result"], "ok: restarting");
        assert_eq!(store.audit(None, 1).unwrap().len(), 1);
        assert!(store.audit(Some(i64::MAX), 10).unwrap().is_empty());
    }
}

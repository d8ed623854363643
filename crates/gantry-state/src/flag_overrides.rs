//! Runtime flag overrides (`gantry flag set`), kept in the state store so they survive restarts
//! of gantry: key, value (JSON), reason, actor, when set and until when.

use crate::store::Store;
use rusqlite::params;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS flag_overrides (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    reason TEXT,
    actor TEXT NOT NULL,
    set_at TEXT NOT NULL,
    expires_at_ms INTEGER,
    expires_at TEXT
);
";

/// One stored override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOverride {
    /// The flag key.
    pub key: String,
    /// The value, as JSON text.
    pub value: String,
    /// Why it was set.
    pub reason: Option<String>,
    /// Who set it (the audit log's actor).
    pub actor: String,
    /// RFC 3339.
    pub set_at: String,
    /// Unix milliseconds and RFC 3339 of when it reverts by itself.
    pub expires_at_ms: Option<i64>,
    /// RFC 3339 of `expires_at_ms`.
    pub expires_at: Option<String>,
}

impl Store {
    /// Every stored override, by key.
    pub fn flag_overrides(&self) -> Result<Vec<StoredOverride>, String> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT key, value, reason, actor, set_at, expires_at_ms, expires_at
                 FROM flag_overrides ORDER BY key",
            )
            .map_err(|e| format!("cannot read the flag overrides: {e}"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredOverride {
                    key: r.get(0)?,
                    value: r.get(1)?,
                    reason: r.get(2)?,
                    actor: r.get(3)?,
                    set_at: r.get(4)?,
                    expires_at_ms: r.get(5)?,
                    expires_at: r.get(6)?,
                })
            })
            .map_err(|e| format!("cannot read the flag overrides: {e}"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cannot read the flag overrides: {e}"))
    }

    /// Sets (or replaces) the override of `o.key`.
    pub fn put_flag_override(&self, o: &StoredOverride) -> Result<(), String> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO flag_overrides
                 (key, value, reason, actor, set_at, expires_at_ms, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    o.key,
                    o.value,
                    o.reason,
                    o.actor,
                    o.set_at,
                    o.expires_at_ms,
                    o.expires_at
                ],
            )
            .map(|_| ())
            .map_err(|e| format!("cannot store the override of flag `{}`: {e}", o.key))
    }

    /// Removes the override of `key` (none: nothing to do).
    pub fn delete_flag_override(&self, key: &str) -> Result<(), String> {
        self.conn
            .execute("DELETE FROM flag_overrides WHERE key = ?1", params![key])
            .map(|_| ())
            .map_err(|e| format!("cannot remove the override of flag `{key}`: {e}"))
    }
}

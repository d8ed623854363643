//! Per-service switches kept across restarts of gantry: a service disabled (or quarantined)
//! by an operator, who did it, why and since when (`gantry disable` / `gantry enable`).

use crate::store::Store;
use rusqlite::params;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS service_switches (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    reason TEXT,
    actor TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    since TEXT NOT NULL
);
";

/// One switched service as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// The service's name as the stack file spells it (a replicated service's group name).
    pub name: String,
    /// `disabled` or `quarantined`.
    pub state: String,
    pub reason: Option<String>,
    /// Who switched it (`cli:bob`, `token:alice`, `operator`).
    pub actor: String,
    /// When, RFC 3339 UTC.
    pub since: String,
}

impl Switch {
    /// What status shows: `disabled by cli:bob since 2026-12-06T01:00:00Z: maintenance`.
    pub fn describe(&self) -> String {
        let why = self
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        format!("{} by {} since {}{why}", self.state, self.actor, self.since)
    }
}

impl Store {
    /// Records (or replaces) the switch of service `name`.
    pub fn set_switch(
        &self,
        name: &str,
        state: &str,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Switch, String> {
        let now = SystemTime::now();
        let since_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let since = gantry_time::rfc3339_utc(now);
        self.conn
            .execute(
                "INSERT OR REPLACE INTO service_switches (name, state, reason, actor, since_ms, since)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, state, reason, actor, since_ms, since],
            )
            .map_err(|e| format!("cannot record the switch of {name} in the state store: {e}"))?;
        Ok(Switch {
            name: name.to_string(),
            state: state.to_string(),
            reason: reason.map(str::to_string),
            actor: actor.to_string(),
            since,
        })
    }

    /// Clears the switch of service `name`; whether there was one.
    pub fn clear_switch(&self, name: &str) -> Result<bool, String> {
        self.conn
            .execute(
                "DELETE FROM service_switches WHERE name = ?1",
                params![name],
            )
            .map(|n| n > 0)
            .map_err(|e| format!("cannot clear the switch of {name} in the state store: {e}"))
    }

    /// Every switched service, by name. A store from before switches has none.
    pub fn switches(&self) -> Result<Vec<Switch>, String> {
        let mut stmt = match self
            .conn
            .prepare("SELECT name, state, reason, actor, since FROM service_switches ORDER BY name")
        {
            Ok(s) => s,
            Err(e) if e.to_string().contains("no such table") => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read the service switches: {e}")),
        };
        stmt.query_map([], |r| {
            Ok(Switch {
                name: r.get(0)?,
                state: r.get(1)?,
                reason: r.get(2)?,
                actor: r.get(3)?,
                since: r.get(4)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| format!("cannot read the service switches: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_is_kept_replaced_and_cleared() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        assert!(store.switches().expect("read").is_empty());
        store
            .set_switch("api", "disabled", "cli:bob", Some("maintenance"))
            .expect("set");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        let all = store.switches().expect("read");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "api");
        assert_eq!(all[0].actor, "cli:bob");
        assert!(all[0].describe().starts_with("disabled by cli:bob since "));
        assert!(all[0].describe().ends_with(": maintenance"));
        store
            .set_switch("api", "disabled", "token:alice", None)
            .expect("replace");
        assert_eq!(store.switches().expect("read")[0].actor, "token:alice");
        assert!(store.clear_switch("api").expect("clear"));
        assert!(!store.clear_switch("api").expect("clear again"));
        assert!(store.switches().expect("read").is_empty());
    }
}

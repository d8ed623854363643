//! The notifier's state (firing alerts notified, deliveries not yet done) kept in the store, so a
//! restarted gantry neither loses a notification nor sends one twice for the same firing.

use crate::store::Store;
use rusqlite::params;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL
);
";

impl Store {
    /// Replaces the saved notifier state (JSON).
    pub fn save_alert_state(&self, json: &str) -> Result<(), String> {
        self.conn
            .execute(
                "INSERT INTO alert_state (id, state) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state",
                params![json],
            )
            .map(|_| ())
            .map_err(|e| format!("cannot save the alert state: {e}"))
    }

    /// The saved notifier state, if any.
    pub fn alert_state(&self) -> Option<String> {
        self.conn
            .query_row("SELECT state FROM alert_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_state_is_replaced_not_appended() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        assert_eq!(store.alert_state(), None);
        store.save_alert_state("{\"a\":1}").unwrap();
        store.save_alert_state("{\"a\":2}").unwrap();
        assert_eq!(store.alert_state().as_deref(), Some("{\"a\":2}"));
    }
}

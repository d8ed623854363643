//! Numbered releases of each service: its definition (command and environment, secret values
//! masked by the caller) and where it stands: running, canary, stable, rolled_back, superseded.
//! Release 1 is recorded at a service's first boot; each rollout records the next, and each
//! rollback one that `restores` an earlier release. A release's `recipe` is what re-running it
//! takes: the service's command and environment as the file writes them, before the expansion
//! per instance, with secrets by reference (the variables they fill), never their values.

use crate::store::Store;
use rusqlite::params;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS releases (
    service TEXT NOT NULL,
    number INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    definition TEXT NOT NULL,
    status TEXT NOT NULL,
    recipe TEXT,
    restores INTEGER,
    state TEXT,
    PRIMARY KEY (service, number)
);
";

impl Store {
    /// Release 1 of `service` unless it has one already; its number either way.
    pub fn first_release(&self, service: &str, definition: &str) -> Result<i64, String> {
        let existing: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(number) FROM releases WHERE service = ?1",
                params![service],
                |r| r.get(0),
            )
            .map_err(|e| format!("releases of {service}: {e}"))?;
        match existing {
            Some(n) => Ok(n),
            None => self.add_release(service, definition, "running"),
        }
    }

    /// Release 1 of each of `services` that has none yet, in one transaction (a thousand
    /// services at a first boot were a thousand commits on the event loop).
    /// `definition(i)` is asked only for the services recorded.
    pub fn first_releases(
        &mut self,
        services: &[&str],
        definition: impl Fn(usize) -> String,
    ) -> Result<(), String> {
        let known: std::collections::HashSet<String> = self
            .conn
            .prepare("SELECT DISTINCT service FROM releases")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| format!("releases: {e}"))?;
        if services.iter().all(|s| known.contains(*s)) {
            return Ok(());
        }
        let now = crate::time::rfc3339_utc(std::time::SystemTime::now());
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT OR IGNORE INTO releases (service, number, created_at, definition, status)
                     VALUES (?1, 1, ?2, ?3, 'running')",
                )
                .map_err(|e| format!("releases: {e}"))?;
            for (i, service) in services.iter().enumerate() {
                if !known.contains(*service) {
                    insert
                        .execute(params![service, now, definition(i)])
                        .map_err(|e| format!("releases of {service}: {e}"))?;
                }
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }

    /// Records the next release of `service` with `status`; its number.
    pub fn add_release(
        &self,
        service: &str,
        definition: &str,
        status: &str,
    ) -> Result<i64, String> {
        let now = crate::time::rfc3339_utc(std::time::SystemTime::now());
        self.conn
            .execute(
                "INSERT INTO releases (service, number, created_at, definition, status)
                 VALUES (?1, COALESCE((SELECT MAX(number) FROM releases WHERE service = ?1), 0) + 1, ?2, ?3, ?4)",
                params![service, now, definition, status],
            )
            .map_err(|e| format!("releases of {service}: {e}"))?;
        self.conn
            .query_row(
                "SELECT MAX(number) FROM releases WHERE service = ?1",
                params![service],
                |r| r.get(0),
            )
            .map_err(|e| format!("releases of {service}: {e}"))
    }

    /// Keeps what re-running release `number` takes (see the module doc).
    pub fn set_release_recipe(
        &self,
        service: &str,
        number: i64,
        recipe: &str,
    ) -> Result<(), String> {
        self.conn
            .execute(
                "UPDATE releases SET recipe = ?3 WHERE service = ?1 AND number = ?2",
                params![service, number, recipe],
            )
            .map(|_| ())
            .map_err(|e| format!("release {number} of {service}: {e}"))
    }

    /// Keeps the state of the canary rollout of release `number` (so a gantry killed
    /// mid-canary resumes its analysis at the next boot).
    pub fn set_release_state(&self, service: &str, number: i64, state: &str) -> Result<(), String> {
        self.conn
            .execute(
                "UPDATE releases SET state = ?3 WHERE service = ?1 AND number = ?2",
                params![service, number, state],
            )
            .map(|_| ())
            .map_err(|e| format!("release {number} of {service}: {e}"))
    }

    /// The rollout state kept for release `number` of `service`, if any.
    pub fn release_state(&self, service: &str, number: i64) -> Option<String> {
        self.conn
            .query_row(
                "SELECT state FROM releases WHERE service = ?1 AND number = ?2",
                params![service, number],
                |r| r.get(0),
            )
            .ok()
            .flatten()
    }

    /// Records that release `number` of `service` restores release `restores` (a rollback).
    pub fn set_release_restores(
        &self,
        service: &str,
        number: i64,
        restores: i64,
    ) -> Result<(), String> {
        self.conn
            .execute(
                "UPDATE releases SET restores = ?3 WHERE service = ?1 AND number = ?2",
                params![service, number, restores],
            )
            .map(|_| ())
            .map_err(|e| format!("release {number} of {service}: {e}"))
    }

    /// The recipe of release `number` of `service`: Ok(None) when it has none (recorded by
    /// an older gantry); an error when there is no such release.
    pub fn release_recipe(&self, service: &str, number: i64) -> Result<Option<String>, String> {
        self.conn
            .query_row(
                "SELECT recipe FROM releases WHERE service = ?1 AND number = ?2",
                params![service, number],
                |r| r.get(0),
            )
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => {
                    format!(
                        "{service} has no release {number} (`gantry releases {service}` lists them)"
                    )
                }
                e => format!("release {number} of {service}: {e}"),
            })
    }

    /// Sets the status of release `number` of `service`.
    pub fn set_release_status(
        &self,
        service: &str,
        number: i64,
        status: &str,
    ) -> Result<(), String> {
        self.conn
            .execute(
                "UPDATE releases SET status = ?3 WHERE service = ?1 AND number = ?2",
                params![service, number, status],
            )
            .map(|_| ())
            .map_err(|e| format!("release {number} of {service}: {e}"))
    }

    /// Releases left `canary` by a gantry that stopped mid-rollout (killed): marked
    /// `rolled_back`, since the next boot runs every instance from the file. Returns
    /// (service, number) of each.
    pub fn abandon_canaries(&self) -> Result<Vec<(String, i64, String)>, String> {
        let mut stmt = self
            .conn
            .prepare("SELECT service, number, definition FROM releases WHERE status = 'canary'")
            .map_err(|e| e.to_string())?;
        let rows: Vec<(String, i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| e.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for (service, number, _) in &rows {
            self.set_release_status(service, *number, "rolled_back")?;
        }
        Ok(rows)
    }

    /// The releases of `service`, newest first, as JSON objects.
    pub fn releases(&self, service: &str) -> Result<Vec<serde_json::Value>, String> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT number, created_at, definition, status, restores, recipe IS NOT NULL
                 FROM releases WHERE service = ?1 ORDER BY number DESC",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params![service], |r| {
                let definition: String = r.get(2)?;
                Ok(serde_json::json!({
                    "service": service,
                    "number": r.get::<_, i64>(0)?,
                    "created_at": r.get::<_, String>(1)?,
                    "definition": serde_json::from_str::<serde_json::Value>(&definition)
                        .unwrap_or(serde_json::Value::String(definition)),
                    "status": r.get::<_, String>(3)?,
                    "restores": r.get::<_, Option<i64>>(4)?,
                    "can_restore": r.get::<_, bool>(5)?,
                }))
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_numbered_per_service_and_change_status() {
        let dir = std::env::temp_dir().join(format!("gantry-releases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.first_release("api", "{\"v\":1}").unwrap(), 1);
        assert_eq!(store.first_release("api", "{\"v\":9}").unwrap(), 1);
        assert_eq!(store.add_release("api", "{\"v\":2}", "canary").unwrap(), 2);
        assert_eq!(store.first_release("web", "{}").unwrap(), 1);
        assert_eq!(
            store.abandon_canaries().unwrap(),
            vec![("api".to_string(), 2, "{\"v\":2}".to_string())]
        );
        assert!(store.abandon_canaries().unwrap().is_empty());
        let list = store.releases("api").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["number"], 2);
        assert_eq!(list[0]["status"], "rolled_back");
        assert_eq!(list[0]["definition"]["v"], 2);
        assert_eq!(list[1]["status"], "running");
        assert_eq!(list[1]["can_restore"], false);
        store
            .set_release_recipe("api", 1, "{\"command\":[]}")
            .unwrap();
        assert!(store.release_recipe("api", 1).unwrap().is_some());
        assert!(store.release_recipe("api", 2).unwrap().is_none());
        assert!(
            store
                .release_recipe("api", 7)
                .unwrap_err()
                .contains("no release 7")
        );
        let n = store.add_release("api", "{}", "stable").unwrap();
        store.set_release_restores("api", n, 1).unwrap();
        assert_eq!(store.releases("api").unwrap()[0]["restores"], 1);
        assert!(store.release_state("api", n).is_none());
        store.set_release_state("api", n, "{}").unwrap();
        assert_eq!(store.release_state("api", n).as_deref(), Some("{}"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn first_releases_records_only_the_services_without_one_in_one_go() {
        let dir =
            std::env::temp_dir().join(format!("gantry-first-releases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Store::open(&dir).unwrap();
        assert_eq!(store.add_release("api", "{\"v\":1}", "running").unwrap(), 1);
        assert_eq!(store.add_release("api", "{\"v\":2}", "stable").unwrap(), 2);
        let asked = std::cell::RefCell::new(Vec::new());
        let names = ["api", "web", "worker"];
        store
            .first_releases(&names, |i| {
                asked.borrow_mut().push(names[i]);
                format!("{{\"name\":\"{}\"}}", names[i])
            })
            .unwrap();
        assert_eq!(
            *asked.borrow(),
            ["web", "worker"],
            "definitions made only where needed"
        );
        let web = store.releases("web").unwrap();
        assert_eq!(web.len(), 1);
        assert_eq!(web[0]["number"], 1);
        assert_eq!(web[0]["status"], "running");
        assert_eq!(web[0]["definition"]["name"], "web");
        assert_eq!(store.releases("api").unwrap().len(), 2, "api keeps its two");
        // Again: nothing new, no definition asked for.
        asked.borrow_mut().clear();
        store.first_releases(&names, |_| unreachable!()).unwrap();
        assert_eq!(store.releases("worker").unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Keeping the state store's history bounded (`[settings] retention`): the newest boots with their services' records, and missions until some time after they were resolved.
//!
//! Pruning runs in small batches, each its own short transaction, so that a writer on
//! another connection (the event loop recording a mission) waits at most one batch.
//! Open missions are never deleted. SQLite reuses the freed pages: the file stops
//! growing, it does not shrink.

use crate::store::Store;
use gantry_time::rfc3339_utc;
use rusqlite::{OptionalExtension, params};
use std::time::{Duration, SystemTime};

/// What the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The newest boots kept (at least 1: the running boot is never deleted).
    pub boots: u64,
    /// Resolved missions are deleted this long after they were resolved.
    pub missions: Duration,
}

/// What pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub boots: u64,
    pub missions: u64,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        self.boots == 0 && self.missions == 0
    }

    /// Adds another batch's figures.
    pub fn add(&mut self, other: Pruned) {
        self.boots += other.boots;
        self.missions += other.missions;
    }
}

/// Rows of each kind one batch deletes at most: a few milliseconds of work.
pub const BATCH: u64 = 50;

impl Store {
    /// Deletes at most `batch` of the oldest boots beyond the newest `r.boots` (with their
    /// services' records) and at most `batch` missions resolved before `now - r.missions`,
    /// in one transaction. Fewer than `batch` of each removed: nothing is left to prune.
    pub fn prune_batch(
        &mut self,
        r: &Retention,
        now: SystemTime,
        batch: u64,
    ) -> Result<Pruned, String> {
        let batch = batch.clamp(1, i64::MAX as u64) as i64;
        let keep = r.boots.clamp(1, i64::MAX as u64) as i64;
        let cutoff = rfc3339_utc(
            now.checked_sub(r.missions)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        // The oldest boot kept; every boot before it goes, `batch` at a time.
        let upto: Option<i64> = tx
            .query_row(
                "SELECT MAX(id) FROM (SELECT id FROM boots
                   WHERE id < (SELECT id FROM boots ORDER BY id DESC LIMIT 1 OFFSET ?1)
                   ORDER BY id LIMIT ?2)",
                params![keep - 1, batch],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())?
            .flatten();
        let mut pruned = Pruned::default();
        if let Some(upto) = upto {
            tx.execute("DELETE FROM boot_services WHERE boot_id <= ?1", [upto])
                .map_err(|e| e.to_string())?;
            pruned.boots = tx
                .execute("DELETE FROM boots WHERE id <= ?1", [upto])
                .map_err(|e| e.to_string())? as u64;
        }
        pruned.missions = tx
            .execute(
                "DELETE FROM missions WHERE id IN (SELECT id FROM missions
                   WHERE status = 'resolved' AND resolved_at IS NOT NULL AND resolved_at < ?1
                   ORDER BY id LIMIT ?2)",
                params![cutoff, batch],
            )
            .map_err(|e| e.to_string())? as u64;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(pruned)
    }

    /// Prunes batch after batch until nothing is left (tests and one-off use; the driver
    /// paces [`Store::prune_batch`] itself so that its own writes get their turn).
    pub fn prune(&mut self, r: &Retention, now: SystemTime) -> Result<Pruned, String> {
        let mut total = Pruned::default();
        loop {
            let p = self.prune_batch(r, now, BATCH)?;
            total.add(p);
            if p.boots < BATCH && p.missions < BATCH {
                return Ok(total);
            }
        }
    }

    /// How many boots and missions (open, resolved) the store holds.
    pub fn counts(&self) -> Result<(u64, u64, u64), String> {
        self.conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM boots),
                        (SELECT COUNT(*) FROM missions WHERE status = 'open'),
                        (SELECT COUNT(*) FROM missions WHERE status = 'resolved')",
                [],
                |r| {
                    let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                    Ok((n(0)?, n(1)?, n(2)?))
                },
            )
            .map_err(|e| self.damaged(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::missions::NewMission;
    use crate::store::ServiceRecord;

    fn tempdir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gantry-retention-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn boot(store: &mut Store, i: u64) -> i64 {
        let id = store
            .begin_boot(&format!("2026-01-01T00:00:{:02}.000Z", i % 60), "f")
            .unwrap();
        let services: Vec<ServiceRecord> = ["api", "db"]
            .iter()
            .map(|n| ServiceRecord {
                name: n.to_string(),
                state: "ready".into(),
                priority: "medium".into(),
                started_ms: Some(1),
                ready_ms: Some(2),
                attempts: 1,
                error: None,
            })
            .collect();
        store
            .finish_boot(id, "go", Duration::from_millis(5), None, &services)
            .unwrap();
        id
    }

    fn mission(store: &Store, check: &str) -> i64 {
        store
            .open_mission(&NewMission {
                service: Some("api".into()),
                layer: None,
                check: check.into(),
                error: "e".into(),
                output: vec![],
                fix_criteria: "f".into(),
                next_step: "n".into(),
            })
            .unwrap()
    }

    fn resolved_at(store: &Store, id: i64, at: SystemTime) {
        store
            .conn
            .execute(
                "UPDATE missions SET status = 'resolved', resolved_at = ?1 WHERE id = ?2",
                params![rfc3339_utc(at), id],
            )
            .unwrap();
    }

    #[test]
    fn keeps_the_newest_boots_with_their_records_and_recent_or_open_missions() {
        let dir = tempdir("keeps");
        let mut store = Store::open(&dir).unwrap();
        let ids: Vec<i64> = (0..130).map(|i| boot(&mut store, i)).collect();
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let old = mission(&store, "old");
        resolved_at(&store, old, now - 31 * day);
        let recent = mission(&store, "recent");
        resolved_at(&store, recent, now - 29 * day);
        let open = mission(&store, "open");
        let r = Retention {
            boots: 100,
            missions: 30 * day,
        };
        // One small batch at a time: the oldest go first.
        let p = store.prune_batch(&r, now, 20).unwrap();
        assert_eq!(
            p,
            Pruned {
                boots: 20,
                missions: 1
            }
        );
        assert!(store.boot_services(ids[19]).unwrap().is_empty());
        assert_eq!(store.boot_services(ids[20]).unwrap().len(), 2);
        let p = store.prune(&r, now).unwrap();
        assert_eq!(
            p,
            Pruned {
                boots: 10,
                missions: 0
            }
        );
        assert_eq!(store.counts().unwrap(), (100, 1, 1));
        assert!(store.boot_services(ids[29]).unwrap().is_empty());
        assert_eq!(store.boot_services(ids[30]).unwrap().len(), 2);
        let left: Vec<i64> = store
            .missions(true)
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert_eq!(left, [open, recent]);
        // Nothing left: a second pass removes nothing.
        assert!(store.prune(&r, now).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fewer_boots_than_kept_and_an_empty_store_are_left_alone() {
        let dir = tempdir("few");
        let mut store = Store::open(&dir).unwrap();
        let r = Retention {
            boots: 1,
            missions: Duration::ZERO,
        };
        assert!(store.prune(&r, SystemTime::now()).unwrap().is_empty());
        let only = boot(&mut store, 0);
        // An open mission stays however old it is, even with missions = 0.
        mission(&store, "open");
        assert!(store.prune(&r, SystemTime::now()).unwrap().is_empty());
        assert_eq!(store.boot_services(only).unwrap().len(), 2);
        let newest = boot(&mut store, 1);
        assert_eq!(
            store.prune(&r, SystemTime::now()).unwrap(),
            Pruned {
                boots: 1,
                missions: 0
            }
        );
        assert_eq!(store.last_boot().map(|b| b.0), Some(newest));
        // A retention longer than the clock's past deletes nothing either.
        let forever = Retention {
            boots: 1,
            missions: Duration::MAX,
        };
        assert!(store.prune(&forever, SystemTime::now()).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

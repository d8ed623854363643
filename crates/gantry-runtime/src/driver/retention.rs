//! Keeping the state store within `[settings] retention` while `gantry up` runs: once the boot is decided, then hourly, in small batches on the blocking pool.
//!
//! The pass has a connection of its own; each batch is one short transaction
//! (gantry_state::retention), and a pause between batches lets the event loop's own writes
//! (missions, the boot record) in, so the loop never waits more than one batch.

use super::{Driver, Msg};
use gantry_state::retention::{BATCH, Pruned, Retention};
use gantry_state::store::Store;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How often the history is pruned again while the stack runs.
pub(super) const EVERY: Duration = Duration::from_secs(3600);

/// The pause between two batches.
const PAUSE: Duration = Duration::from_millis(5);

impl Driver {
    /// Starts a pruning pass unless one is running or the store never opened.
    pub(super) fn prune_history(&mut self) {
        if self.pruning || self.store.is_none() {
            return;
        }
        self.pruning = true;
        let r = self.spec.settings.retention;
        let retention = Retention {
            boots: r.boots,
            missions: r.missions.0,
        };
        let dir = self.state_dir.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = prune(dir, retention).await;
            let _ = tx.send(Msg::Pruned(result));
        });
    }

    /// A pass finished: said when it removed something or failed, an event either way.
    pub(super) fn pruned(&mut self, result: Result<Pruned, String>) {
        self.pruning = false;
        let r = self.spec.settings.retention;
        match result {
            Ok(p) => {
                if !p.is_empty() {
                    self.out.gantry_line(&format!(
                        "retention: removed {} boot(s) beyond the newest {} and {} mission(s) resolved more than {} ago",
                        p.boots,
                        r.boots,
                        p.missions,
                        gantry_spec::duration::format_duration(r.missions.0)
                    ));
                }
                self.event(serde_json::json!({ "event": "retention", "boots": p.boots, "missions": p.missions }));
            }
            Err(e) => {
                self.out.gantry_line(&format!(
                    "warning: could not prune the history in {}: {e}\n  hint: the stack is not affected; `[settings] retention` is tried again in an hour",
                    self.state_dir.join("state.db").display()
                ));
                self.event(serde_json::json!({ "event": "retention", "error": e }));
            }
        }
    }
}

/// Batch after batch on the blocking pool until nothing is left.
async fn prune(dir: PathBuf, retention: Retention) -> Result<Pruned, String> {
    let now = SystemTime::now();
    let mut store = tokio::task::spawn_blocking(move || Store::open(dir))
        .await
        .map_err(|e| e.to_string())??;
    let mut total = Pruned::default();
    loop {
        let (s, batch) = tokio::task::spawn_blocking(move || {
            let batch = store.prune_batch(&retention, now, BATCH);
            (store, batch)
        })
        .await
        .map_err(|e| e.to_string())?;
        let batch = batch?;
        total.add(batch);
        if batch.boots < BATCH && batch.missions < BATCH {
            return Ok(total);
        }
        store = s;
        tokio::time::sleep(PAUSE).await;
    }
}

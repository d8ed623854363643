//! What a transition or the boot's verdict leaves behind: output lines, events, missions, the boot record.

use super::Driver;
use crate::output::OutputMode;
use gantry_api::model::BootPhase;
use gantry_engine as eng;
use gantry_engine::UnitId;
use gantry_state::store::ServiceRecord;
use std::time::Duration;

impl Driver {
    pub(super) fn transition(&mut self, n: eng::Notice) {
        if n.to == eng::State::Failed {
            // Open the mission first, so the remediation outcome has a record to land in.
            self.open_boot_mission(n.unit);
            self.remediate(n.unit);
        }
        if matches!(
            n.to,
            eng::State::Ready | eng::State::Running | eng::State::Completed
        ) && let Some(store) = &self.store
            // Only services known to have an open mission touch the database: a write
            // transaction per ready service sat between a gate and the next spawn.
            && self.boot_missions.remove(&self.svcs[n.unit.0].name)
        {
            // The mission's fix criterion holds now.
            store.resolve_missions("boot", Some(&self.svcs[n.unit.0].name));
        }
        let svc = &self.svcs[n.unit.0];
        let view = self.host.unit(n.unit);
        self.event(serde_json::json!({
                "event": "transition",
                "service": svc.name,
                "from": n.from.to_string(),
                "to": n.to.to_string(),
                "reason": n.reason,
                "at_ms": n.at.0.as_millis() as u64,
                "attempt": view.attempt,
                "pid": view.pid,
        }));
        if self.out.mode() == OutputMode::Json {
            return;
        }
        let mut text = format!("{}: {}", svc.name, n.to);
        match n.to {
            // Ready again after a readiness loss: no start to time.
            eng::State::Ready | eng::State::Completed | eng::State::Running
                if n.from != eng::State::Unready =>
            {
                // From the start of this start sequence: a restart's own time, not the
                // time since the boot's first spawn.
                if let Some(start) = self.host.sequence_start(n.unit) {
                    text.push_str(&format!(" in {}", human(n.at - start)));
                }
            }
            eng::State::Starting if view.attempt > 1 => {
                text.push_str(&format!(" (attempt {})", view.attempt))
            }
            _ => {}
        }
        if let Some(r) = &n.reason {
            text.push_str(&format!(" — {r}"));
        }
        self.out.gantry_line(&text);
    }

    pub(super) fn boot_decided(&mut self, outcome: eng::Outcome) {
        self.out.end_board();
        // No usage sample here: `up --detach` and `status` ask for one when they read
        // (gantry_api::figures); at 1,000 services it was ~40 ms of CPU right at the verdict.
        let now = self.host.now();
        let (ok, verdict, label, reason) = match &outcome {
            eng::Outcome::Go => (
                true,
                format!(
                    "GO: ready in {} — critical path: {}",
                    human(now.0),
                    self.host.critical_chain_text()
                ),
                "go",
                None,
            ),
            eng::Outcome::Degraded { failed } => {
                let names: Vec<String> = failed.iter().map(|u| self.failure_summary(*u)).collect();
                (
                    true,
                    format!("DEGRADED after {}: {}", human(now.0), names.join("; ")),
                    "degraded",
                    Some(names.join("; ")),
                )
            }
            eng::Outcome::NoGo { unit, reason } => {
                let svc = &self.svcs[unit.0];
                let mut text = format!("NO-GO: {} failed: {reason}", svc.name);
                if !svc.tail.is_empty() {
                    text.push_str(&format!("\n  last output of {}:", svc.name));
                    for l in svc.tail.iter().skip(svc.tail.len().saturating_sub(10)) {
                        text.push_str(&format!("\n    {l}"));
                    }
                }
                text.push_str("\n  stopping everything that started, in reverse order");
                (
                    false,
                    text,
                    "no-go",
                    Some(format!("{}: {reason}", svc.name)),
                )
            }
        };
        self.event(serde_json::json!({ "event": "boot", "outcome": label, "duration_ms": now.0.as_millis() as u64, "reason": reason }));
        self.host.set_phase(BootPhase::Decided {
            outcome: label.to_string(),
            duration_ms: now.0.as_millis() as u64,
            reason: reason.clone(),
        });
        self.out.verdict(ok, &verdict);
        // Every failed service already opened its mission when it failed. A boot decided
        // within the first wave comes before the store opened: it opens now.
        self.open_pending_store();
        self.flags_settled();
        self.record_boot(label, now.0, reason.as_deref());
        // `[cluster]`: the verdict as a leader-only write of this term.
        self.cluster_record(&format!("boot {label}"));
        // Off the boot's critical path, which has ended.
        self.prune_history();
    }

    /// A failed service becomes a mission: what failed, its last output, what must pass.
    fn open_boot_mission(&mut self, unit: UnitId) {
        // A failure within the first wave comes before the store opened.
        self.open_pending_store();
        if self.store.is_none() {
            return;
        }
        self.boot_missions.insert(self.svcs[unit.0].name.clone());
        let v = self.host.unit(unit);
        let svc = &self.svcs[unit.0];
        let layer = self.plan.layers.get(self.plan.units[unit.0].layer).cloned();
        let gate = if self.plan.units[unit.0].service.kind.is_oneshot() {
            "completes (exit 0)"
        } else {
            "becomes ready"
        };
        self.open_mission(&gantry_state::missions::NewMission {
            service: Some(svc.name.clone()),
            layer,
            check: "boot".into(),
            error: v.last_error.or(v.reason).unwrap_or("failed").to_string(),
            output: svc.tail.iter().cloned().collect(),
            fix_criteria: format!("{} {gate} in a later boot", svc.name),
            next_step: format!(
                "read `gantry logs {}`, fix the cause, then `gantry up` again",
                svc.name
            ),
        });
    }

    fn failure_summary(&self, unit: UnitId) -> String {
        let v = self.host.unit(unit);
        format!(
            "{} {} ({})",
            v.name,
            v.state,
            v.last_error.or(v.reason).unwrap_or("no reason recorded")
        )
    }

    fn record_boot(&mut self, outcome: &str, duration: Duration, reason: Option<&str>) {
        let (Some(store), Some(boot)) = (&mut self.store, self.boot_id) else {
            return;
        };
        let host = &self.host;
        let records: Vec<ServiceRecord> = host
            .engine()
            .units()
            .map(|v| ServiceRecord {
                name: v.name.to_string(),
                state: v.state.to_string(),
                priority: format!("{:?}", v.priority).to_lowercase(),
                started_ms: host.first_spawn(v.id).map(gantry_engine::Time::as_millis),
                ready_ms: v.ready_at.map(|t| t.0.as_millis() as u64),
                attempts: v.attempt,
                error: v.last_error.map(str::to_string),
            })
            .collect();
        if let Err(e) = store.finish_boot(boot, outcome, duration, reason, &records) {
            self.out.gantry_line(&format!(
                "warning: could not record the boot in {}: {e}",
                store.path().display()
            ));
        }
    }
}

/// "12 ms", "1.25 s": how long a service took, in the output.
fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

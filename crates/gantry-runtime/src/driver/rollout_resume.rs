//! A canary rollout survives a killed gantry: its machine's state (the step, the plan, the
//! changes of a `--set-env` / `--command` release) is kept with its release at every phase
//! change, and the next boot resumes it with `Rollout::resume` — traffic held on the stable
//! release until the canary is ready again, then the step's analysis starts over — instead of
//! abandoning it. A canary from the edited file, or one whose state is missing or held a
//! secret's value, is still abandoned (releases.rs says which release runs).

use std::collections::BTreeMap;

use gantry_engine::UnitId;
use gantry_ingress::Sticky;
use gantry_rollout::Rollout;
use serde::{Deserialize, Serialize};

use super::Driver;
use super::rollout::{Active, Task};

/// What resuming a canary takes, kept with its release.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Saved {
    pub(super) service: String,
    pub(super) rollout: Rollout,
    pub(super) set_env: BTreeMap<String, String>,
    pub(super) command: Option<Vec<String>>,
    pub(super) sticky_cookie: Option<String>,
    pub(super) sticky_header: Option<String>,
    pub(super) stable_release: Option<i64>,
}

impl Driver {
    /// Keeps the canary's state with its release (a canary of `--set-env` / `--command` only:
    /// one from the file is what the file holds after a restart anyway).
    pub(super) fn rollout_save(&self) {
        let (Some(a), Some(store)) = (&self.rollout, &self.store) else {
            return;
        };
        let Some(n) = a.new_release else { return };
        if a.green.is_some() || a.changes.file.is_some() {
            return;
        }
        let state = if a.rollout.phase.is_done() {
            String::new()
        } else {
            let saved = Saved {
                service: a.service.clone(),
                rollout: a.rollout.clone(),
                // Masked if it is a secret's value: such a canary cannot be resumed.
                set_env: a
                    .changes
                    .set_env
                    .iter()
                    .map(|(k, v)| (k.clone(), self.redactor.redact_owned(v.clone())))
                    .collect(),
                command: a.changes.command.as_ref().map(|c| {
                    c.iter()
                        .map(|x| self.redactor.redact_owned(x.clone()))
                        .collect()
                }),
                sticky_cookie: match &a.sticky {
                    Some(Sticky::Cookie(c)) => Some(c.clone()),
                    _ => None,
                },
                sticky_header: match &a.sticky {
                    Some(Sticky::Header(h)) => Some(h.clone()),
                    _ => None,
                },
                stable_release: a.stable_release,
            };
            serde_json::to_string(&saved).unwrap_or_default()
        };
        let _ = store.set_release_state(&a.service, n, &state);
    }

    /// Release `number` of `service` was a canary when gantry stopped: resumed when its state
    /// was kept; the sentence saying so, or None (then it is abandoned).
    pub(super) fn rollout_resume(&mut self, service: &str, number: i64) -> Option<String> {
        let store = self.store.as_ref()?;
        let saved: Saved = serde_json::from_str(&store.release_state(service, number)?).ok()?;
        let masked = saved
            .set_env
            .values()
            .chain(saved.command.iter().flatten())
            .any(|v| v.contains(crate::redact::MASK));
        let routed = self.ingress.as_ref().is_some_and(|i| i.routes(service));
        let group = self.plan.replica_group(service)?;
        if masked || !routed || group.units.len() < 2 || saved.service != service {
            return None;
        }
        let canary = UnitId(*group.units.last()?);
        let stable = self.svcs[canary.0].spawn.clone().ok()?;
        let canary_name = self.plan.units[canary.0].name().to_string();
        let _ = store.set_release_status(service, number, "canary");
        let rollout = saved.rollout.clone();
        let (rollout, held, why) = rollout.resume();
        let saved = Saved { rollout, ..saved };
        self.rollout = Some(Active::resumed(
            saved,
            canary,
            canary_name,
            stable,
            number,
            held,
        ));
        Some(format!(
            "release {number} was a canary when gantry stopped; {why}"
        ))
    }

    /// A resumed canary goes on once the boot is decided and its instance is up.
    pub(super) fn rollout_resume_tick(&mut self) {
        let engine = self.host.engine();
        let Some(a) = &mut self.rollout else { return };
        if a.task != Task::Resuming || engine.boot_outcome().is_none() {
            return;
        }
        let v = engine.unit(a.canary);
        if !(gantry_host::is_up(v.state) && v.pid.is_some()) {
            return;
        }
        a.task = Task::Idle;
        let held = std::mem::take(&mut a.held);
        self.rollout_outputs(held);
    }
}

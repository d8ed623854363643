//! A rollout's status as JSON (`gantry rollout status`, the `rollout` events) and its
//! releases: the new one numbered (with what re-running it takes), and both marked at the end.

use std::collections::BTreeMap;

use gantry_rollout::{Phase, Strategy};

use super::Driver;
use super::rollout::{Active, Task};

impl Driver {
    /// The rollout of `service` as JSON (`gantry rollout status`).
    pub(super) fn rollout_status(&self, service: &str) -> Result<String, String> {
        let Some(a) = self.rollout.as_ref().filter(|a| a.service == service) else {
            return Err(format!("no rollout of {service} since gantry started"));
        };
        Ok(self.rollout_json(a).to_string())
    }

    pub(super) fn rollout_json(&self, a: &Active) -> serde_json::Value {
        let (step, weight) = match &a.rollout.phase {
            Phase::Step { index, percent, .. } => (Some(index + 1), *percent),
            Phase::Paused { step, percent, .. } => (Some(step + 1), *percent),
            Phase::Promoted => (None, 100),
            _ => (None, 0),
        };
        let verdict = a.rollout.last_verdict.as_ref().map(verdict_json);
        let set_env: BTreeMap<&String, String> = a
            .changes
            .set_env
            .iter()
            .map(|(k, v)| (k, self.redactor.redact_owned(v.clone())))
            .collect();
        serde_json::json!({
            "service": a.service,
            "phase": a.rollout.phase.name(),
            "detail": a.rollout.phase,
            "step": step,
            "steps": match &a.rollout.plan.strategy { Strategy::Canary { steps } => steps.clone(), Strategy::BlueGreen => vec![100] },
            "weight": weight,
            "canary": a.green.as_ref().map_or_else(|| a.canary_name.clone(), |g| g.names.join(", ")),
            "strategy": if a.green.is_some() { "blue_green" } else { "canary" },
            "stage": a.green.as_ref().map(|g| g.stage.name()),
            "green": a.green.as_ref().map(|g| g.names.clone()),
            "green_ports": a.green.as_ref().map(|g| g.ports.clone()),
            "last_verdict": verdict,
            "set_env": set_env,
            "command": a.changes.command.as_ref().map(|c| self.redactor.redact_owned(c.join(" "))),
            "thresholds": a.rollout.plan.thresholds,
            "interval_ms": a.rollout.plan.interval_ms,
            "analyses": a.analyses,
            "stable_release": a.stable_release,
            "new_release": a.new_release,
            "finishing": matches!(a.task, Task::Promoting | Task::Draining { to_new: false } | Task::Restarting { to_new: false, .. }),
        })
    }
}

impl Driver {
    /// The rollout's new release, numbered next (status canary).
    pub(super) fn record_new_release(&mut self) {
        let Some(a) = &self.rollout else { return };
        let mut def = self.definition_json(&a.changes.apply(&a.canary_name, &a.stable));
        if a.changes.file.is_some()
            && let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&def)
        {
            v["source"] = "gantry.toml".into();
            def = v.to_string();
        }
        let service = a.service.clone();
        let Some(store) = &self.store else { return };
        let stable = store
            .first_release(&service, &self.definition_json(&a.stable))
            .ok();
        let new = store.add_release(&service, &def, "canary").ok();
        // What re-running each takes (a rollback): the stable one's as the file wrote it when
        // it has none yet; the new one's on top of it, or the edited file's.
        let no_changes = BTreeMap::new();
        let mut stable_recipe = stable.and_then(|n| self.recipe_of(&service, n));
        if stable_recipe.is_none()
            && let Some(n) = stable
            && let Some(r) = self.recipe_json(&service, None, None, &no_changes, None)
        {
            let _ = store.set_release_recipe(&service, n, &r);
            stable_recipe = serde_json::from_str(&r).ok();
        }
        let new_recipe = match a.changes.file.as_ref().and_then(|f| f.base.as_ref()) {
            Some(base) => self.recipe_json(&service, None, Some(base), &no_changes, None),
            None => self.recipe_json(
                &service,
                stable_recipe,
                None,
                &a.changes.set_env,
                a.changes.command.as_ref(),
            ),
        };
        if let (Some(n), Some(r)) = (new, new_recipe) {
            let _ = store.set_release_recipe(&service, n, &r);
        }
        if let Some(a) = &mut self.rollout {
            a.stable_release = stable;
            a.new_release = new;
        }
    }
}

/// The end of a rollout in the releases table: the new release's status and the old one's.
pub(super) fn release_status(
    store: Option<&gantry_state::store::Store>,
    a: &Active,
    new_status: &str,
    old_status: &str,
) {
    let Some(store) = store else { return };
    if let Some(n) = a.new_release {
        let _ = store.set_release_status(&a.service, n, new_status);
    }
    if let Some(n) = a.stable_release {
        let _ = store.set_release_status(&a.service, n, old_status);
    }
}

fn verdict_json(v: &gantry_rollout::Verdict) -> serde_json::Value {
    match v {
        gantry_rollout::Verdict::Breach(b) => serde_json::json!({
            "verdict": "breach",
            "signal": b.signal,
            "observed": b.observed,
            "threshold": b.threshold,
            "requests": b.requests,
            "failures": b.failures,
            "text": b.to_string(),
        }),
        gantry_rollout::Verdict::NotVerified { requests, needed } => serde_json::json!({
            "verdict": "not_verified",
            "requests": requests,
            "needed": needed,
            "text": format!("not verified: {requests} of the {needed} requests a verdict needs"),
        }),
        other => serde_json::json!({ "verdict": "pass", "detail": other }),
    }
}

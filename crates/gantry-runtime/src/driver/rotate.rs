//! `gantry rotate SECRET`: the secret re-resolved off the event loop, the redactor taught the new value (the old one stays masked), its consumers' environment updated and the consumers restarted in dependency order; revalidation that finds a secret changed at its source says so.

use super::{Driver, Msg};
use crate::env::SecretValue;
use crate::redact::Redactor;

impl Driver {
    /// Starts a rotation: the secret is resolved from its source on a task of its own
    /// (a `from_command` or `from_file` read never blocks the loop); `rotated` finishes it.
    pub(super) fn rotate(&mut self, name: &str) -> Result<String, String> {
        if !self.spec.secrets.iter().any(|s| s.name.value == name) {
            let known: Vec<&str> = self
                .spec
                .secrets
                .iter()
                .map(|s| s.name.value.as_str())
                .collect();
            return Err(format!(
                "unknown secret `{name}` (the stack file declares: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        if self.host.engine().is_shutting_down() {
            return Err(format!(
                "cannot rotate secret {name}: the stack is shutting down"
            ));
        }
        let (spec, base, reaper, tx, wanted) = (
            self.spec.clone(),
            self.base_dir.clone(),
            self.reaper.clone(),
            self.tx.clone(),
            name.to_string(),
        );
        tokio::spawn(async move {
            let (report, mut values) =
                crate::preflight::resolve_secrets_where(&spec, &base, &reaper, &|s| {
                    s.name.value == wanted
                })
                .await;
            let result = match values.pop() {
                Some(v) => Ok(v),
                // The checks word the failure without the value (secrets.rs).
                None => Err(report
                    .checks
                    .iter()
                    .find(|c| c.status == crate::preflight::Status::Fail)
                    .map_or_else(
                        || "it resolved to nothing".to_string(),
                        |c| match &c.hint {
                            Some(h) => format!("{} ({h})", c.message),
                            None => c.message.clone(),
                        },
                    )),
            };
            let _ = tx.send(Msg::Rotated {
                name: wanted,
                result,
            });
        });
        self.out.gantry_line(&format!(
            "secret {name}: rotation requested through the API"
        ));
        Ok(format!(
            "rotating secret {name}: re-resolving it from its source, then restarting its consumers"
        ))
    }

    /// A rotation's value is back: mask it, hand it to the consumers, restart them.
    pub(super) fn rotated(&mut self, name: &str, result: Result<SecretValue, String>) {
        let fresh = match result {
            Ok(v) => v,
            Err(e) => {
                let e = self.redactor.redact_owned(e);
                self.out.gantry_line(&format!(
                    "secret {name}: rotation failed, nothing changed: {e}"
                ));
                self.event(serde_json::json!({
                    "event": "secret_rotation_failed", "secret": name, "error": e,
                }));
                return;
            }
        };
        // Masked before anything else happens: the consumers may print it at once.
        if !self.masked.contains(&fresh.value) {
            self.masked.push(fresh.value.clone());
            self.redactor = Redactor::new(self.masked.iter());
        }
        let changed = self
            .secrets
            .iter()
            .find(|s| s.name == name)
            .is_none_or(|s| s.value != fresh.value);
        // The consumers' environment: the variable replaced (or added).
        // (A replicated service's instances all consume it.)
        let units: Vec<usize> = fresh
            .services
            .iter()
            .flat_map(|s| self.plan.units_of(s).unwrap_or_default())
            .collect();
        for i in units {
            if let Ok(spawn) = &mut self.svcs[i].spawn {
                spawn.env.set(&fresh.env, fresh.value.clone());
            }
        }
        // Dependencies before dependents: by start wave, then by plan order.
        let mut consumers: Vec<(usize, usize, String)> = fresh
            .services
            .iter()
            .filter_map(|s| {
                let i = *self.plan.units_of(s)?.first()?;
                let wave = self.plan.waves.iter().position(|w| w.contains(&i))?;
                Some((wave, i, s.clone()))
            })
            .collect();
        consumers.sort();
        consumers.dedup();
        match self.secrets.iter_mut().find(|s| s.name == name) {
            Some(slot) => *slot = fresh,
            None => self.secrets.push(fresh),
        }
        self.stale_secrets.remove(name);
        if let Some(store) = &self.store {
            store.resolve_missions(&format!("secret changed: {name}"), None);
        }
        let consumers: Vec<String> = consumers.into_iter().map(|(_, _, s)| s).collect();
        let (restarted, refused) = self.restart_services(&consumers);
        self.host.mark_dirty();
        self.out.gantry_line(&format!(
            "secret {name} rotated{}: {}{}",
            if changed {
                ""
            } else {
                " (its value had not changed)"
            },
            if restarted.is_empty() {
                "no consumer restarted".to_string()
            } else {
                format!("restarting {}", restarted.join(", "))
            },
            if refused.is_empty() {
                String::new()
            } else {
                format!("; not restarted: {}", refused.join("; "))
            }
        ));
        self.event(serde_json::json!({
            "event": "secret_rotated", "secret": name, "changed": changed,
            "restarted": restarted, "refused": refused,
        }));
    }

    /// Revalidation resolved the secrets again: one whose value changed at its source
    /// is said once (a line, an event, a mission) instead of being thrown away.
    pub(super) fn secrets_changed(&mut self, values: &[SecretValue]) {
        for v in values {
            let Some(old) = self.secrets.iter().find(|s| s.name == v.name) else {
                continue;
            };
            if old.value == v.value || self.stale_secrets.contains(&v.name) {
                continue;
            }
            // Never shown, but masked from now on in case something prints it.
            if !self.masked.contains(&v.value) {
                self.masked.push(v.value.clone());
                self.redactor = Redactor::new(self.masked.iter());
            }
            self.stale_secrets.insert(v.name.clone());
            let name = &v.name;
            let message =
                format!("secret {name} changed at its source: run `gantry rotate {name}`");
            self.out.gantry_line(&message);
            self.event(serde_json::json!({ "event": "secret_changed", "secret": name }));
            self.open_mission(&gantry_state::missions::NewMission {
                service: None,
                layer: None,
                check: format!("secret changed: {name}"),
                error: message.clone(),
                output: Vec::new(),
                fix_criteria: format!("secret {name} is rotated"),
                next_step: format!("gantry rotate {name}"),
            });
        }
    }
}

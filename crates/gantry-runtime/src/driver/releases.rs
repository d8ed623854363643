//! Releases: each service's definitions numbered in the state store (secrets masked) — release 1
//! at the first boot of a definition, a new one per rollout; the canaries a killed gantry left,
//! settled at the next boot with what runs said; `gantry releases NAME`.

use super::Driver;
use crate::process::SpawnSpec;
use crate::redact::Redactor;
use std::collections::BTreeMap;

/// A definition as the releases table keeps it: argv and environment, secrets masked.
fn definition_json(spec: &SpawnSpec, redactor: &Redactor) -> String {
    let env: BTreeMap<&str, String> = spec
        .env
        .iter()
        .map(|(k, v)| (k, redactor.redact_owned(v.to_string())))
        .collect();
    let argv: Vec<String> = std::iter::once(&spec.program)
        .chain(&spec.args)
        .map(|a| redactor.redact_owned(a.clone()))
        .collect();
    serde_json::json!({ "command": argv, "env": env }).to_string()
}

impl Driver {
    /// A definition as the releases table keeps it: argv and environment, secrets masked.
    pub(super) fn definition_json(&self, spec: &SpawnSpec) -> String {
        definition_json(spec, &self.redactor)
    }

    /// Release 1 of every service not recorded yet (at the first boot of its definition).
    pub(super) fn record_first_releases(&mut self) {
        let mut seen = std::collections::HashSet::new();
        let mut units = Vec::new();
        for (i, u) in self.plan.units.iter().enumerate() {
            if seen.insert(u.service.name.value.as_str()) && self.svcs[i].spawn.is_ok() {
                units.push(i);
            }
        }
        let names: Vec<&str> = units
            .iter()
            .map(|&i| self.plan.units[i].service.name.value.as_str())
            .collect();
        let mut abandoned = Vec::new();
        if let Some(store) = &mut self.store {
            // The definitions are made only for services with no release yet.
            let (svcs, redactor) = (&self.svcs, &self.redactor);
            let _ = store.first_releases(&names, |k| match &svcs[units[k]].spawn {
                Ok(spec) => definition_json(spec, redactor),
                Err(_) => String::new(),
            });
            abandoned = store.abandon_canaries().unwrap_or_default();
        }
        // A rollout a killed gantry left: this boot runs every instance from the file.
        for (service, number, def) in abandoned {
            let from_file = serde_json::from_str::<serde_json::Value>(&def)
                .is_ok_and(|d| d["source"] == "gantry.toml");
            // A `--set-env` / `--command` canary whose state was kept goes on where it was.
            if !from_file
                && self.rollout.is_none()
                && let Some(text) = self.rollout_resume(&service, number)
            {
                self.out.gantry_line(&format!("{service}: rollout: {text}"));
                self.event(serde_json::json!({
                    "event": "rollout", "service": service, "phase": "resuming",
                    "release": number, "message": text,
                }));
                continue;
            }
            let text = if from_file {
                // The file holds the release that was a canary: it is what runs now.
                if let Some(store) = &self.store {
                    let _ = store.set_release_status(&service, number, "unverified");
                }
                format!(
                    "release {number} came from gantry.toml and was a canary when gantry stopped; the file still holds it, so this boot runs it on every instance of {service} without the canary's analysis; to go back, restore the previous definition in gantry.toml and `gantry rollout {service}`"
                )
            } else {
                format!(
                    "release {number} was a canary when gantry stopped; this boot runs every instance of {service} from the file (the stable release), with no split; start the rollout again to retry it"
                )
            };
            self.out.gantry_line(&format!("{service}: rollout: {text}"));
            self.event(serde_json::json!({
                "event": "rollout", "service": service, "phase": "abandoned",
                "release": number, "message": text,
            }));
        }
    }

    /// `gantry releases NAME`: the releases of `service`, newest first, as JSON.
    pub(super) fn releases_json(&mut self, service: &str) -> Result<String, String> {
        if self.plan.units_of(service).is_none() {
            return Err(format!("unknown service `{service}`"));
        }
        self.open_pending_store();
        let Some(store) = &self.store else {
            return Err("the state store is not open".into());
        };
        Ok(serde_json::Value::from(store.releases(service)?).to_string())
    }
}

//! `gantry rollout NAME` with neither `--set-env` nor `--command`: the new release is the
//! service's definition in gantry.toml as it is now. The file is loaded off the loop (the
//! reload's loader), each instance's new definition built, compared with the running one, and
//! the canary rollout started with it; the audit row and the answer wait for that.

use super::reload::{Loaded, Waiter};
use super::rollout::FileRelease;
use super::{Driver, Msg};
use gantry_api::model::ApiCommand;

/// A rollout from the file under way: who waits for its answer, and its audit row.
pub(super) struct FileRollout {
    pub(super) service: String,
    pub(super) body: serde_json::Value,
    pub(super) reply: Waiter,
    pub(super) audit: Option<i64>,
}

/// Whether a rollout request takes its release from the file (it changes nothing itself).
pub(super) fn from_file(cmd: &ApiCommand) -> bool {
    let ApiCommand::Rollout { body, .. } = cmd else {
        return false;
    };
    let empty_env = body
        .get("set_env")
        .is_none_or(|e| e.as_object().is_none_or(|o| o.is_empty()));
    empty_env && body.get("command").is_none_or(serde_json::Value::is_null)
}

impl Driver {
    /// Loads the file for the release; the answer comes with [`Msg::RolloutLoaded`].
    pub(super) fn rollout_from_file(&mut self, job: FileRollout) {
        let Some(reloader) = self.reloader.clone() else {
            let e = format!(
                "nothing to roll out: this instance cannot load its file again; give --set-env K=V or --command \"...\" for {}",
                job.service
            );
            if let Some(id) = job.audit {
                self.audit_end(id, &Err(e.clone()));
            }
            let _ = job.reply.send(Err(e));
            return;
        };
        let taken_on = self.taken_on.clone();
        self.spawn_load(reloader, taken_on, move |result| Msg::RolloutLoaded {
            job: Box::new(job),
            result: Box::new(result),
        });
    }

    /// The file is loaded: the rollout starts with its definition, or the answer says why not.
    pub(super) fn rollout_loaded(&mut self, job: FileRollout, result: Result<Loaded, String>) {
        if super::rollback::is_rollback(&job) {
            return self.rollback_loaded(job, result);
        }
        // Secrets read again with the file are masked before a definition is recorded or run.
        if let Ok(loaded) = &result {
            for secret in &loaded.secrets {
                if !self.masked.contains(&secret.value) {
                    self.masked.push(secret.value.clone());
                }
            }
            self.redactor = crate::redact::Redactor::new(self.masked.iter());
        }
        let answer = result
            .and_then(|loaded| self.file_release(&job.service, &loaded))
            .and_then(|file| self.rollout_start(&job.service, &job.body, Some(file)));
        let answer = answer.map_err(|e| self.redactor.redact_owned(e));
        if let Some(id) = job.audit {
            self.audit_end(id, &answer);
        }
        if let Err(e) = &answer {
            self.out
                .gantry_line(&format!("{}: rollout refused: {e}", job.service));
        }
        let _ = job.reply.send(answer);
    }

    /// Every instance of `service` as the loaded file defines it; an error when the file
    /// changes nothing of it, or changes what a rollout cannot (its number of instances).
    fn file_release(&self, service: &str, loaded: &Loaded) -> Result<FileRelease, String> {
        let running = self
            .plan
            .units_of(service)
            .ok_or_else(|| format!("unknown service `{service}`"))?;
        let Some(new) = loaded.plan.units_of(service) else {
            return Err(format!(
                "{service} is not in the file any more; a rollout replaces a definition, it does not remove a service"
            ));
        };
        if new.len() != running.len() {
            return Err(format!(
                "the file runs {} instance(s) of {service}, this stack {}: change `replicas` with `gantry reload`, then roll out the definition",
                new.len(),
                running.len()
            ));
        }
        let flag_vars: Vec<(String, String)> = self.flag_env.values().cloned().collect();
        let mut release = FileRelease {
            base: loaded
                .spec
                .services
                .iter()
                .find(|s| s.name.value == service)
                .cloned(),
            ..FileRelease::default()
        };
        let mut differs = false;
        for j in new {
            let u = &loaded.plan.units[j];
            let mut env = loaded.envs[j].clone();
            if let Ok(env) = &mut env {
                super::flags::add_env(env, &self.ofrep_env);
                super::flags::add_env(env, &flag_vars);
            }
            let svc =
                super::svc::make_svc(u, env, &self.base_dir, &self.state_dir, &self.api_file())?;
            let spec = svc.spawn.map_err(|e| {
                format!("{}: the file's definition cannot be spawned: {e}", u.name())
            })?;
            let name = u.name().to_string();
            let now = self
                .plan
                .index(&name)
                .and_then(|i| self.svcs[i].spawn.as_ref().ok());
            if now.is_none_or(|s| {
                s.env != spec.env
                    || s.program != spec.program
                    || s.args != spec.args
                    || s.cwd != spec.cwd
            }) {
                differs = true;
            }
            release.specs.insert(name.clone(), spec);
            release.services.insert(name, u.service.clone());
        }
        if !differs {
            return Err(format!(
                "nothing to roll out: the file's definition of {service} is the one running; edit it in gantry.toml, or give --set-env K=V or --command \"...\""
            ));
        }
        Ok(release)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_without_changes_takes_the_file() {
        let r = |body: serde_json::Value| ApiCommand::Rollout {
            service: "api".into(),
            body,
        };
        assert!(from_file(&r(serde_json::json!({}))));
        assert!(from_file(&r(
            serde_json::json!({ "set_env": {}, "steps": [50, 100] })
        )));
        assert!(!from_file(&r(
            serde_json::json!({ "set_env": { "V": "2" } })
        )));
        assert!(!from_file(&r(serde_json::json!({ "command": "app --v2" }))));
        assert!(!from_file(&ApiCommand::Reload));
    }
}

//! `gantry rollback NAME [--to N]`: the running service back on an earlier recorded release.
//! Each release keeps a recipe — the service's command and environment as the file wrote them,
//! before the expansion per instance, secrets only by reference (the variables they fill) —
//! so the rollback rebuilds every instance's definition from it with the environment files and
//! secrets read afresh (the file loaded off the loop, like a reload), replaces the instances one
//! at a time through the rolling machinery, records a new release that restores the earlier
//! one, and never runs a down-migration (it says what to run).

use std::collections::BTreeMap;

use gantry_engine::UnitId;
use gantry_spec::interp::instance_vars;
use serde::{Deserialize, Serialize};

use super::Driver;
use super::reload::Loaded;
use super::rollout_file::FileRollout;

/// What re-running a release takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Recipe {
    /// argv as the file writes it (`${PORT}`, `${REPLICA}`, `${VAR}` unexpanded).
    pub(super) command: Vec<String>,
    /// The service's own variables as the file writes them.
    pub(super) env: BTreeMap<String, String>,
    /// Secret name → the variable it fills (references: values are read at the rollback).
    pub(super) secrets: BTreeMap<String, String>,
}

/// Whether a rollback request (the body a [`FileRollout`] carries) is one.
pub(super) fn is_rollback(job: &FileRollout) -> bool {
    job.body.get("rollback").is_some()
}

/// The release `service` runs now (from its recorded `releases`, newest first) and the one a
/// rollback goes back to: `to`, or the previous stable one.
pub(super) fn rollback_target(
    service: &str,
    releases: &[serde_json::Value],
    to: Option<i64>,
) -> Result<(Option<i64>, i64), String> {
    let number = |r: &serde_json::Value| r["number"].as_i64().unwrap_or(0);
    let live = |r: &serde_json::Value| {
        matches!(
            r["status"].as_str(),
            Some("stable" | "running" | "unverified")
        )
    };
    let current = releases.iter().find(|r| live(r)).map(number);
    let target = match to {
        Some(n) if Some(n) == current => {
            return Err(format!(
                "release {n} is the one {service} runs; `gantry releases {service}` lists the others"
            ));
        }
        Some(n) => n,
        None => releases
            .iter()
            .filter(|r| current.is_none_or(|c| number(r) < c))
            .find(|r| live(r) || r["status"] == "superseded")
            .map(number)
            .ok_or_else(|| {
                format!(
                    "{service} has no earlier stable release to go back to (`gantry releases {service}` lists them); give --to N"
                )
            })?,
    };
    Ok((current, target))
}

impl Driver {
    /// The recipe of `service` as the running file defines it, with `set_env` and `command`
    /// (a `--set-env` / `--command` rollout) on top of `base` (the stable release's recipe)
    /// when given; values of known secrets masked.
    pub(super) fn recipe_json(
        &self,
        service: &str,
        base: Option<Recipe>,
        def: Option<&gantry_spec::Service>,
        set_env: &BTreeMap<String, String>,
        command: Option<&Vec<String>>,
    ) -> Option<String> {
        let def = def.or_else(|| self.file_service(service));
        let mut r = match base {
            Some(r) => r,
            None => {
                let def = def?;
                Recipe {
                    command: def
                        .command
                        .as_ref()
                        .map(|c| c.value.clone())
                        .unwrap_or_default(),
                    env: def
                        .env
                        .iter()
                        .map(|e| (e.name.value.clone(), e.value.value.clone()))
                        .collect(),
                    secrets: BTreeMap::new(),
                }
            }
        };
        r.secrets = self
            .spec
            .secrets
            .iter()
            .filter(|s| s.services.iter().any(|n| n.value == service))
            .map(|s| {
                let name = s.name.value.clone();
                (name.clone(), s.env.clone().unwrap_or(name))
            })
            .collect();
        for (k, v) in set_env {
            r.env.insert(k.clone(), v.clone());
        }
        if let Some(c) = command {
            r.command = c.clone();
        }
        for v in r.env.values_mut().chain(r.command.iter_mut()) {
            *v = self.redactor.redact_owned(std::mem::take(v));
        }
        serde_json::to_string(&r).ok()
    }

    /// The recipe of release `number`, if it has one.
    pub(super) fn recipe_of(&self, service: &str, number: i64) -> Option<Recipe> {
        let text = self
            .store
            .as_ref()?
            .release_recipe(service, number)
            .ok()??;
        serde_json::from_str(&text).ok()
    }

    /// Starts a rollback: the file is loaded off the loop (fresh secrets and env files); the
    /// answer comes once it is (`rollback_loaded`).
    pub(super) fn rollback_start(&mut self, job: FileRollout) {
        let service = job.service.clone();
        let refused = if self.plan.units_of(&service).is_none() {
            Some(format!("unknown service `{service}`"))
        } else if let Some(a) = self
            .rollout
            .as_ref()
            .filter(|a| a.task != super::rollout::Task::Done)
        {
            Some(format!(
                "a rollout of {} is in progress; `gantry rollout abort {}` first, then roll back",
                a.service, a.service
            ))
        } else if self.rolling.is_some() {
            Some("a rolling restart is in progress; roll back once it is done".to_string())
        } else if self.reloader.is_none() {
            Some(format!(
                "this instance cannot load its file again to resolve the secrets of {service} afresh; restart gantry from its file to roll back"
            ))
        } else {
            None
        };
        if let Some(e) = refused {
            if let Some(id) = job.audit {
                self.audit_end(id, &Err(e.clone()));
            }
            let _ = job.reply.send(Err(e));
            return;
        }
        if let Some(reloader) = self.reloader.clone() {
            let taken_on = self.taken_on.clone();
            self.spawn_load(reloader, taken_on, move |result| {
                super::Msg::RolloutLoaded {
                    job: Box::new(job),
                    result: Box::new(result),
                }
            });
        }
    }

    /// The file is loaded: the rollback runs, or the answer says why not.
    pub(super) fn rollback_loaded(&mut self, job: FileRollout, result: Result<Loaded, String>) {
        let to = job.body.get("to").and_then(serde_json::Value::as_i64);
        let answer = result.and_then(|loaded| self.rollback_apply(&job.service, to, &loaded));
        let answer = answer.map_err(|e| self.redactor.redact_owned(e));
        match &answer {
            Ok(m) => self.out.gantry_line(&format!("{}: {m}", job.service)),
            Err(e) => self
                .out
                .gantry_line(&format!("{}: rollback refused: {e}", job.service)),
        }
        if let Some(id) = job.audit {
            self.audit_end(id, &answer);
        }
        let _ = job.reply.send(answer);
    }

    fn rollback_apply(
        &mut self,
        service: &str,
        to: Option<i64>,
        loaded: &Loaded,
    ) -> Result<String, String> {
        if self.rolling.is_some()
            || self
                .rollout
                .as_ref()
                .is_some_and(|a| a.task != super::rollout::Task::Done)
        {
            return Err(
                "a rollout or rolling restart started meanwhile; roll back once it is done".into(),
            );
        }
        // The secrets read afresh are masked before anything shows or spawns with them.
        for secret in &loaded.secrets {
            if !self.masked.contains(&secret.value) {
                self.masked.push(secret.value.clone());
            }
        }
        self.redactor = crate::redact::Redactor::new(self.masked.iter());
        self.open_pending_store();
        let Some(store) = &self.store else {
            return Err(
                "the state store is not open: a rollback needs the recorded releases".into(),
            );
        };
        let releases = store.releases(service)?;
        let (current, target) = rollback_target(service, &releases, to)?;
        let text = store.release_recipe(service, target)?.ok_or_else(|| {
            format!(
                "release {target} of {service} was recorded without what re-running it takes (by an older gantry); restore its definition in gantry.toml and `gantry rollout {service}`"
            )
        })?;
        let recipe: Recipe = serde_json::from_str(&text)
            .map_err(|e| format!("release {target} of {service}: its recipe is unreadable: {e}"))?;
        if recipe
            .env
            .values()
            .chain(&recipe.command)
            .any(|v| v.contains(crate::redact::MASK))
        {
            return Err(format!(
                "release {target} of {service} had a secret's value written into its definition, which is never stored; give the value through [secrets] and roll the release out again"
            ));
        }
        let units = self
            .plan
            .units_of(service)
            .ok_or_else(|| format!("unknown service `{service}`"))?;
        // The file's own variables of the service give way to the release's.
        let file_def = loaded
            .spec
            .services
            .iter()
            .find(|s| s.name.value == service);
        let flag_vars: Vec<(String, String)> = self.flag_env.values().cloned().collect();
        let mut specs = Vec::with_capacity(units.len());
        for &i in &units {
            let name = self.plan.units[i].name().to_string();
            let j = loaded.plan.index(&name).ok_or_else(|| {
                format!("{name} is not in the file any more; a rollback keeps the instances the file has")
            })?;
            let mut env = loaded.envs[j]
                .clone()
                .map_err(|e| format!("{name}: its environment: {e}"))?;
            super::flags::add_env(&mut env, &self.ofrep_env);
            super::flags::add_env(&mut env, &flag_vars);
            if let Some(def) = file_def {
                env.retain(|k, _| {
                    recipe.env.contains_key(k) || !def.env.iter().any(|e| e.name.value == k)
                });
            }
            let inst = self.plan.units[i].service.instance.clone();
            let (port, replica) = inst.map_or((None, 1), |x| (x.port, x.replica));
            for (k, v) in &recipe.env {
                let v = instance_vars(v, port, replica);
                env.set(k, v);
            }
            let argv: Vec<String> = recipe
                .command
                .iter()
                .map(|a| env.expand(&instance_vars(a, port, replica)))
                .collect();
            let Some((program, args)) = argv.split_first() else {
                return Err(format!("release {target} of {service} has no command"));
            };
            let running = self.svcs[i]
                .spawn
                .clone()
                .map_err(|e| format!("{name}: its definition cannot be spawned: {e}"))?;
            specs.push((
                i,
                crate::process::SpawnSpec {
                    program: program.clone(),
                    args: args.to_vec(),
                    env,
                    ..running
                },
            ));
        }
        let def = specs
            .first()
            .map(|(_, s)| self.definition_json(s))
            .unwrap_or_default();
        for (i, spec) in specs {
            self.svcs[i].spawn = Ok(spec);
        }
        let mut recorded = None;
        if let Some(store) = &self.store {
            if let Ok(n) = store.add_release(service, &def, "stable") {
                let _ = store.set_release_recipe(service, n, &text);
                let _ = store.set_release_restores(service, n, target);
                recorded = Some(n);
            }
            if let Some(c) = current {
                let _ = store.set_release_status(service, c, "superseded");
            }
        }
        let total = self.rolling_units(service, units.iter().map(|&i| UnitId(i)).collect())?;
        let migrations: Vec<String> = units
            .iter()
            .flat_map(|&i| self.plan.units[i].deps.iter().filter(|d| d.required))
            .filter(|d| self.plan.units[d.unit].service.kind == gantry_spec::Kind::Migrate)
            .map(|d| self.plan.units[d.unit].name().to_string())
            .fold(Vec::new(), |mut acc, n| {
                if !acc.contains(&n) {
                    acc.push(n);
                }
                acc
            });
        let migrate = if migrations.is_empty() {
            String::new()
        } else {
            format!(
                "; the migrations of {} stay applied (gantry never runs a down-migration by itself): if release {target} needs the older schema, revert them with `gantry migrate --service NAME down N`",
                migrations.join(", ")
            )
        };
        self.event(serde_json::json!({
            "event": "rollback", "service": service, "release": recorded, "restores": target,
        }));
        Ok(format!(
            "rollback of {service} to release {target}, recorded as release {} (restores {target}): {total} instance(s) replaced one at a time, each drained first and ready before the next, secrets read afresh; gantry.toml still holds its own definition (a reload brings it back: restore release {target}'s there too){migrate}",
            recorded.map_or_else(|| "?".to_string(), |n| n.to_string())
        ))
    }
}

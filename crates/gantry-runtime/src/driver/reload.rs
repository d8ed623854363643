//! `gantry reload` and SIGHUP: the stack file read, checked and planned again off the event loop (by the CLI's own loader), diffed against the running plan, and only the services whose definition changed restarted, in dependency order.

use super::{Driver, Msg};
use crate::env::SecretValue;
use crate::redact::Redactor;
use gantry_api::model::ApiCommand;
use gantry_engine::{State, UnitConfig, UnitId};
use gantry_host::Request;
use gantry_plan::{Plan, PlanUnit};
use gantry_spec::Spec;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::oneshot;

/// What loading the stack file again gives: the spec and the selected plan, or the
/// problems found, rendered as `gantry check` renders them. The argument names the services
/// taken on since the start (enabled though the selection left them out): selected too.
pub type LoadFn = dyn Fn(&[String]) -> Result<(Spec, Plan), String> + Send + Sync;

/// Loads the stack file `gantry up` runs again, with the same path and selection
/// (the CLI's loader: one implementation of loading). Its error starts with
/// [`INVALID`] when the file has errors.
#[derive(Clone)]
pub struct Reloader(pub Arc<LoadFn>);

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader")
    }
}

/// The start of a reload's answer when the file is invalid (the API answers 422).
pub const INVALID: &str = gantry_api::INVALID_FILE;

/// A reloaded file, with what spawning its services needs (built off the loop).
pub(super) struct Loaded {
    pub(super) spec: Spec,
    pub(super) plan: Plan,
    pub(super) secrets: Vec<SecretValue>,
    /// Per unit of `plan`: its environment (env files and secrets read again).
    pub(super) envs: Vec<Result<crate::envset::Env, String>>,
}

/// Who waits for the answer of the reload under way.
pub(super) type Waiter = oneshot::Sender<Result<String, String>>;

impl Driver {
    /// Starts a reload (SIGHUP: `reply` is `None`). The file is read, decoded, planned and
    /// its secrets and environments resolved on tasks; `reloaded` applies the result.
    /// A reload asked for while one is under way gets that one's answer.
    pub(super) fn reload(&mut self, what: &str, reply: Option<Waiter>) {
        let refuse = |reply: Option<Waiter>, out: &crate::output::Output, e: String| {
            out.gantry_line(&format!("reload ({what}): {e}"));
            if let Some(r) = reply {
                let _ = r.send(Err(e));
            }
        };
        let Some(reloader) = self.reloader.clone() else {
            return refuse(
                reply,
                &self.out,
                "this instance cannot reload its file; run `gantry down` and `gantry up`".into(),
            );
        };
        if self.host.engine().is_shutting_down() {
            return refuse(
                reply,
                &self.out,
                "cannot reload: the stack is shutting down".into(),
            );
        }
        let under_way = self.reload_waiters.is_some();
        let waiters = self.reload_waiters.get_or_insert_with(Vec::new);
        waiters.extend(reply);
        if under_way {
            return;
        }
        self.out
            .gantry_line(&format!("reload ({what}): reading {}", self.api_file()));
        let taken_on = self.taken_on.clone();
        self.spawn_load(reloader, taken_on, |result| Msg::Reloaded(Box::new(result)));
    }

    /// Loads the stack file again off the event loop (its selection widened by `taken_on`):
    /// read, decoded and planned on the blocking pool, secrets resolved, environments built;
    /// `msg` wraps the result for the loop.
    pub(super) fn spawn_load(
        &self,
        reloader: Reloader,
        taken_on: Vec<String>,
        msg: impl FnOnce(Result<Loaded, String>) -> Msg + Send + 'static,
    ) {
        let (base, reaper, tx) = (self.base_dir.clone(), self.reaper.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = async {
                let (spec, plan) = tokio::task::spawn_blocking(move || (reloader.0)(&taken_on))
                    .await
                    .map_err(|e| format!("the loader failed: {e}"))??;
                let (report, secrets) =
                    crate::preflight::resolve_secrets(&spec, &base, &reaper).await;
                if !report.go() {
                    let failed: Vec<String> = report
                        .checks
                        .iter()
                        .filter(|c| c.status == crate::preflight::Status::Fail)
                        .map(|c| c.message.clone())
                        .collect();
                    return Err(format!(
                        "secrets did not resolve, nothing changed: {}",
                        failed.join("; ")
                    ));
                }
                // Env files are read here, on the blocking pool.
                tokio::task::spawn_blocking(move || {
                    let global = crate::env::global_env(&spec, &base);
                    let envs = plan
                        .units
                        .iter()
                        .map(|u| match &global {
                            Ok(g) => crate::env::service_env(g, &u.service, &base, &secrets),
                            Err(e) => Err(e.clone()),
                        })
                        .collect();
                    Loaded {
                        spec,
                        plan,
                        secrets,
                        envs,
                    }
                })
                .await
                .map_err(|e| format!("building the environments failed: {e}"))
            }
            .await;
            let _ = tx.send(msg(result));
        });
    }

    /// The reloaded file is here: refused, or applied; every waiter gets the answer.
    pub(super) fn reloaded(&mut self, result: Result<Loaded, String>) {
        let answer = result.and_then(|loaded| self.apply_reload(loaded));
        let answer = match answer {
            Ok(summary) => {
                self.out.gantry_line(&format!("reload: {summary}"));
                if let Some(store) = &self.store {
                    store.resolve_missions("reload", None);
                }
                Ok(summary)
            }
            Err(e) => {
                let e = self.redactor.redact_owned(e);
                self.out
                    .gantry_line(&format!("reload refused, nothing changed: {e}"));
                self.event(serde_json::json!({ "event": "reload_refused", "error": e }));
                self.open_mission(&gantry_state::missions::NewMission {
                    service: None,
                    layer: None,
                    check: "reload".into(),
                    error: e.clone(),
                    output: Vec::new(),
                    fix_criteria: "a reload of the stack file succeeds".into(),
                    next_step:
                        "fix the file (`gantry check` lists every problem), then `gantry reload`"
                            .into(),
                });
                Err(e)
            }
        };
        for id in std::mem::take(&mut self.reload_audits) {
            self.audit_end(id, &answer);
        }
        for w in self.reload_waiters.take().unwrap_or_default() {
            let _ = w.send(answer.clone());
        }
        self.host.mark_dirty();
    }

    pub(super) fn api_file(&self) -> String {
        self.api.file().to_string()
    }

    /// Diffs the reloaded file against the running plan and applies the difference.
    fn apply_reload(&mut self, mut new: Loaded) -> Result<String, String> {
        // Services get the OFREP variables as at start and the flags' as they are now, so
        // they are no difference: into one shared base, as at the start (a reload of 1,000
        // services made them ~600 bytes of own entries each).
        let extra: Vec<(String, String)> = self
            .ofrep_env
            .iter()
            .cloned()
            .chain(self.flag_env.values().cloned())
            .collect();
        crate::envset::Env::add_shared(new.envs.iter_mut().flatten(), &extra);
        if self.host.engine().is_shutting_down() {
            return Err("the stack is shutting down".into());
        }
        // The same services, or refused (sets: a stack of 10,000 services stays cheap).
        let old_names: HashSet<&str> = self.plan.units.iter().map(PlanUnit::name).collect();
        let new_names: HashSet<&str> = new.plan.units.iter().map(PlanUnit::name).collect();
        let added: Vec<String> = new
            .plan
            .units
            .iter()
            .filter(|u| !old_names.contains(u.name()))
            .map(|u| u.service.base_name().to_string())
            .fold(Vec::new(), |mut acc, n| {
                if !acc.contains(&n) {
                    acc.push(n);
                }
                acc
            });
        let removed: Vec<&str> = self
            .plan
            .units
            .iter()
            .map(PlanUnit::name)
            .filter(|n| !new_names.contains(n))
            // A blue/green rollout's green instances are gantry's own, not the file's.
            .filter(|n| {
                !self
                    .greens
                    .iter()
                    .any(|g| self.plan.units[g.0].name() == *n)
            })
            .collect();
        if !removed.is_empty() {
            return Err(format!(
                "reload cannot remove services yet: removed {}; run `gantry down` and `gantry up` (or `gantry disable` them)",
                removed.join(", ")
            ));
        }
        // Each new unit's engine definition, its dependencies renumbered to the running
        // units (the new plan may order them differently).
        let running: std::collections::HashMap<String, usize> = self
            .plan
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name().to_string(), i))
            .collect();
        let mut configs: Vec<(UnitId, UnitConfig, usize)> = Vec::new();
        let mut rewired = Vec::new();
        for (j, u) in new.plan.units.iter().enumerate() {
            let Some(&i) = running.get(u.name()) else {
                continue;
            };
            let mut config = u.engine_config();
            for d in &mut config.deps {
                let name = new.plan.units[d.unit.0].name();
                d.unit = UnitId(running.get(name).copied().unwrap_or(usize::MAX));
            }
            let old = self.host.unit(UnitId(i)).config;
            if old.deps != config.deps || old.layer != config.layer || old.kind != config.kind {
                rewired.push(u.name().to_string());
            }
            configs.push((UnitId(i), config, j));
        }
        if !rewired.is_empty() {
            return Err(format!(
                "reload cannot change dependencies, layers or kinds yet: {}; run `gantry down` and `gantry up`",
                rewired.join(", ")
            ));
        }
        // Services new in the file join stopped now (every check above passed), and start
        // below, once the changed ones are applied.
        let running_count = self.plan.units.len();
        let added_units = if added.is_empty() {
            Vec::new()
        } else {
            self.add_services(&new, &added, "added to the file; started by a reload")?
        };
        // Settings that only apply at gantry's start.
        let mut warnings = Vec::new();
        let (old_s, new_s) = (&self.spec.settings, &new.spec.settings);
        if old_s.state_dir != new_s.state_dir {
            warnings.push("state_dir".to_string());
        }
        if old_s.api != new_s.api {
            warnings.push("api".to_string());
        }
        if old_s.revalidate != new_s.revalidate {
            warnings.push("revalidate".to_string());
        }
        // The proxy's listeners, limits and routes are built once (its instances follow).
        let ingress_of = |spec: &Spec| {
            format!(
                "{:?}",
                super::ingress::config(spec, &self.base_dir, std::path::Path::new(""))
            )
        };
        if ingress_of(&self.spec) != ingress_of(&new.spec) {
            warnings.push("[ingress]".to_string());
        }
        // Which services changed: their engine definition, or what spawning them takes.
        let mut changed: Vec<(usize, UnitId, UnitConfig, usize)> = Vec::new();
        for (id, config, j) in configs {
            let old_u = &self.plan.units[id.0];
            let new_u = &new.plan.units[j];
            if old_u.service.limits != new_u.service.limits {
                warnings.push(format!("{}: memory_max / cpu_max", old_u.name()));
            }
            let env_now = self.svcs[id.0].spawn.as_ref().map(|s| &s.env);
            let env_new = new.envs[j].as_ref();
            let differs = *self.host.unit(id).config != config
                || env_now != env_new
                || !same_definition(&old_u.service, &new_u.service);
            if differs {
                changed.push((new_u.wave, id, config, j));
            }
        }
        changed.sort_by_key(|(wave, id, _, _)| (*wave, id.0));
        // The new secrets are masked before any service can print them.
        for s in &new.secrets {
            if !self.masked.contains(&s.value) {
                self.masked.push(s.value.clone());
            }
        }
        self.redactor = Redactor::new(self.masked.iter());
        self.secrets = new.secrets.clone();
        self.shutdown_timeout = new.spec.settings.shutdown_timeout.0;
        let mut restarted = Vec::new();
        let mut updated = Vec::new();
        let mut refused = Vec::new();
        let changed_names: Vec<String> = changed
            .iter()
            .map(|(_, id, _, _)| self.plan.units[id.0].name().to_string())
            .collect();
        for (_, id, config, j) in changed {
            let name = self.plan.units[id.0].name().to_string();
            let new_u = &new.plan.units[j];
            let svc = match super::svc::make_svc(
                new_u,
                new.envs[j].clone(),
                &self.base_dir,
                &self.state_dir,
                &self.api_file(),
            ) {
                Ok(s) => s,
                Err(e) => {
                    refused.push(format!("{name}: {e}"));
                    continue;
                }
            };
            if let Err(e) = self.host.replace_config(id, config) {
                refused.push(format!("{name}: {e}"));
                continue;
            }
            let logs_changed = self.plan.units[id.0].service.logs != new_u.service.logs;
            let listen = self.svcs[id.0].take_definition(svc, logs_changed);
            if listen {
                self.start_notify_listener(id);
            }
            // A service a person stopped (or one skipped) keeps its state; it starts with
            // the new definition when it starts.
            let state = self.host.unit(id).state;
            if matches!(state, State::Stopped | State::Skipped | State::Pending) {
                updated.push(name);
                continue;
            }
            match self.host.request(&ApiCommand::Restart(name.clone())) {
                Ok(request @ Request::Service { .. }) => {
                    self.host.apply(&request);
                    restarted.push(name);
                }
                Ok(_) => {}
                Err(e) => refused.push(format!("{name}: {e}")),
            }
        }
        // The running plan holds the new definitions (revalidation checks what the file
        // says now); those that could not be applied keep the old one.
        for (j, u) in new.plan.units.iter().enumerate() {
            if let Some(&i) = running.get(u.name())
                && !refused
                    .iter()
                    .any(|r| r.starts_with(&format!("{}: ", u.name())))
            {
                self.plan.units[i].service = new.plan.units[j].service.clone();
            }
        }
        if let Some(ing) = &mut self.ingress {
            // A changed `upstream` reaches the proxy with the next sync.
            ing.replan(&self.plan);
        }
        let unchanged = running_count - changed_names.len();
        let mut started = Vec::new();
        for unit in &added_units {
            match self.host.request(&ApiCommand::Start(unit.clone())) {
                Ok(request @ Request::Service { .. }) => {
                    self.host.apply(&request);
                    started.push(unit.clone());
                }
                Ok(_) => {}
                Err(e) => refused.push(format!("{unit}: {e}")),
            }
        }
        self.spec = super::build::lean_spec(new.spec, &self.plan);
        self.host.mark_dirty();
        let mut summary = if changed_names.is_empty() {
            format!("nothing changed; {unchanged} unchanged")
        } else {
            format!(
                "{} changed — {}; {unchanged} unchanged",
                changed_names.join(", "),
                if restarted.is_empty() {
                    "none running, none restarted".to_string()
                } else {
                    format!("restarting {}", restarted.join(", "))
                }
            )
        };
        if !started.is_empty() {
            summary.push_str(&format!("; added and starting {}", started.join(", ")));
        }
        if !updated.is_empty() {
            summary.push_str(&format!(
                "; {} not running: the new definition applies at its next start",
                updated.join(", ")
            ));
        }
        if !refused.is_empty() {
            summary.push_str(&format!("; not applied: {}", refused.join("; ")));
        }
        if !warnings.is_empty() {
            summary.push_str(&format!(
                "; warning: {} changed and needs a restart of gantry (`gantry down`, `gantry up`)",
                warnings.join(", ")
            ));
        }
        self.event(serde_json::json!({
            "event": "reloaded", "changed": changed_names, "restarted": restarted, "added": started,
            "unchanged": unchanged, "refused": refused, "needs_restart": warnings,
        }));
        Ok(summary)
    }
}

/// Whether two definitions of one service spawn, probe, stop and log it the same way
/// (what the engine's `UnitConfig` and the environment do not already cover).
fn same_definition(a: &gantry_spec::Service, b: &gantry_spec::Service) -> bool {
    a.command.as_ref().map(|c| &c.value) == b.command.as_ref().map(|c| &c.value)
        && a.working_dir == b.working_dir
        && same_probe(&a.startup, &b.startup)
        && same_probe(&a.readiness, &b.readiness)
        && same_probe(&a.liveness, &b.liveness)
        && a.stop_signal.value == b.stop_signal.value
        && a.cleanup == b.cleanup
        && a.remediate == b.remediate
        && a.logs == b.logs
        && match (&a.migrate, &b.migrate) {
            (Some(x), Some(y)) => {
                let mut y = y.clone();
                y.database.span = x.database.span.clone();
                *x == y
            }
            (x, y) => x.is_none() && y.is_none(),
        }
}

/// Two probes that run the same way, wherever they are written in the file (their spans
/// differ when lines above them were added or removed).
fn same_probe(a: &Option<Box<gantry_spec::Probe>>, b: &Option<Box<gantry_spec::Probe>>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => {
            **x == gantry_spec::Probe {
                span: x.span.clone(),
                ..(**y).clone()
            }
        }
        (x, y) => x.is_none() && y.is_none(),
    }
}

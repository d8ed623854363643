//! `gantry enable NAME` of a service this run's selection (`--profile`, `--only`, `--except`)
//! left out: the file loaded again with the selection widened, the service's units and the hard
//! dependencies missing appended to the running plan, engine and host, then enabled gradually
//! (dependencies first, each through its readiness gate). Later reloads keep them selected.

use super::reload::{Loaded, Waiter};
use super::{Driver, Msg};
use gantry_api::model::ApiCommand;
use gantry_host::Request;

/// A take-on under way: who waits for its answer and its audit row.
pub(super) struct TakeOn {
    pub(super) name: String,
    pub(super) actor: String,
    pub(super) reply: Waiter,
    pub(super) audit: Option<i64>,
}

impl Driver {
    /// Whether `Enable(name)` names a service of the file that this run does not have.
    pub(super) fn left_out(&self, cmd: &ApiCommand) -> bool {
        match cmd {
            ApiCommand::Enable(name) => {
                self.plan.units_of(name).is_none() && self.file_service(name).is_some()
            }
            _ => false,
        }
    }

    /// Starts taking on `name`: the file is loaded again off the loop with `name` selected.
    pub(super) fn take_on(&mut self, take: TakeOn) {
        let refuse = |take: TakeOn, me: &mut Driver, e: String| {
            if let Some(id) = take.audit {
                me.audit_end(id, &Err(e.clone()));
            }
            let _ = take.reply.send(Err(e));
        };
        let Some(reloader) = self.reloader.clone() else {
            let e = format!(
                "cannot enable {}: this run's selection left it out and this instance cannot load its file again; stop gantry and start it with {} selected",
                take.name, take.name
            );
            return refuse(take, self, e);
        };
        if self.host.engine().boot_outcome().is_none() || self.host.engine().is_shutting_down() {
            let e = format!(
                "cannot enable {} now: a service left out by the selection is taken on once the boot is decided and until the shutdown; try again in a moment",
                take.name
            );
            return refuse(take, self, e);
        }
        self.out.gantry_line(&format!(
            "{}: enable requested through the API by {}; it was left out by this run's selection, loading {} to take it on",
            take.name,
            take.actor,
            self.api_file()
        ));
        let mut taken_on = self.taken_on.clone();
        taken_on.push(take.name.clone());
        self.spawn_load(reloader, taken_on, move |result| Msg::TakenOn {
            take: Box::new(take),
            result: Box::new(result),
        });
    }

    /// The file is loaded: the service and its missing dependencies join the running stack
    /// and are enabled; the waiter gets the answer.
    pub(super) fn taken_on(&mut self, take: TakeOn, result: Result<Loaded, String>) {
        let answer = result.and_then(|loaded| self.apply_take_on(&take.name, loaded));
        let answer = answer.map_err(|e| self.redactor.redact_owned(e));
        match &answer {
            Ok(message) => self.out.gantry_line(&format!("{}: {message}", take.name)),
            Err(e) => self
                .out
                .gantry_line(&format!("{}: not enabled: {e}", take.name)),
        }
        if let Some(id) = take.audit {
            self.audit_end(id, &answer);
        }
        let _ = take.reply.send(answer);
        self.host.mark_dirty();
    }

    fn apply_take_on(&mut self, name: &str, loaded: Loaded) -> Result<String, String> {
        if self.host.engine().is_shutting_down() {
            return Err("the stack is shutting down".into());
        }
        // Enabled meanwhile (two enables at once): the second is a plain enable.
        if self.plan.units_of(name).is_some() {
            return self.enable_units(name);
        }
        let why = format!("{name} was left out by this run's selection; enabled");
        let names = self.add_services(&loaded, &[name.to_string()], &why)?;
        self.taken_on.push(name.to_string());
        self.event(serde_json::json!({
            "event": "taken_on", "service": name, "units": names,
        }));
        let enabled = self.enable_units(name)?;
        Ok(format!(
            "taken on ({} added: {}); {enabled}",
            names.len(),
            names.join(", ")
        ))
    }

    /// Appends `services` of `loaded` (and their hard dependencies this run does not have) to
    /// the running plan, engine, host, proxy and API graph, stopped with `why`; the names of
    /// the units added, dependencies first.
    pub(super) fn add_services(
        &mut self,
        loaded: &Loaded,
        services: &[String],
        why: &str,
    ) -> Result<Vec<String>, String> {
        let mut plan = self.plan.clone();
        let added = plan.take_on(&loaded.plan, services)?;
        // Every new unit's definition, built before anything changes.
        let flag_vars: Vec<(String, String)> = self.flag_env.values().cloned().collect();
        let mut svcs = Vec::with_capacity(added.len());
        for &i in &added {
            let u = &plan.units[i];
            let j = loaded
                .plan
                .index(u.name())
                .ok_or_else(|| format!("{} is not in the file any more", u.name()))?;
            let mut env = loaded.envs[j].clone();
            if let Ok(env) = &mut env {
                super::flags::add_env(env, &self.ofrep_env);
                super::flags::add_env(env, &flag_vars);
            }
            svcs.push(super::svc::make_svc(
                u,
                env,
                &self.base_dir,
                &self.state_dir,
                &self.api_file(),
            )?);
        }
        let configs = added
            .iter()
            .map(|&i| plan.units[i].engine_config())
            .collect();
        let ids = self.host.add_units(configs, why)?;
        // The new secrets are masked before any new service can print them.
        for s in &loaded.secrets {
            if !self.masked.contains(&s.value) {
                self.masked.push(s.value.clone());
            }
        }
        self.redactor = crate::redact::Redactor::new(self.masked.iter());
        let names: Vec<String> = added
            .iter()
            .map(|&i| plan.units[i].name().to_string())
            .collect();
        self.plan = plan;
        // `/api/v1/graph` shows the units taken on (the snapshot carries it from now on).
        self.api.graph = gantry_plan::render_json(&self.plan).into();
        self.svcs.extend(svcs);
        self.usage.resize(self.svcs.len(), None);
        self.remediated.resize(self.svcs.len(), false);
        for id in ids {
            self.start_notify_listener(id);
        }
        if let Some(ing) = &mut self.ingress {
            ing.replan(&self.plan);
        }
        Ok(names)
    }

    /// `Enable` of every unit of `name` through the host (the gradual enable).
    fn enable_units(&mut self, name: &str) -> Result<String, String> {
        let units = self
            .plan
            .units_of(name)
            .ok_or_else(|| format!("unknown service `{name}`"))?;
        let mut replies = Vec::with_capacity(units.len());
        for i in units {
            let unit = self.plan.units[i].name().to_string();
            if let request @ Request::Service { .. } =
                self.host.request(&ApiCommand::Enable(unit))?
            {
                replies.push(self.host.apply(&request));
            }
        }
        Ok(replies.join("; "))
    }
}

//! The driver's side of per-service switches: `gantry disable` / `gantry enable` kept in the
//! state store (table `service_switches`), laid on the engine before the boot, applied to every
//! instance of a replicated service, and shown in the API snapshot with who, why and since.

use super::Driver;
use gantry_api::model::{ApiCommand, Caller};
use gantry_engine::{Engine, UnitId};
use gantry_host::{Request, Verb};
use gantry_plan::Plan;
use gantry_state::store::Store;
use gantry_state::switches::Switch;
use std::collections::BTreeMap;

/// The switches kept by earlier runs, by service name.
pub(super) type Switches = BTreeMap<String, Switch>;

/// What the engine shows as the reason of a disabled unit: `disabled by cli:bob: maintenance`.
fn why(switch: &Switch) -> String {
    let reason = switch
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    format!("disabled by {}{reason}", switch.actor)
}

/// Reads the switches an earlier run left in the state store and presets the disabled units
/// on the engine (not started at the boot, their hard dependents skipped). Returns them and
/// the lines to print (one per disabled service, and one per switch naming a service the
/// file no longer has: it is kept, in case the service comes back).
pub(super) fn load(
    stored: Option<&Store>,
    plan: &Plan,
    engine: &mut Engine,
) -> (Switches, Vec<String>) {
    let mut lines = Vec::new();
    let stored = match stored.map(|s| s.switches()) {
        None => Vec::new(),
        Some(Ok(all)) => all,
        Some(Err(e)) => {
            lines.push(format!(
                "warning: {e}; no service is kept disabled by this boot"
            ));
            Vec::new()
        }
    };
    let mut switches = Switches::new();
    for s in stored {
        match plan.units_of(&s.name) {
            Some(units) if s.state == "disabled" => {
                for i in units {
                    engine.preset_disabled(UnitId(i), why(&s));
                }
                lines.push(format!(
                    "{}: {}; not started (`gantry enable {}` starts it)",
                    s.name,
                    s.describe(),
                    s.name
                ));
            }
            Some(_) => {}
            None => lines.push(format!(
                "{} is {}, and this run does not have it (not in the stack file, or left out by the selection); the switch is kept (`gantry enable {}` in a run that has it clears it)",
                s.name,
                s.describe(),
                s.name
            )),
        }
        switches.insert(s.name.clone(), s);
    }
    (switches, lines)
}

impl Driver {
    /// `gantry disable` / `gantry enable` of a service (every instance of a replicated one):
    /// resolved for every unit first (an enable of a service that is not disabled is refused),
    /// then the switch is written to the state store, then the engine is told.
    pub(super) fn switch_command(
        &mut self,
        cmd: &ApiCommand,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<String, String> {
        let (name, disable) = match cmd {
            ApiCommand::Disable(n) => (n, true),
            ApiCommand::Enable(n) => (n, false),
            _ => return Err("not a switch command".to_string()),
        };
        let Some(units) = self.plan.units_of(name) else {
            // In the file but left out of this run by the selection (an enable takes it on,
            // take_on.rs): nothing of it runs, so there is nothing to disable.
            if self.file_service(name).is_some() {
                return Err(format!(
                    "cannot disable {name}: this run's selection (--profile / --only / --except) left it out, so it is not running; `gantry enable {name}` would take it on"
                ));
            }
            return Err(format!("unknown service `{name}`"));
        };
        let mut requests = Vec::with_capacity(units.len());
        for i in units {
            let unit = self.plan.units[i].name().to_string();
            let one = if disable {
                ApiCommand::Disable(unit)
            } else {
                ApiCommand::Enable(unit)
            };
            requests.push(self.host.request(&one)?);
        }
        self.open_pending_store();
        let Some(store) = &self.store else {
            return Err(format!(
                "cannot {} {name}: the state store is not open, so the switch would not outlive this run; see the warnings gantry printed at the boot",
                if disable { "disable" } else { "enable" }
            ));
        };
        let switch = if disable {
            Some(store.set_switch(name, "disabled", &caller.actor, reason)?)
        } else {
            store.clear_switch(name)?;
            None
        };
        let why_line = reason.map(|r| format!(": {r}")).unwrap_or_default();
        self.out.gantry_line(&format!(
            "{name}: {} requested through the API by {}{why_line}",
            if disable { "disable" } else { "enable" },
            caller.actor
        ));
        let mut replies = Vec::with_capacity(requests.len());
        for mut request in requests {
            if let (
                Request::Service {
                    verb: Verb::Disable,
                    why,
                    ..
                },
                Some(s),
            ) = (&mut request, &switch)
            {
                *why = Some(self::why(s));
            }
            replies.push(self.host.apply(&request));
        }
        match switch {
            Some(s) => {
                self.switches.insert(name.clone(), s);
            }
            None => {
                self.switches.remove(name);
            }
        }
        Ok(replies.join("; "))
    }

    /// Each unit's switch (`disabled`) and its who / since / why, for the API snapshot.
    pub(super) fn switch_views(&self) -> Vec<Option<(String, String)>> {
        let mut views = vec![None; self.plan.units.len()];
        for s in self.switches.values() {
            for i in self.plan.units_of(&s.name).unwrap_or_default() {
                if let Some(v) = views.get_mut(i) {
                    *v = Some((s.state.clone(), s.describe()));
                }
            }
        }
        views
    }
}

//! The driver's side of `gantry quarantine` / `gantry release`: freeze (or thaw) a service's process tree, every instance of a replicated one, tell the engine (probes ignored, no restart) and the ingress (not ready), and show who, why and since in status. A quarantine lives as long as its processes: it is not kept across restarts of gantry.

use super::Driver;
use gantry_api::model::{ApiCommand, Caller};
use gantry_engine::{Command, UnitId};
use gantry_state::switches::Switch;

impl Driver {
    /// Quarantines or releases a service: every instance is checked first (a release of a
    /// service that is not quarantined, a quarantine of one without a running process, of a
    /// disabled one or of one already quarantined are refused with what to do), then frozen
    /// or thawed, then the engine is told.
    pub(super) fn quarantine_command(
        &mut self,
        cmd: &ApiCommand,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<String, String> {
        let (name, on) = match cmd {
            ApiCommand::Quarantine(n) => (n.clone(), true),
            ApiCommand::Release(n) => (n.clone(), false),
            _ => return Err("not a quarantine command".to_string()),
        };
        let Some(units) = self.plan.units_of(&name) else {
            return Err(format!("unknown service `{name}`"));
        };
        let engine = self.host.engine();
        if engine.is_shutting_down() {
            let verb = if on { "quarantine" } else { "release" };
            return Err(format!("cannot {verb} {name}: the stack is shutting down"));
        }
        let mut targets = Vec::with_capacity(units.len());
        for &i in &units {
            let id = UnitId(i);
            let v = engine.unit(id);
            let unit = v.name.to_string();
            if on {
                if engine.quarantined(id) {
                    return Err(format!(
                        "cannot quarantine {unit}: it is quarantined already; `gantry release {name}` thaws it"
                    ));
                }
                if let Some(why) = engine.disabled(id) {
                    return Err(format!(
                        "cannot quarantine {unit}: it is {why}; there is no process to freeze"
                    ));
                }
                let Some((_, pid)) = self.svcs[i].live else {
                    return Err(format!(
                        "cannot quarantine {unit}: it has no running process (it is {}); `gantry start {name}` starts it",
                        v.state
                    ));
                };
                targets.push((i, unit, pid));
            } else {
                if !engine.quarantined(id) {
                    return Err(format!(
                        "cannot release {unit}: it is not quarantined (it is {}); `gantry quarantine {name} --reason ...` freezes it",
                        v.state
                    ));
                }
                targets.push((i, unit, 0));
            }
        }
        let why_line = reason.map(|r| format!(": {r}")).unwrap_or_default();
        self.out.gantry_line(&format!(
            "{name}: {} requested through the API by {}{why_line}",
            if on { "quarantine" } else { "release" },
            caller.actor
        ));
        let mut replies = Vec::with_capacity(targets.len());
        for (i, unit, pid) in targets {
            if on {
                let pgid = i32::try_from(pid).unwrap_or(0);
                let method = self.limiter.freeze_unit(i, &unit, pgid).map_err(|e| {
                    format!("cannot quarantine {unit}: {e}; it keeps running as before")
                })?;
                self.host.command(Command::Quarantine(UnitId(i)));
                replies.push(format!(
                    "{unit} quarantined ({method}): out of the ingress, probes and restarts until `gantry release {name}`"
                ));
            } else {
                // Probes count again once the processes run again.
                let thawed = self.limiter.thaw_unit(i);
                self.host.command(Command::Release(UnitId(i)));
                match thawed {
                    Ok(_) => replies.push(format!(
                        "{unit} released: thawed, probes resume, back in the ingress once ready"
                    )),
                    Err(e) => {
                        return Err(format!(
                            "cannot thaw {unit}: {e}; its probes count again, so a frozen process will fail them"
                        ));
                    }
                }
            }
        }
        if on {
            self.switches.insert(
                name.clone(),
                Switch {
                    name: name.clone(),
                    state: "quarantined".to_string(),
                    reason: reason.map(str::to_string),
                    actor: caller.actor.clone(),
                    since: gantry_time::rfc3339_utc(std::time::SystemTime::now()),
                },
            );
        } else if self
            .switches
            .get(&name)
            .is_some_and(|s| s.state == "quarantined")
        {
            self.switches.remove(&name);
        }
        Ok(replies.join("; "))
    }

    /// The incarnation of `unit` exited: its quarantine ended with it (the engine's flag
    /// clears at the exit, the limiter thawed its group); status stops showing it once no
    /// instance of the service is quarantined.
    pub(super) fn quarantine_ended(&mut self, unit: UnitId) {
        let engine = self.host.engine();
        let ended: Vec<String> = self
            .switches
            .values()
            .filter(|s| s.state == "quarantined")
            .filter_map(|s| {
                let units = self.plan.units_of(&s.name)?;
                (units.contains(&unit.0) && !units.iter().any(|&i| engine.quarantined(UnitId(i))))
                    .then(|| s.name.clone())
            })
            .collect();
        for name in ended {
            self.switches.remove(&name);
        }
    }
}

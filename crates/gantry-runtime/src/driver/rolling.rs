//! `gantry restart NAME` of a replicated service: a rolling restart, one instance at a time —
//! drained by the ingress first (no new requests; in-flight ones finish within
//! `drain_timeout`), restarted, and the next one only once the new incarnation passed its
//! readiness gate, so the service keeps serving throughout.

use std::collections::VecDeque;

use gantry_engine as eng;
use gantry_engine::UnitId;

use super::{Driver, Msg};
use gantry_api::model::ApiCommand;
use gantry_host::Request;

/// Where one instance is in its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The ingress is draining it.
    Draining,
    /// Restart commanded; done when an incarnation after `gen` is up.
    Restarting { r#gen: eng::Gen },
}

/// A rolling restart in progress.
pub(super) struct Rolling {
    service: String,
    queue: VecDeque<UnitId>,
    current: Option<(UnitId, Phase)>,
    total: usize,
}

impl Rolling {
    /// The instance being drained or restarted now: planned work, which alerts leave alone.
    pub(super) fn current_unit(&self) -> Option<UnitId> {
        self.current.map(|(unit, _)| unit)
    }
}

impl Driver {
    /// Starts the rolling restart of replicated `service`; the API's answer.
    pub(super) fn rolling_restart(&mut self, service: &str) -> Result<String, String> {
        if let Some(r) = &self.rolling {
            return Err(format!(
                "a rolling restart of {} is in progress; wait for it to finish",
                r.service
            ));
        }
        let Some(group) = self.plan.replica_group(service) else {
            return Err(format!("`{service}` is not a replicated service"));
        };
        let units = group.units.iter().map(|&i| UnitId(i)).collect();
        self.out.gantry_line(&format!(
            "{service}: rolling restart of {} instances requested through the API",
            group.units.len()
        ));
        let total = self.rolling_units(service, units)?;
        Ok(format!(
            "rolling restart of {service}: {total} instances, one at a time, each drained first and ready again before the next"
        ))
    }

    /// Restarts `services` in the order given (a replicated one rolls: one instance at a time,
    /// drained first, so the restart costs it no request); what restarted and what was refused.
    pub(super) fn restart_services(&mut self, services: &[String]) -> (Vec<String>, Vec<String>) {
        let mut restarted = Vec::new();
        let mut refused = Vec::new();
        for svc in services {
            if self.plan.replica_group(svc).is_some() {
                match self.rolling_restart(svc) {
                    Ok(_) => restarted.push(format!("{svc} (rolling)")),
                    Err(e) => refused.push(format!("{svc}: {e}")),
                }
                continue;
            }
            match self.host.request(&ApiCommand::Restart(svc.clone())) {
                Ok(request @ Request::Service { .. }) => {
                    self.host.apply(&request);
                    restarted.push(svc.clone());
                }
                Ok(_) => {}
                Err(e) => refused.push(format!("{svc}: {e}")),
            }
        }
        self.host.mark_dirty();
        (restarted, refused)
    }

    /// Replaces `units` of `service` one at a time (a rolling restart, a rollout's promote);
    /// how many.
    pub(super) fn rolling_units(
        &mut self,
        service: &str,
        units: Vec<UnitId>,
    ) -> Result<usize, String> {
        if let Some(r) = &self.rolling {
            return Err(format!(
                "a rolling restart of {} is in progress; wait for it to finish",
                r.service
            ));
        }
        let queue: VecDeque<UnitId> = units.into_iter().collect();
        let total = queue.len();
        self.rolling = Some(Rolling {
            service: service.to_string(),
            queue,
            current: None,
            total,
        });
        self.roll();
        Ok(total)
    }

    /// Moves the rolling restart on (after every engine batch).
    pub(super) fn roll(&mut self) {
        loop {
            let Some(r) = &mut self.rolling else { return };
            match r.current {
                None => {
                    let Some(unit) = r.queue.pop_front() else {
                        let line = format!(
                            "{}: rolling restart done ({} instances)",
                            r.service, r.total
                        );
                        self.rolling = None;
                        self.out.gantry_line(&line);
                        return;
                    };
                    match &self.ingress {
                        Some(ing) => {
                            let name = self.plan.units[unit.0].name().to_string();
                            let drained = ing.handle.drain_instance(&r.service, &name);
                            r.current = Some((unit, Phase::Draining));
                            let tx = self.tx.clone();
                            tokio::spawn(async move {
                                drained.await;
                                let _ = tx.send(Msg::Drained { unit });
                            });
                            return;
                        }
                        None => {
                            r.current = Some((unit, Phase::Draining));
                            self.drained(unit);
                            return;
                        }
                    }
                }
                Some((_, Phase::Draining)) => return,
                Some((unit, Phase::Restarting { r#gen })) => {
                    let v = self.host.engine().unit(unit);
                    if v.r#gen > r#gen && gantry_host::is_up(v.state) {
                        r.current = None;
                        continue;
                    }
                    if v.state == eng::State::Failed {
                        let line = format!(
                            "{}: rolling restart stopped: {} failed ({}); the other instances were not restarted",
                            r.service,
                            v.name,
                            v.last_error.unwrap_or("no reason given")
                        );
                        self.rolling = None;
                        self.out.gantry_line(&line);
                    }
                    return;
                }
            }
        }
    }

    /// The ingress sent `unit` its last response: restart it.
    pub(super) fn drained(&mut self, unit: UnitId) {
        let Some(r) = &mut self.rolling else { return };
        if r.current != Some((unit, Phase::Draining)) {
            return;
        }
        let r#gen = self.host.engine().unit(unit).r#gen;
        r.current = Some((unit, Phase::Restarting { r#gen }));
        self.host.command(eng::Command::Restart(unit));
    }
}

//! The open incident: opened by a P0/P1 alert or by hand (`gantry incident open`), acknowledged
//! and resolved by hand (`ack`, `resolve`; one opened by an alert also resolves by itself when no
//! P0/P1 fires). Its timeline collects what happens while it is open; every change is an event
//! on the stream (`incident_opened`, `incident_acknowledged`, `incident_resolved`).

use super::Driver;
use gantry_api::model::{ApiCommand, Caller};

/// Which incident is open, and whether a person opened it.
#[derive(Debug, Default)]
pub(super) struct Incidents {
    pub(super) open: Option<i64>,
    pub(super) by_hand: bool,
    loaded: bool,
}

impl Driver {
    /// The incident an earlier run left open, read once the store is open.
    pub(super) fn load_incident(&mut self) {
        if self.incidents.loaded {
            return;
        }
        let Some(store) = &self.store else { return };
        self.incidents.loaded = true;
        if let Some(id) = store.open_incident_id() {
            self.incidents.open = Some(id);
            self.incidents.by_hand = store.incident_by_hand(id);
        }
    }

    /// Opens an incident (`by`: the person, for one opened by hand).
    pub(super) fn open_incident(
        &mut self,
        severity: &str,
        title: &str,
        detected_after_ms: u64,
        by: Option<&str>,
    ) -> Result<i64, String> {
        self.open_pending_store();
        self.load_incident();
        let Some(store) = &self.store else {
            return Err("the state store is not open; incidents live there".into());
        };
        if let Some(id) = self.incidents.open {
            return Err(format!(
                "incident {id} is open; add to it, or resolve it first (`gantry incident resolve {id}`)"
            ));
        }
        let id = store.open_incident(severity, title, detected_after_ms)?;
        if let Some((requests, failed)) = self.ingress_counters() {
            store.incident_note(
                id,
                "ingress",
                &format!("requests={requests} failed={failed}"),
            );
        }
        if let Some(by) = by {
            store.incident_note(
                id,
                "opened",
                &format!("by hand, by {by}: [{severity}] {title}"),
            );
        }
        self.incidents.open = Some(id);
        self.incidents.by_hand = by.is_some();
        self.out.gantry_line(&format!(
            "incident {id} opened: [{severity}] {title} (`gantry incident show {id}`)"
        ));
        self.event(serde_json::json!({
            "event": "incident_opened", "id": id, "severity": severity, "title": title,
            "by": by.unwrap_or("gantry"),
        }));
        Ok(id)
    }

    /// The ingress's request and failure totals over every route (5xx and upstream errors).
    fn ingress_counters(&self) -> Option<(u64, u64)> {
        let ing = self.ingress.as_ref()?;
        let (mut requests, mut failed) = (0, 0);
        for r in ing.handle.snapshot().routes {
            let (t, f) = super::alert_feed::route_counts(&r);
            requests += t;
            failed += f;
        }
        Some((requests, failed))
    }

    /// Resolves incident `id`.
    pub(super) fn close_incident(&mut self, id: i64, by: &str) -> Result<String, String> {
        let counters = self.ingress_counters();
        let Some(store) = &self.store else {
            return Err("the state store is not open".into());
        };
        if store.incident_status(id).is_some_and(|s| s != "resolved")
            && let Some((requests, failed)) = counters
        {
            store.incident_note(
                id,
                "ingress",
                &format!("requests={requests} failed={failed}"),
            );
        }
        if !store.resolve_incident(id, by)? {
            return Err(match store.incident_status(id) {
                Some(status) => format!("incident {id} is {status}, not open"),
                None => format!("no incident {id}"),
            });
        }
        if self.incidents.open == Some(id) {
            self.incidents.open = None;
            self.incidents.by_hand = false;
        }
        self.out.gantry_line(&format!(
            "incident {id} resolved by {by} (`gantry incident postmortem {id}` drafts the review)"
        ));
        self.event(serde_json::json!({ "event": "incident_resolved", "id": id, "by": by }));
        Ok(format!("incident {id} resolved"))
    }

    /// Adds to the open incident's timeline (alerts, state changes, operator actions).
    pub(super) fn incident_note(&self, kind: &str, text: &str) {
        if let (Some(store), Some(id)) = (&self.store, self.incidents.open) {
            store.incident_note(id, kind, text);
        }
    }

    /// Opens (or refreshes) a mission in the store; a new one goes on the open incident's
    /// timeline. Every mission the driver opens comes through here. Best effort, like the
    /// mission itself: the failure it records is reported anyway.
    pub(super) fn open_mission(&self, m: &gantry_state::missions::NewMission) {
        let Some(store) = &self.store else { return };
        if let Ok((id, true)) = store.open_mission_new(m) {
            let what = match &m.service {
                Some(service) => format!("{} ({service})", m.check),
                None => m.check.clone(),
            };
            let text = self
                .redactor
                .redact_owned(format!("mission {id} opened: {what}: {}", m.error));
            self.incident_note("mission", &text);
        }
    }

    /// `IncidentOpen` / `IncidentAck` / `IncidentResolve` from the API (already audited).
    pub(super) fn incident_command(
        &mut self,
        cmd: &ApiCommand,
        caller: &Caller,
    ) -> Result<String, String> {
        self.open_pending_store();
        self.load_incident();
        // The ack and the resolve are on the timeline once, as the audited actions they are
        // (`incident.ack`, `incident.resolve`, with who and why), noted before they act.
        match cmd {
            ApiCommand::IncidentOpen { severity, title } => {
                let id = self.open_incident(severity, title, 0, Some(&caller.actor))?;
                Ok(format!("incident {id} opened"))
            }
            ApiCommand::IncidentAck(id) => {
                let Some(store) = &self.store else {
                    return Err("the state store is not open".into());
                };
                if !store.ack_incident(*id)? {
                    return Err(match store.incident_status(*id) {
                        Some(status) => format!("incident {id} is {status}, not open"),
                        None => format!("no incident {id}"),
                    });
                }
                self.event(serde_json::json!({
                    "event": "incident_acknowledged", "id": id, "by": caller.actor,
                }));
                Ok(format!("incident {id} acknowledged"))
            }
            ApiCommand::IncidentResolve(id) => self.close_incident(*id, &caller.actor),
            _ => Err("not an incident command".into()),
        }
    }
}

//! The driver's side of the audit log: every API command is recorded in the state store before it
//! takes effect, then completed with its answer; a reload's row is completed when the reload ends.

use super::Driver;
use gantry_api::model::{ApiCommand, CommandRequest};
use gantry_state::audit::AuditEntry;

impl Driver {
    /// One command from the API: recorded, applied, answered, its row completed.
    pub(super) fn command(&mut self, request: CommandRequest) {
        let CommandRequest {
            command,
            caller,
            reason,
            reply,
        } = request;
        if command.is_read() {
            let _ = reply.send(self.api_command(command, &caller, reason.as_deref()));
            return;
        }
        let (action, target) = command.audit();
        let (before, after) = self.audit_change(&command);
        let id = self.audit_begin(&AuditEntry {
            actor: caller.actor.clone(),
            action: action.to_string(),
            target,
            reason: reason.clone(),
            before,
            after,
        });
        if self.left_out(&command)
            && let ApiCommand::Enable(name) = command
        {
            self.take_on(super::take_on::TakeOn {
                name,
                actor: caller.actor,
                reply,
                audit: id,
            });
            return;
        }
        if let ApiCommand::Rollback { service, to } = command {
            self.rollback_start(super::rollout_file::FileRollout {
                service,
                body: serde_json::json!({ "rollback": true, "to": to }),
                reply,
                audit: id,
            });
            return;
        }
        if super::rollout_file::from_file(&command)
            && let ApiCommand::Rollout { service, body } = command
        {
            self.rollout_from_file(super::rollout_file::FileRollout {
                service,
                body,
                reply,
                audit: id,
            });
            return;
        }
        if command == ApiCommand::Reload {
            self.reload_audits.extend(id);
            self.reload("API", Some(reply));
            return;
        }
        let answer = self.api_command(command, &caller, reason.as_deref());
        if let Some(id) = id {
            self.audit_end(id, &answer);
        }
        let _ = reply.send(answer);
    }

    /// Records an action about to be taken. When the store cannot be written the action still
    /// goes ahead (an operator stopping a broken stack must not be refused because its disk is
    /// full), and gantry says so on its output and the event stream. This is the one place every
    /// audited action, whoever its actor (an operator, a runbook, gantry itself), goes on the open
    /// incident's timeline.
    pub(super) fn audit_begin(&mut self, entry: &AuditEntry) -> Option<i64> {
        self.open_pending_store();
        // Flag values and states are not secrets, but nothing secret ever reaches the log.
        let entry = AuditEntry {
            before: entry.before.clone().map(|b| self.redactor.redact_owned(b)),
            after: entry.after.clone().map(|a| self.redactor.redact_owned(a)),
            ..entry.clone()
        };
        let entry = &entry;
        self.load_incident();
        let note = format!(
            "{}{} by {}{}",
            entry.action,
            entry
                .target
                .as_deref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default(),
            entry.actor,
            entry
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        self.incident_note("action", &self.redactor.redact_owned(note));
        let result = match &self.store {
            Some(store) => store.record_audit(entry),
            None => Err("the state store is not open".to_string()),
        };
        match result {
            Ok(id) => Some(id),
            Err(e) => {
                self.out.gantry_line(&format!(
                    "audit: {} by {} was not recorded: {e}",
                    entry.action, entry.actor
                ));
                self.event(serde_json::json!({
                    "event": "audit_failed",
                    "action": entry.action,
                    "actor": entry.actor,
                    "error": e,
                }));
                None
            }
        }
    }

    /// The state before a command and the state it asks for, as its audit row keeps them: a
    /// flag's value (a kill switch's `off` / `on`), the ingress mode, a service's state and its
    /// switch, release numbers. None where a command has no such state (or it is unknown: an
    /// unknown service or flag is refused anyway).
    fn audit_change(&self, command: &ApiCommand) -> (Option<String>, Option<String>) {
        match command {
            ApiCommand::SetFlag { key, value, .. } => (
                self.flags.value(key).map(|v| flag_text(key, &v)),
                Some(flag_text(key, value)),
            ),
            ApiCommand::UnsetFlag { key } => (
                self.flags.value(key).map(|v| flag_text(key, &v)),
                self.flags.base_value(key).map(|v| flag_text(key, &v)),
            ),
            ApiCommand::IngressMode { mode, shed_percent } => (
                Some(self.flags.mode_text()),
                Some(match shed_percent {
                    Some(p) if mode == "brownout" => format!("{mode} (shed {p}%)"),
                    _ => mode.clone(),
                }),
            ),
            ApiCommand::Start(n) | ApiCommand::Stop(n) | ApiCommand::Restart(n) => {
                (self.service_state(n), None)
            }
            ApiCommand::Disable(n) => (self.service_state(n), Some("disabled".into())),
            ApiCommand::Enable(n) => (self.service_state(n), Some("enabled".into())),
            ApiCommand::Quarantine(n) => (self.service_state(n), Some("quarantined".into())),
            ApiCommand::Release(n) => (self.service_state(n), Some("released".into())),
            ApiCommand::RolloutControl { service, action } => {
                let Some(a) = self.rollout.as_ref().filter(|a| a.service == *service) else {
                    return (None, None);
                };
                let (stable, new) = (release_text(a.stable_release), release_text(a.new_release));
                match action.as_str() {
                    "promote" => (stable, new),
                    "pause" | "resume" => (None, None),
                    _ => (new, stable),
                }
            }
            ApiCommand::Rollback { service, to } => {
                let Some(store) = &self.store else {
                    return (None, None);
                };
                let Ok(releases) = store.releases(service) else {
                    return (None, None);
                };
                match super::rollback::rollback_target(service, &releases, *to) {
                    Ok((current, target)) => (release_text(current), release_text(Some(target))),
                    Err(_) => (None, None),
                }
            }
            _ => (None, None),
        }
    }

    /// A service's state as its audit row shows it before a command: its switch when it has one
    /// (`disabled`, `quarantined`), else its state (`ready`; per instance when the instances of a
    /// replicated service differ: `api.1 ready, api.2 failed`); None for a name this run lacks.
    fn service_state(&self, name: &str) -> Option<String> {
        if let Some(s) = self.switches.get(name) {
            return Some(s.state.clone());
        }
        let units = self.plan.units_of(name)?;
        let engine = self.host.engine();
        let states: Vec<(String, String)> = units
            .iter()
            .map(|&i| {
                let v = engine.unit(gantry_engine::UnitId(i));
                (v.name.to_string(), v.state.to_string())
            })
            .collect();
        let first = states.first()?.1.clone();
        if states.iter().all(|(_, s)| *s == first) {
            return Some(first);
        }
        Some(
            states
                .iter()
                .map(|(n, s)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }

    /// Completes a recorded action with its answer (`ok: ...` / `refused: ...`).
    pub(super) fn audit_end(&mut self, id: i64, answer: &Result<String, String>) {
        let result = match answer {
            Ok(message) => format!("ok: {message}"),
            Err(message) => format!("refused: {message}"),
        };
        let result = self.redactor.redact_owned(result);
        if let Some(store) = &self.store
            && let Err(e) = store.finish_audit(id, &result)
        {
            self.out.gantry_line(&format!("audit: row {id}: {e}"));
        }
    }
}

/// A flag's value as the audit log shows it: `on` / `off` for a kill switch, JSON otherwise.
pub(super) fn flag_text(key: &str, value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Bool(on) if gantry_flags::KILL_SWITCHES.contains(&key) => {
            if *on { "on" } else { "off" }.to_string()
        }
        other => other.to_string(),
    }
}

/// `release 3`, for an audit row.
pub(super) fn release_text(number: Option<i64>) -> Option<String> {
    number.map(|n| format!("release {n}"))
}

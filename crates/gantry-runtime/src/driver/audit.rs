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
        let id = self.audit_begin(&AuditEntry {
            actor: caller.actor.clone(),
            action: action.to_string(),
            target,
            reason: reason.clone(),
            before: None,
            after: None,
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

//! Runbooks (`[runbooks.NAME]`) run by the driver: one at a time, step after step on the event
//! loop — each action through the same audited command path an operator's takes (actor
//! `runbook:NAME`), `run` steps as child processes off the loop, `wait` steps checked on every
//! turn until their state holds or their timeout — with every step on the output, the event
//! stream and the open incident's timeline. An alert rule's `auto_runbook` starts one at most once
//! per incident.

use super::{Driver, Msg};
use gantry_api::model::{ApiCommand, Caller, CommandRequest, Role};
use gantry_spec::{Runbook, RunbookAction};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How many finished runs are kept for `GET /api/v1/runbooks`.
const KEEP: usize = 20;

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
pub(super) struct StepResult {
    step: String,
    ok: bool,
    message: String,
}

/// A run, under way or finished.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RunRecord {
    runbook: String,
    actor: String,
    reason: Option<String>,
    started: String,
    /// `running`, `succeeded`, `failed`.
    status: &'static str,
    steps: Vec<StepResult>,
    total: usize,
}

/// Where the step in front is.
enum Phase {
    /// Not begun.
    Next,
    /// A command whose answer comes later (an enable that takes a service on).
    Answer(oneshot::Receiver<Result<String, String>>),
    /// A `run` step's process is running; its result comes as [`Msg::RunbookRan`].
    Running,
    /// A `wait` step: until its state holds, or this deadline.
    Waiting(Instant),
}

struct Active {
    book: Runbook,
    record: RunRecord,
    caller: Caller,
    phase: Phase,
}

#[derive(Default)]
pub(super) struct Runbooks {
    active: Option<Active>,
    done: Vec<RunRecord>,
    /// (incident or fingerprint, runbook) already auto-run: at most once each.
    auto_ran: BTreeSet<(String, String)>,
}

/// What `/health/ready` says: decided GO (or degraded), no shutdown, every required service ready.
fn stack_ready(snap: &gantry_api::model::Snapshot) -> bool {
    matches!(&snap.boot, gantry_api::model::BootPhase::Decided { outcome, .. } if outcome != "no-go")
        && !snap.shutting_down
        && snap.services.iter().all(|s| !s.required || s.ready)
}

impl Driver {
    /// `GET /api/v1/runbooks`: the definitions, the run under way, the last runs.
    pub(super) fn runbooks_json(&self) -> Result<String, String> {
        let books: Vec<serde_json::Value> = self
            .spec
            .runbooks
            .iter()
            .map(|b| {
                serde_json::json!({
                    "name": b.name.value,
                    "description": b.description,
                    "steps": b.steps.iter().map(|s| s.action.describe()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let rb = &self.runbooks;
        Ok(serde_json::json!({
            "runbooks": books,
            "running": rb.active.as_ref().map(|a| &a.record),
            "runs": rb.done.iter().rev().collect::<Vec<_>>(),
        })
        .to_string())
    }

    /// `RunRunbook`: a dry run describes, a run starts (the answer does not wait for the end).
    pub(super) fn runbook_command(
        &mut self,
        name: &str,
        dry_run: bool,
        caller: &Caller,
        reason: Option<&str>,
    ) -> Result<String, String> {
        let Some(book) = self.spec.runbooks.iter().find(|b| b.name.value == name) else {
            let names: Vec<&str> = self
                .spec
                .runbooks
                .iter()
                .map(|b| b.name.value.as_str())
                .collect();
            return Err(format!(
                "unknown runbook `{name}` (the file has: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
        };
        if dry_run {
            let steps: Vec<serde_json::Value> = book
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    serde_json::json!({
                        "step": i + 1,
                        "action": s.action.describe(),
                        "now": self.step_now(&s.action),
                    })
                })
                .collect();
            return Ok(serde_json::json!({
                "runbook": name,
                "dry_run": true,
                "steps": steps,
            })
            .to_string());
        }
        let book = book.clone();
        self.start_runbook(book, caller.actor.clone(), reason.map(str::to_string))
    }

    /// What a step would find now (a dry run's note).
    fn step_now(&self, action: &RunbookAction) -> String {
        match action {
            RunbookAction::Switch { flag, on } => {
                let now = self
                    .flags_value(flag)
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                if now == *on {
                    format!("{flag} is already {}", if now { "on" } else { "off" })
                } else {
                    format!("{flag} is {} now", if now { "on" } else { "off" })
                }
            }
            RunbookAction::Service { service, .. }
            | RunbookAction::Wait {
                service: Some(service),
                ..
            } => match self.plan.units_of(service) {
                Some(units) => units
                    .iter()
                    .map(|&i| {
                        let v = self.host.unit(gantry_engine::UnitId(i));
                        format!("{} is {}", v.name, v.state)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                None => format!("{service} is not part of this run"),
            },
            RunbookAction::Wait { service: None, .. } => {
                let ready = stack_ready(&self.api.snapshot.borrow());
                format!("the stack is {}", if ready { "ready" } else { "not ready" })
            }
            RunbookAction::Flag { key, .. } => match self.flags_value(key) {
                Some(v) => format!("{key} is {v} now"),
                None => format!("no flag `{key}`"),
            },
            RunbookAction::Rotate { .. } | RunbookAction::Run { .. } => "not run".to_string(),
        }
    }

    fn start_runbook(
        &mut self,
        book: Runbook,
        actor: String,
        reason: Option<String>,
    ) -> Result<String, String> {
        if let Some(a) = &self.runbooks.active {
            return Err(format!(
                "runbook {} is running (step {} of {}); wait for it to finish",
                a.record.runbook,
                a.record.steps.len() + 1,
                a.record.total
            ));
        }
        if self.host.engine().is_shutting_down() {
            return Err("the stack is shutting down".into());
        }
        let name = book.name.value.clone();
        let total = book.steps.len();
        self.out.gantry_line(&format!(
            "runbook {name}: started by {actor}{} ({total} steps)",
            reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
        // On the open incident's timeline through its audit row (`runbook.run`), once.
        self.event(
            serde_json::json!({ "event": "runbook_started", "runbook": name, "actor": actor }),
        );
        self.runbooks.active = Some(Active {
            caller: Caller {
                actor: format!("runbook:{name}"),
                role: Role::Operator,
            },
            record: RunRecord {
                runbook: name.clone(),
                actor,
                reason,
                started: gantry_time::rfc3339_utc(std::time::SystemTime::now()),
                status: "running",
                steps: Vec::new(),
                total,
            },
            book,
            phase: Phase::Next,
        });
        Ok(format!(
            "runbook {name} started: {total} steps (`gantry runbook status` follows it)"
        ))
    }

    /// Moves the running runbook on as far as it can now (every loop turn).
    pub(super) fn runbook_tick(&mut self) {
        for _ in 0..64 {
            let Some(active) = self.runbooks.active.as_mut() else {
                return;
            };
            let index = active.record.steps.len();
            let Some(step) = active.book.steps.get(index).cloned() else {
                self.finish_runbook();
                return;
            };
            match std::mem::replace(&mut active.phase, Phase::Next) {
                Phase::Next => self.begin_step(&step.action),
                Phase::Answer(mut rx) => match rx.try_recv() {
                    Ok(answer) => self.step_done(answer),
                    Err(oneshot::error::TryRecvError::Empty) => {
                        if let Some(a) = self.runbooks.active.as_mut() {
                            a.phase = Phase::Answer(rx);
                        }
                        return;
                    }
                    Err(oneshot::error::TryRecvError::Closed) => {
                        self.step_done(Err("the command was dropped".into()));
                    }
                },
                Phase::Running => {
                    if let Some(a) = self.runbooks.active.as_mut() {
                        a.phase = Phase::Running;
                    }
                    return;
                }
                Phase::Waiting(deadline) => {
                    let RunbookAction::Wait { service, state, .. } = &step.action else {
                        return;
                    };
                    if self.wait_holds(service.as_deref(), state) {
                        self.step_done(Ok(format!(
                            "{} is {state}",
                            service.as_deref().unwrap_or("the stack")
                        )));
                    } else if Instant::now() >= deadline {
                        self.step_done(Err(format!(
                            "{} did not become {state} in time",
                            service.as_deref().unwrap_or("the stack")
                        )));
                    } else {
                        if let Some(a) = self.runbooks.active.as_mut() {
                            a.phase = Phase::Waiting(deadline);
                        }
                        return;
                    }
                }
            }
        }
    }

    /// When the loop must look at a waiting step again at the latest.
    pub(super) fn runbook_due(&self) -> Option<Instant> {
        match self.runbooks.active.as_ref()?.phase {
            Phase::Waiting(deadline) => {
                Some(deadline.min(Instant::now() + Duration::from_millis(100)))
            }
            _ => None,
        }
    }

    fn begin_step(&mut self, action: &RunbookAction) {
        let Some(active) = self.runbooks.active.as_ref() else {
            return;
        };
        let caller = active.caller.clone();
        let reason = Some(format!(
            "runbook {} step {}",
            active.record.runbook,
            active.record.steps.len() + 1
        ));
        let command = match action {
            RunbookAction::Switch { flag, on: true } => Some(ApiCommand::SetFlag {
                key: (*flag).to_string(),
                value: serde_json::Value::Bool(true),
                expires: None,
            }),
            RunbookAction::Switch { flag, on: false } => Some(ApiCommand::UnsetFlag {
                key: (*flag).to_string(),
            }),
            RunbookAction::Flag {
                key,
                value,
                expires,
            } => Some(ApiCommand::SetFlag {
                key: key.clone(),
                value: value.clone(),
                expires: expires.map(|d| d.0),
            }),
            RunbookAction::Service { verb, service } => Some(match *verb {
                "start" => ApiCommand::Start(service.clone()),
                "stop" => ApiCommand::Stop(service.clone()),
                "restart" => ApiCommand::Restart(service.clone()),
                "disable" => ApiCommand::Disable(service.clone()),
                "enable" => ApiCommand::Enable(service.clone()),
                "quarantine" => ApiCommand::Quarantine(service.clone()),
                "release" => ApiCommand::Release(service.clone()),
                _ => ApiCommand::RolloutControl {
                    service: service.clone(),
                    action: "abort".into(),
                },
            }),
            RunbookAction::Rotate { secret } => Some(ApiCommand::Rotate(secret.clone())),
            RunbookAction::Run { command, timeout } => {
                self.spawn_run(command.clone(), timeout.0, &caller, reason.as_deref());
                if let Some(a) = self.runbooks.active.as_mut() {
                    a.phase = Phase::Running;
                }
                None
            }
            RunbookAction::Wait { timeout, .. } => {
                if let Some(a) = self.runbooks.active.as_mut() {
                    a.phase = Phase::Waiting(Instant::now() + timeout.0);
                }
                None
            }
        };
        if let Some(command) = command {
            // The operator's path: recorded in the audit log before it acts, then answered.
            let (tx, mut rx) = oneshot::channel();
            self.command(CommandRequest {
                command,
                caller,
                reason,
                reply: tx,
            });
            match rx.try_recv() {
                Ok(answer) => self.step_done(answer),
                Err(_) => {
                    if let Some(a) = self.runbooks.active.as_mut() {
                        a.phase = Phase::Answer(rx);
                    }
                }
            }
        }
    }

    /// A `run` step: the command in the stack's directory, off the loop, killed at its timeout.
    fn spawn_run(
        &mut self,
        argv: Vec<String>,
        timeout: Duration,
        caller: &Caller,
        reason: Option<&str>,
    ) {
        let id = self.audit_begin(&gantry_state::audit::AuditEntry {
            actor: caller.actor.clone(),
            action: "runbook.run_command".into(),
            target: Some(argv.join(" ")),
            reason: reason.map(str::to_string),
            before: None,
            after: None,
        });
        let (tx, dir, reaper) = (self.tx.clone(), self.base_dir.clone(), self.reaper.clone());
        tokio::spawn(async move {
            // Through the probe runner: the reaper is the one waitpid caller in gantry.
            let (outcome, lines) = crate::probe::capture(
                argv,
                crate::envset::Env::default(),
                Some(dir),
                timeout,
                &reaper,
            )
            .await;
            let last = lines
                .unwrap_or_default()
                .into_iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.chars().take(200).collect::<String>());
            let message = match last {
                Some(l) => format!("{}: {l}", outcome.message),
                None => outcome.message,
            };
            let result = if outcome.ok {
                Ok(message)
            } else {
                Err(message)
            };
            let _ = tx.send(Msg::RunbookRan { audit: id, result });
        });
    }

    /// A `run` step ended.
    pub(super) fn runbook_ran(&mut self, audit: Option<i64>, result: Result<String, String>) {
        let result = result
            .map(|m| self.redactor.redact_owned(m))
            .map_err(|e| self.redactor.redact_owned(e));
        if let Some(id) = audit {
            self.audit_end(id, &result);
        }
        if matches!(
            self.runbooks.active.as_ref().map(|a| &a.phase),
            Some(Phase::Running)
        ) {
            self.step_done(result);
            self.runbook_tick();
        }
    }

    fn wait_holds(&self, service: Option<&str>, state: &str) -> bool {
        match service {
            None => stack_ready(&self.api.snapshot.borrow()),
            Some(name) => self.plan.units_of(name).is_some_and(|units| {
                units.iter().all(|&i| {
                    let s = self.host.unit(gantry_engine::UnitId(i)).state.to_string();
                    s == state || (state == "ready" && s == "running")
                })
            }),
        }
    }

    fn step_done(&mut self, answer: Result<String, String>) {
        let Some(active) = self.runbooks.active.as_mut() else {
            return;
        };
        let index = active.record.steps.len();
        let Some(step) = active.book.steps.get(index) else {
            return;
        };
        let text = step.action.describe();
        let (ok, message) = match answer {
            Ok(m) => (true, m),
            Err(e) => (false, e),
        };
        let name = active.record.runbook.clone();
        let total = active.record.total;
        active.record.steps.push(StepResult {
            step: text.clone(),
            ok,
            message: message.clone(),
        });
        active.phase = Phase::Next;
        let line = format!(
            "runbook {name}: step {}/{total} {text}: {} {message}",
            index + 1,
            if ok { "ok:" } else { "FAILED:" }
        );
        self.out.gantry_line(&line);
        self.incident_note("runbook", &line);
        self.event(serde_json::json!({
            "event": "runbook_step", "runbook": name, "step": index + 1,
            "action": text, "ok": ok, "message": message,
        }));
        if !ok {
            self.finish_runbook();
        }
    }

    fn finish_runbook(&mut self) {
        let Some(mut active) = self.runbooks.active.take() else {
            return;
        };
        let failed = active.record.steps.iter().any(|s| !s.ok);
        active.record.status = if failed { "failed" } else { "succeeded" };
        let name = active.record.runbook.clone();
        let summary = if failed {
            format!(
                "runbook {name}: failed at step {} of {}; the steps after it did not run",
                active.record.steps.len(),
                active.record.total
            )
        } else {
            format!("runbook {name}: done, {} steps", active.record.total)
        };
        self.out.gantry_line(&summary);
        self.incident_note("runbook", &summary);
        self.event(serde_json::json!({
            "event": "runbook_finished", "runbook": name, "status": active.record.status,
        }));
        self.runbooks.done.push(active.record);
        if self.runbooks.done.len() > KEEP {
            self.runbooks.done.remove(0);
        }
    }

    /// An alert fired whose rule runs its runbook by itself: at most once per `key` (the open
    /// incident, or the alert's fingerprint when it opened none), never while another runs.
    pub(super) fn auto_runbook(&mut self, rule: &str, runbook: &str, key: String) {
        if !self.runbooks.auto_ran.insert((key, runbook.to_string())) {
            return;
        }
        let Some(book) = self
            .spec
            .runbooks
            .iter()
            .find(|b| b.name.value == runbook)
            .cloned()
        else {
            return;
        };
        // Audited like an operator's `gantry runbook run` (actor gantry), before it starts.
        let reason = format!("auto_runbook of alert rule {rule}");
        let id = self.audit_begin(&gantry_state::audit::AuditEntry {
            actor: "gantry".into(),
            action: "runbook.run".into(),
            target: Some(runbook.to_string()),
            reason: Some(reason.clone()),
            before: None,
            after: None,
        });
        let answer = self.start_runbook(book, format!("gantry (alert {rule})"), Some(reason));
        if let Some(id) = id {
            self.audit_end(id, &answer);
        }
        if let Err(e) = answer {
            self.out.gantry_line(&format!(
                "runbook {runbook}: not started by alert {rule}: {e}"
            ));
        }
    }

    /// A flag's value without context, as published.
    fn flags_value(&self, key: &str) -> Option<serde_json::Value> {
        self.flags.value(key)
    }
}

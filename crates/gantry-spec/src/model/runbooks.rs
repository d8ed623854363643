//! The typed `[runbooks.NAME]`: ordered steps over gantry's own actions, run by `gantry runbook run`
//! or by an alert rule's `auto_runbook`.

use super::{Dur, Sp};

/// One step of a runbook: exactly one action.
#[derive(Debug, Clone, PartialEq)]
pub enum RunbookAction {
    /// A kill switch (`write_drain`, `brownout`, `emergency`, `safe_mode`) on or off.
    Switch { flag: &'static str, on: bool },
    /// A flag overridden (`expires` reverts it by itself).
    Flag {
        key: String,
        value: serde_json::Value,
        expires: Option<Dur>,
    },
    /// A service command: `start`, `stop`, `restart`, `disable`, `enable`, `quarantine`,
    /// `release`, `rollback` (aborts the service's rollout: all traffic back to the stable release).
    Service { verb: &'static str, service: String },
    /// `gantry rotate SECRET`.
    Rotate { secret: String },
    /// A command, run in the stack's directory; its exit status decides the step.
    Run { command: Vec<String>, timeout: Dur },
    /// Waits until `service` is in `state` (ready, running, stopped, ...), or the stack is ready
    /// when `service` is None; fails after `timeout`.
    Wait {
        service: Option<String>,
        state: String,
        timeout: Dur,
    },
}

/// A step and where the file wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunbookStep {
    pub action: RunbookAction,
    pub span: crate::source::Span,
}

/// `[runbooks.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Runbook {
    pub name: Sp<String>,
    pub description: Option<String>,
    pub steps: Vec<RunbookStep>,
}

impl RunbookAction {
    /// One line for people: `drain on`, `restart db`, `wait db ready (60s)`.
    pub fn describe(&self) -> String {
        let d = |t: &Dur| crate::duration::format_duration(t.0);
        match self {
            RunbookAction::Switch { flag, on } => {
                format!("{flag} {}", if *on { "on" } else { "off" })
            }
            RunbookAction::Flag {
                key,
                value,
                expires,
            } => format!(
                "flag {key} = {value}{}",
                expires
                    .as_ref()
                    .map(|e| format!(" for {}", d(e)))
                    .unwrap_or_default()
            ),
            RunbookAction::Service { verb, service } => format!("{verb} {service}"),
            RunbookAction::Rotate { secret } => format!("rotate {secret}"),
            RunbookAction::Run { command, timeout } => {
                format!("run `{}` (at most {})", command.join(" "), d(timeout))
            }
            RunbookAction::Wait {
                service,
                state,
                timeout,
            } => format!(
                "wait until {} is {state} (at most {})",
                service.as_deref().unwrap_or("the stack"),
                d(timeout)
            ),
        }
    }
}

//! `Boot::reinitialize`: a component and everything that hard-depends on it restarted through
//! the engine, answered once all of them have settled again.

use gantry_engine::{Command, Gen, UnitId};
use tokio::sync::oneshot;

use super::Driver;
use crate::error::BootError;
use crate::report::ComponentReport;

/// A `Boot::reinitialize` waiting for its component, and the components that hard-depend on
/// it, to settle again.
pub(super) struct ReinitWait {
    pub(super) unit: UnitId,
    old_gen: Gen,
    /// The target left its settled state since the request: it really went down and up.
    pub(super) moved: bool,
    /// Transitive hard dependents, re-initialized after it.
    dependents: Vec<UnitId>,
    reply: oneshot::Sender<Result<ComponentReport, BootError>>,
}

impl Driver {
    pub(super) fn find(&self, name: &str) -> Result<UnitId, BootError> {
        self.host
            .engine()
            .find(name)
            .ok_or_else(|| BootError::UnknownComponent {
                name: name.to_string(),
                known: self
                    .slots
                    .iter()
                    .map(|s| s.component.name.clone())
                    .collect(),
            })
    }

    pub(super) fn reinit(
        &mut self,
        name: String,
        reply: oneshot::Sender<Result<ComponentReport, BootError>>,
    ) {
        let unit = match self.find(&name) {
            Ok(unit) => unit,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if self.host.engine().is_shutting_down() {
            let _ = reply.send(Err(BootError::ShuttingDown));
            return;
        }
        self.reinits.push(ReinitWait {
            unit,
            old_gen: self.host.engine().unit(unit).r#gen,
            moved: false,
            dependents: self.hard_dependents(unit),
            reply,
        });
        // The engine stops the hard dependents first, then the component (cleanup), starts it
        // again and restarts the dependents once it is ready.
        self.host.command(Command::Restart(unit));
    }

    /// Everything that hard-depends on `root`, transitively.
    fn hard_dependents(&self, root: UnitId) -> Vec<UnitId> {
        let mut found: Vec<UnitId> = Vec::new();
        let mut stack = vec![root];
        while let Some(u) = stack.pop() {
            for v in self.host.engine().units() {
                let hard = v.config.deps.iter().any(|d| d.unit == u && d.required);
                if hard && !found.contains(&v.id) {
                    found.push(v.id);
                    stack.push(v.id);
                }
            }
        }
        found
    }

    /// Answers the reinitializations whose component, and its dependents, have settled.
    pub(super) fn check_reinits(&mut self) {
        if self.reinits.is_empty() {
            return;
        }
        let waits = std::mem::take(&mut self.reinits);
        for mut w in waits {
            if self.finished || self.host.engine().is_shutting_down() {
                let _ = w.reply.send(Err(BootError::ShuttingDown));
                continue;
            }
            let v = self.host.engine().unit(w.unit);
            w.moved |= v.r#gen != w.old_gen;
            let target_done = w.moved && v.state.is_settled();
            let dependents_done = w
                .dependents
                .iter()
                .all(|&d| self.host.engine().unit(d).state.is_settled());
            if !(target_done && dependents_done) {
                self.reinits.push(w);
                continue;
            }
            let report = self.component_report(w.unit, false);
            let answer = if report.status.is_success() {
                Ok(report)
            } else {
                Err(BootError::ReinitializeFailed(Box::new(report)))
            };
            let _ = w.reply.send(answer);
        }
    }
}

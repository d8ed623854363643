//! The embedded boot's reports and views: the startup report, each component's report, the
//! status and API snapshot the driver publishes after every batch.

use super::*;

impl Driver {
    /// The failed component's own error, not the engine's view of it ("exited (code 1)").
    pub(super) fn nogo_reason(&self, unit: UnitId, engine_reason: String) -> String {
        let v = self.host.engine().unit(unit);
        if v.state != State::Failed {
            return engine_reason;
        }
        self.failure_message(unit)
    }

    pub(super) fn failure_message(&self, unit: UnitId) -> String {
        let slot = &self.slots[unit.0];
        let v = self.host.engine().unit(unit);
        let cause = slot
            .cause
            .clone()
            .or_else(|| v.last_error.map(str::to_string))
            .unwrap_or_else(|| "failed".to_string());
        if v.attempt > 1 && !cause.contains("gave up") {
            format!("{cause} (gave up after {} attempts)", v.attempt)
        } else {
            cause
        }
    }

    pub(super) fn failure_summary(&self, unit: UnitId) -> String {
        format!(
            "{}: {}",
            self.slots[unit.0].component.name,
            self.failure_message(unit)
        )
    }

    pub(super) fn startup_report(&self, now: Time) -> StartupReport {
        let outcome = self.outcome.clone().unwrap_or(BootOutcome::NoGo {
            component: None,
            reason: "not decided".to_string(),
        });
        StartupReport {
            success: outcome.is_up(),
            outcome,
            duration: now.as_duration(),
            components: (0..self.slots.len())
                .map(|i| self.component_report(UnitId(i), true))
                .collect(),
        }
    }

    /// One component's entry. `boot` reads the startup view (ready during the boot =
    /// SUCCESS even if cleaned up since); otherwise the current state counts (reinitialize).
    pub(super) fn component_report(&self, unit: UnitId, boot: bool) -> ComponentReport {
        let slot = &self.slots[unit.0];
        let v = self.host.engine().unit(unit);
        let success = if boot {
            slot.ready_in_boot
        } else {
            matches!(v.state, State::Ready | State::Running)
        };
        let (status, error) = if success {
            (ComponentStatus::Success, None)
        } else if v.state == State::Failed {
            let tolerated = self.allow_degraded && v.priority != Priority::Critical;
            let status = if tolerated {
                ComponentStatus::Degraded
            } else {
                ComponentStatus::Failed
            };
            (
                status,
                slot.cause.clone().or(v.last_error.map(str::to_string)),
            )
        } else {
            let why = v
                .reason
                .map(str::to_string)
                .or_else(|| Some(v.state.to_string()));
            (ComponentStatus::Skipped, why)
        };
        let (duration, retries) = match status {
            ComponentStatus::Skipped => (Duration::ZERO, 0),
            _ => slot.settled.unwrap_or((Duration::ZERO, 0)),
        };
        ComponentReport {
            name: slot.component.name.clone(),
            status,
            duration,
            retries,
            priority: v.priority,
            error,
            cleaned_up: boot && slot.cleaned_up,
        }
    }

    pub(super) fn status(&self, started: bool) -> BootStatus {
        BootStatus {
            started,
            outcome: self.outcome.clone(),
            shutting_down: self.host.engine().is_shutting_down(),
            finished: self.finished,
            components: self
                .host
                .engine()
                .units()
                .map(|v| {
                    let slot = &self.slots[v.id.0];
                    ComponentState {
                        name: v.name.to_string(),
                        priority: v.priority,
                        state: v.state,
                        attempt: v.attempt,
                        restarts: v.restarts,
                        last_error: slot.cause.clone().or(v.last_error.map(str::to_string)),
                    }
                })
                .collect(),
        }
    }

    pub(super) fn snapshot(&mut self) -> Snapshot {
        let slots = &self.slots;
        self.host
            .snapshot(&self.name, &self.graph, 0, false, |v| Extra {
                kind: Some("component"),
                last_error: slots[v.id.0]
                    .cause
                    .clone()
                    .or(v.last_error.map(str::to_string)),
                ..Extra::default()
            })
    }

    pub(super) fn publish(&mut self) {
        let status = self.status(true);
        let snapshot = self.snapshot();
        self.wiring.status.send_replace(Arc::new(status));
        self.wiring.snapshot.send_replace(Arc::new(snapshot));
    }
}

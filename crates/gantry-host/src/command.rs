//! API commands mapped onto the engine: one wording and one set of refusals for every driver.

use gantry_api::model::ApiCommand;
use gantry_engine::{Command, Engine, UnitId};

/// A resolved API command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Stop the whole stack (the driver runs its own shutdown: timers, output).
    Shutdown,
    /// Start, stop or restart one unit.
    Service {
        unit: UnitId,
        name: String,
        verb: Verb,
        /// For a start: what hard-depends on the unit and is stopped (a `stop` of the unit
        /// stopped it); a start does not bring it back, so the answer names it.
        stays_stopped: Vec<String>,
        /// For a disable: what status shows as the reason (`disabled by cli:bob: maintenance`);
        /// the driver, which knows the caller, sets it.
        why: Option<String>,
    },
}

/// What is asked of one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
    /// Stop it and keep it stopped until enabled.
    Disable,
    /// Clear a disable and start it with its dependencies.
    Enable,
}

impl Verb {
    /// The word in the operator's output: `api: restart requested through the API`.
    pub fn word(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
            Verb::Disable => "disable",
            Verb::Enable => "enable",
        }
    }
}

impl Request {
    /// The engine command that carries it out (none for the shutdown: the driver's).
    pub fn engine_command(&self) -> Option<Command> {
        match self {
            Request::Shutdown => None,
            Request::Service {
                unit, verb, why, ..
            } => Some(match verb {
                Verb::Start => Command::Start(*unit),
                Verb::Stop => Command::Stop(*unit),
                Verb::Restart => Command::Restart(*unit),
                Verb::Disable => Command::Disable {
                    unit: *unit,
                    why: why
                        .clone()
                        .unwrap_or_else(|| "disabled by command".to_string()),
                },
                Verb::Enable => Command::Enable(*unit),
            }),
        }
    }

    /// The answer the API client gets.
    pub fn reply(&self) -> String {
        match self {
            Request::Shutdown => "shutting down".to_string(),
            Request::Service {
                name,
                verb,
                stays_stopped,
                ..
            } => match verb {
                Verb::Start if !stays_stopped.is_empty() => format!(
                    "starting {name}; {} stay stopped (start them with `gantry start {}`)",
                    stays_stopped.join(", "),
                    stays_stopped.join("` / `gantry start ")
                ),
                Verb::Start => format!("starting {name}"),
                Verb::Stop => format!("stopping {name} and what depends on it"),
                Verb::Restart => {
                    format!("restarting {name}; its dependents restart after it is ready")
                }
                Verb::Disable => format!(
                    "disabling {name}: stopping it and what depends on it; it stays stopped, also across restarts of gantry, until `gantry enable {name}`"
                ),
                Verb::Enable => format!(
                    "enabling {name}: starting it with its dependencies, each through its readiness gate"
                ),
            },
        }
    }
}

/// Resolves a command against the engine: unknown names and unit commands during the
/// shutdown are refused with what to do.
pub(crate) fn resolve(engine: &Engine, command: &ApiCommand) -> Result<Request, String> {
    let (name, verb) = match command {
        ApiCommand::Shutdown => return Ok(Request::Shutdown),
        // The driver answers rotations itself; the host only resolves unit commands.
        ApiCommand::Rotate(name) => {
            return Err(format!(
                "cannot rotate secret `{name}` here: rotation is the process driver's"
            ));
        }
        ApiCommand::Reload => {
            return Err(
                "cannot reload here: reloading a stack file is the process driver's".into(),
            );
        }
        ApiCommand::Rollout { .. }
        | ApiCommand::RolloutControl { .. }
        | ApiCommand::RolloutStatus(_)
        | ApiCommand::Releases(_)
        | ApiCommand::Rollback { .. } => {
            return Err("cannot run a rollout here: rollouts are the process driver's".into());
        }
        ApiCommand::IncidentOpen { .. }
        | ApiCommand::IncidentAck(_)
        | ApiCommand::IncidentResolve(_) => {
            return Err("cannot act on incidents here: incidents are the process driver's".into());
        }
        ApiCommand::Runbooks | ApiCommand::RunRunbook { .. } => {
            return Err("cannot run a runbook here: runbooks are the process driver's".into());
        }
        ApiCommand::SetFlag { .. }
        | ApiCommand::UnsetFlag { .. }
        | ApiCommand::IngressMode { .. } => {
            return Err("cannot change flags here: flags are the process driver's".into());
        }
        ApiCommand::Start(name) => (name, Verb::Start),
        ApiCommand::Stop(name) => (name, Verb::Stop),
        ApiCommand::Restart(name) => (name, Verb::Restart),
        ApiCommand::Disable(name) => (name, Verb::Disable),
        ApiCommand::Enable(name) => (name, Verb::Enable),
        // Freezing a process tree is the process driver's (its cgroups, its process groups);
        // it tells the engine with `Command::Quarantine` / `Command::Release`.
        ApiCommand::Quarantine(name) | ApiCommand::Release(name) => {
            return Err(format!(
                "cannot quarantine or release `{name}` here: freezing processes is the process driver's"
            ));
        }
    };
    let unit = engine
        .find(name)
        .ok_or_else(|| format!("unknown service `{name}`"))?;
    if engine.is_shutting_down() {
        return Err(format!(
            "cannot {} {name}: the stack is shutting down",
            verb.word()
        ));
    }
    if verb == Verb::Enable && engine.disabled(unit).is_none() && !engine.held(unit) {
        return Err(format!(
            "cannot enable {name}: it is not disabled (it is {}); `gantry start {name}` starts a stopped service",
            engine.unit(unit).state
        ));
    }
    if matches!(verb, Verb::Start | Verb::Restart)
        && let Some(why) = engine.disabled(unit)
    {
        return Err(format!(
            "cannot {} {name}: it is {why}; `gantry enable {name}` clears that and starts it",
            verb.word()
        ));
    }
    let stays_stopped = if verb == Verb::Start {
        stopped_dependents(engine, unit)
    } else {
        Vec::new()
    };
    Ok(Request::Service {
        unit,
        name: name.clone(),
        verb,
        stays_stopped,
        why: None,
    })
}

/// Units that hard-depend on `root`, transitively, and are stopped now.
fn stopped_dependents(engine: &Engine, root: UnitId) -> Vec<String> {
    let mut found: Vec<UnitId> = Vec::new();
    let mut stack = vec![root];
    while let Some(u) = stack.pop() {
        for v in engine.units() {
            if v.config.deps.iter().any(|d| d.unit == u && d.required) && !found.contains(&v.id) {
                found.push(v.id);
                stack.push(v.id);
            }
        }
    }
    found
        .into_iter()
        .map(|u| engine.unit(u))
        .filter(|v| v.state == gantry_engine::State::Stopped)
        .map(|v| v.name.to_string())
        .collect()
}

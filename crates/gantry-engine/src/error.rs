//! Why `Engine::new` refused a set of units: each error names the units involved and what to fix.

use std::error::Error;
use std::fmt;

/// A unit set the engine cannot run. The validated plan prevents all of
/// these; the engine still checks so that it can never panic or deadlock on
/// a bad input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// A dependency index is not a unit.
    UnknownDependency {
        unit: String,
        index: usize,
        units: usize,
    },
    /// The dependency graph has a cycle; `path` starts and ends with the same unit.
    Cycle { path: Vec<String> },
    /// A unit depends on a unit of a later layer, which the layer barrier
    /// would hold back forever.
    LayerOrder {
        unit: String,
        layer: usize,
        dependency: String,
        dependency_layer: usize,
    },
    /// A `completed` condition on something that is not a task: it would
    /// never be met.
    NotATask { unit: String, dependency: String },
    /// Units cannot be added now (`Engine::add_units`): the boot is not decided yet, a
    /// shutdown is under way, or a name is taken.
    NotNow(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::UnknownDependency { unit, index, units } => write!(
                f,
                "unit {unit} depends on unit index {index}, but there are only {units} units"
            ),
            EngineError::Cycle { path } => {
                write!(f, "dependency cycle: [ {} ]", path.join(" -> "))
            }
            EngineError::LayerOrder {
                unit,
                layer,
                dependency,
                dependency_layer,
            } => write!(
                f,
                "unit {unit} (layer {layer}) depends on {dependency} (layer {dependency_layer}); \
                 a unit can only depend on units of its own or earlier layers"
            ),
            EngineError::NotATask { unit, dependency } => write!(
                f,
                "unit {unit} waits for {dependency} to complete, but {dependency} is not a task; \
                 use the `ready` or `started` condition"
            ),
            EngineError::NotNow(why) => write!(f, "{why}"),
        }
    }
}

impl Error for EngineError {}

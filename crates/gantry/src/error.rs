//! `BootError`: why a boot could not be built, or why a request to a running boot was refused.

use crate::report::ComponentReport;

/// Everything that can go wrong when building or driving a [`Boot`](crate::Boot).
///
/// Build errors name the components involved and what to fix; a cycle carries its full path.
///
/// ```
/// use gantry::{Boot, BootError, Component};
///
/// let err = Boot::builder()
///     .component(Component::new("api").depends_on(["worker"]))
///     .component(Component::new("worker").depends_on(["api"]))
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, BootError::Cycle { .. }));
/// assert_eq!(err.to_string(), "dependency cycle: api -> worker -> api");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// Two components share a name.
    #[error("component `{name}` is registered twice; component names must be unique")]
    DuplicateComponent { name: String },
    /// A component has an empty name.
    #[error("a component has an empty name")]
    EmptyName,
    /// A dependency names no registered component.
    #[error(
        "component `{component}` depends on `{dependency}`, which is not registered{}",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
    )]
    UnknownDependency {
        component: String,
        dependency: String,
        /// The closest registered name, when one is close enough.
        suggestion: Option<String>,
    },
    /// The dependencies form a cycle; `path` starts and ends with the same component.
    #[error("dependency cycle: {}", path.join(" -> "))]
    Cycle { path: Vec<String> },
    /// The engine refused the component set for another reason (not expected: the builder
    /// checks everything the engine checks).
    #[error("invalid boot: {0}")]
    Invalid(String),
    /// No component has this name.
    #[error("unknown component `{name}` (known: {})", known.join(", "))]
    UnknownComponent { name: String, known: Vec<String> },
    /// The request needs a started boot; call [`Boot::start`](crate::Boot::start) first.
    #[error("the boot has not been started")]
    NotStarted,
    /// The boot is shutting down (or has stopped), so it no longer takes requests.
    #[error("the boot is shutting down")]
    ShuttingDown,
    /// A reinitialized component did not come back; the report says how it ended and why.
    #[error(
        "reinitializing `{}` failed: {} ({})",
        .0.name,
        .0.error.as_deref().unwrap_or("no error message"),
        .0.status
    )]
    ReinitializeFailed(Box<ComponentReport>),
}

//! gantry-flags: feature flag definitions (gantry.toml `[flags.NAME]` and flagd's JSON format),
//! evaluation with JSONLogic targeting and flagd's custom operators (`fractional`, `starts_with`,
//! `ends_with`, `sem_ver`), runtime overrides, the built-in kill switches and OFREP-shaped results.
//! Pure: no I/O besides parsing the strings it is given.

mod flagd;
mod logic;
mod model;
mod murmur;
mod set;

pub use model::{
    ErrorCode, EvalError, Evaluation, Flag, FlagKind, FlagProblem, FlagState, Override, Reason,
    Severity,
};
pub use murmur::murmur3_x86_32;
pub use set::{FlagSet, KILL_SWITCHES};

//! gantry-flags: feature flag definitions (gantry.toml tables and flagd's JSON format), JSONLogic
//! targeting with flagd's custom operators, flagd-compatible fractional bucketing, and
//! OFREP-shaped evaluation results. Pure: no I/O beyond parsing the strings it is given.

mod fractional;
mod logic;
mod model;
mod murmur;
mod parse;
mod semver;
mod set;

pub use model::{
    ErrorCode, EvalError, Evaluation, Flag, FlagProblem, FlagState, KILL_SWITCHES, Kind, Override,
    Reason, Severity,
};
pub use murmur::murmur3_x86_32;
pub use set::FlagSet;

//! gantry-flags: feature flag definitions (gantry.toml tables and flagd's JSON format), JSONLogic
//! targeting with flagd's custom operators, flagd-compatible fractional bucketing, and
//! OFREP-shaped evaluation results. Pure: no I/O beyond parsing the strings it is given.
//!
//! Semantics follow flagd (checked against `openfeature-flagd-core` 2.0 by the tests): a disabled
//! flag evaluates successfully to reason `DISABLED` with no value (the caller's code default); a
//! null or empty `defaultVariant` likewise gives no value, reason `DEFAULT`; targeting that returns
//! null serves the default variant (`DEFAULT`); targeting that names a variant the flag lacks is a
//! `GENERAL` error; `fractional` hashes the canonical CBOR of `[flagKey, targetingKey]` (or of its
//! first argument when that is not a bucket) with MurmurHash3 and treats weights as relative
//! integers, and reports `SPLIT`. Runtime overrides answer `STATIC` with variant `override`.

mod fractional;
mod logic;
mod model;
mod murmur;
mod parse;
mod semver;
mod set;

pub use model::{
    ErrorCode, EvalError, Evaluation, Flag, FlagProblem, FlagState, KILL_SWITCHES, Kind, Override,
    Reason, SHED_PERCENT, Severity,
};
pub use murmur::murmur3_x86_32;
pub use set::FlagSet;

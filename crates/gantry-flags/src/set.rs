//! The immutable flag set: construction, merging, overrides, checks, evaluation and ETags.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{EvalError, Evaluation, Flag, FlagProblem, Override};

/// The built-in kill switches, always present (bool, `on`/`off`, default `off`, owner `gantry`).
pub const KILL_SWITCHES: [&str; 4] = ["write_drain", "brownout", "emergency", "safe_mode"];

/// An immutable set of flags (share it as `Arc<FlagSet>`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagSet {
    flags: BTreeMap<String, Flag>,
    overrides: BTreeMap<String, Value>,
    evaluators: BTreeMap<String, Value>,
    revision: u64,
}

impl FlagSet {
    /// Parses flagd's flag definition JSON; every problem is reported at once.
    pub fn parse_flagd(text: &str, origin: &str) -> Result<FlagSet, Vec<FlagProblem>> {
        crate::flagd::parse(text, origin)
    }

    /// Builds a set from definitions (gantry.toml), adding the kill switches.
    pub fn from_defs(defs: Vec<Flag>) -> Result<FlagSet, Vec<FlagProblem>> {
        let _ = defs;
        Ok(FlagSet::default())
    }

    /// `file` merged over `toml`: the file's definition wins for the same key.
    pub fn merged(toml: &FlagSet, file: &FlagSet) -> FlagSet {
        let _ = file;
        toml.clone()
    }

    /// This set with runtime overrides applied.
    pub fn with_overrides(&self, overrides: &[Override]) -> FlagSet {
        let _ = overrides;
        self.clone()
    }

    /// Whether `value` may override flag `key` (the flag exists and the type agrees).
    pub fn check_override(&self, key: &str, value: &Value) -> Result<(), String> {
        let _ = (key, value);
        Ok(())
    }

    /// Problems in the set (`today` is `(year, month, day)` for expiry warnings).
    pub fn check(&self, today: (i32, u32, u32)) -> Vec<FlagProblem> {
        let _ = today;
        Vec::new()
    }

    /// Evaluates flag `key` against the evaluation context `ctx` (a JSON object).
    pub fn evaluate(&self, key: &str, ctx: &Value) -> Result<Evaluation, EvalError> {
        let _ = ctx;
        Err(EvalError {
            key: key.to_string(),
            code: crate::ErrorCode::FlagNotFound,
            details: format!("flag `{key}` is not defined"),
            reason: crate::Reason::Error,
        })
    }

    /// Evaluates every flag (bulk), in key order.
    pub fn evaluate_all(&self, ctx: &Value) -> Vec<Result<Evaluation, EvalError>> {
        self.flags.keys().map(|k| self.evaluate(k, ctx)).collect()
    }

    /// A strong ETag (quoted) over the set's content and the context.
    pub fn etag(&self, ctx: &Value) -> String {
        let _ = ctx;
        format!("\"{:016x}\"", self.revision)
    }

    /// A hash of the set's content (definitions and overrides).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The flag keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.flags.keys().map(String::as_str)
    }

    /// The definition of flag `key`.
    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.flags.get(key)
    }

    /// The number of flags (kill switches included).
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether the set has no flags.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The override of flag `key`, if any.
    pub fn override_of(&self, key: &str) -> Option<&Value> {
        self.overrides.get(key)
    }
}

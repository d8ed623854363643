//! A bounded JSONLogic evaluator with flagd's custom operators (`fractional`, `starts_with`,
//! `ends_with`, `sem_ver`).

use std::fmt;

use serde_json::{Map, Value};

/// The result of a targeting rule: its value and whether a `fractional` split decided it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub value: Value,
    pub split: bool,
}

/// Why a rule could not be evaluated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LogicError {
    TargetingKeyMissing,
    Other(String),
}

impl fmt::Display for LogicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogicError::TargetingKeyMissing => write!(f, "no targetingKey in the context"),
            LogicError::Other(s) => write!(f, "{s}"),
        }
    }
}

/// Evaluates `rule` for flag `flag_key` against `ctx`.
pub(crate) fn evaluate_targeting(
    rule: &Value,
    flag_key: &str,
    ctx: &Map<String, Value>,
) -> Result<Outcome, LogicError> {
    let _ = (flag_key, ctx);
    Ok(Outcome {
        value: rule.clone(),
        split: false,
    })
}

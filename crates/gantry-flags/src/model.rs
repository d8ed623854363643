//! The flag model and the result / problem types shared by parsing, checking and evaluation.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Whether a flag is served (flagd's `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FlagState {
    /// Evaluated normally.
    Enabled,
    /// Evaluates to an error with reason DISABLED (flagd semantics).
    Disabled,
}

/// The type of a flag's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagKind {
    /// `true` / `false`.
    Bool,
    /// A string.
    String,
    /// A number (integer or float).
    Number,
    /// A JSON object (or array).
    Object,
}

impl FlagKind {
    /// The kind of a JSON value (`None` for null).
    pub fn of(value: &Value) -> Option<FlagKind> {
        match value {
            Value::Bool(_) => Some(FlagKind::Bool),
            Value::String(_) => Some(FlagKind::String),
            Value::Number(_) => Some(FlagKind::Number),
            Value::Object(_) | Value::Array(_) => Some(FlagKind::Object),
            Value::Null => None,
        }
    }

    /// The name used in gantry.toml (`type = "bool"`) and messages.
    pub fn name(self) -> &'static str {
        match self {
            FlagKind::Bool => "bool",
            FlagKind::String => "string",
            FlagKind::Number => "number",
            FlagKind::Object => "object",
        }
    }

    /// Parses the gantry.toml spelling (`bool`/`boolean`, `string`, `number`/`int`/`float`, `object`).
    pub fn parse(text: &str) -> Option<FlagKind> {
        match text {
            "bool" | "boolean" => Some(FlagKind::Bool),
            "string" => Some(FlagKind::String),
            "number" | "int" | "integer" | "float" => Some(FlagKind::Number),
            "object" | "json" => Some(FlagKind::Object),
            _ => None,
        }
    }
}

/// One flag definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    /// The flag key.
    pub key: String,
    /// Enabled or disabled.
    pub state: FlagState,
    /// Variant name → value.
    pub variants: BTreeMap<String, Value>,
    /// The variant served when targeting does not pick one.
    pub default_variant: String,
    /// JSONLogic targeting (with `$ref`s already resolved), if any.
    pub targeting: Option<Value>,
    /// flagd metadata (returned with evaluations).
    pub metadata: serde_json::Map<String, Value>,
    /// What the flag is for.
    pub description: Option<String>,
    /// Who owns it (a team or person).
    pub owner: Option<String>,
    /// The value type (given, or inferred from the variants).
    pub kind: Option<FlagKind>,
    /// The date after which the flag should be removed, `(year, month, day)`.
    pub expires: Option<(i32, u32, u32)>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Where the flag was defined (e.g. `flags.json` or `gantry.toml:12`), for messages.
    pub origin: String,
}

impl Flag {
    /// A flag with the given variants and default, enabled, no targeting.
    pub fn new(key: &str, variants: BTreeMap<String, Value>, default_variant: &str) -> Flag {
        let kind = variants.values().find_map(FlagKind::of);
        Flag {
            key: key.to_string(),
            state: FlagState::Enabled,
            variants,
            default_variant: default_variant.to_string(),
            targeting: None,
            metadata: serde_json::Map::new(),
            description: None,
            owner: None,
            kind,
            expires: None,
            tags: Vec::new(),
            origin: String::new(),
        }
    }

    /// The flag's kind: the declared one, else inferred from the variants.
    pub fn effective_kind(&self) -> Option<FlagKind> {
        self.kind
            .or_else(|| self.variants.values().find_map(FlagKind::of))
    }
}

/// How serious a problem is: errors fail `gantry check` and refuse the set, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Refuses the set.
    Error,
    /// Reported only.
    Warning,
}

/// A problem found in a flag definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagProblem {
    /// Error or warning.
    pub severity: Severity,
    /// Where the definition came from (file name, `gantry.toml`).
    pub origin: String,
    /// A JSON path into the definition, e.g. `flags.new-ui.defaultVariant`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl FlagProblem {
    pub(crate) fn error(
        origin: &str,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        FlagProblem {
            severity: Severity::Error,
            origin: origin.to_string(),
            path: path.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn warning(
        origin: &str,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        FlagProblem {
            severity: Severity::Warning,
            origin: origin.to_string(),
            path: path.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl std::fmt::Display for FlagProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{sev}: {}: {}: {} ({})",
            self.origin, self.path, self.message, self.hint
        )
    }
}

/// A runtime override: the flag evaluates to `value` (reason STATIC, variant `override`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Override {
    /// The flag key.
    pub key: String,
    /// The value served.
    pub value: Value,
}

/// Why an evaluation gave its value (OFREP's spelling when serialised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// No targeting, or an override.
    Static,
    /// Targeting picked the variant.
    TargetingMatch,
    /// Targeting picked the variant through `fractional`.
    Split,
    /// The flag is disabled.
    Disabled,
    /// Targeting ran but did not pick a variant.
    Default,
    /// Evaluation failed.
    Error,
}

impl Reason {
    /// OFREP's spelling (`TARGETING_MATCH`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::Default => "DEFAULT",
            Reason::Error => "ERROR",
        }
    }
}

/// A successful evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The flag key.
    pub key: String,
    /// The value.
    pub value: Value,
    /// The variant name (`override` for an override).
    pub variant: Option<String>,
    /// Why.
    pub reason: Reason,
    /// The flag's metadata.
    pub metadata: serde_json::Map<String, Value>,
}

/// OFREP's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No flag with that key.
    FlagNotFound,
    /// The definition could not be parsed.
    ParseError,
    /// The value has the wrong type.
    TypeMismatch,
    /// Targeting needs a `targetingKey` the context lacks.
    TargetingKeyMissing,
    /// The context is not a JSON object.
    InvalidContext,
    /// Anything else.
    General,
}

impl ErrorCode {
    /// OFREP's spelling (`FLAG_NOT_FOUND`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::General => "GENERAL",
        }
    }
}

/// A failed evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalError {
    /// The flag key.
    pub key: String,
    /// The OFREP error code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub details: String,
    /// The reason to report (ERROR, or DISABLED for a disabled flag).
    pub reason: Reason,
}

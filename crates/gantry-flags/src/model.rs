//! The flag model and the evaluation results, shaped as OFREP spells them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// The built-in kill switches, always present in a [`crate::FlagSet`] (bool, `on`/`off`,
/// default `off`, owner `gantry`) unless the user defines them (as bool flags).
pub const KILL_SWITCHES: [&str; 4] = ["write_drain", "brownout", "emergency", "safe_mode"];

/// The built-in number flag that says which share (0 to 100) of the requests of routes *not*
/// marked `shed_in_brownout` the ingress sheds too while `brownout` is on. Default 0.
pub const SHED_PERCENT: &str = "brownout_shed_percent";

/// Whether a flag is served (`ENABLED`) or answers `DISABLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FlagState {
    /// Evaluated normally.
    Enabled,
    /// Evaluates to reason `DISABLED` without a value (flagd's semantics: the caller's code default).
    Disabled,
}

/// The type of a flag's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `true` / `false`.
    Bool,
    /// A JSON string.
    String,
    /// A JSON number.
    Number,
    /// A JSON object (or array).
    Object,
}

impl Kind {
    /// The kind of one JSON value (`None` for null).
    pub fn of(value: &Value) -> Option<Kind> {
        match value {
            Value::Bool(_) => Some(Kind::Bool),
            Value::String(_) => Some(Kind::String),
            Value::Number(_) => Some(Kind::Number),
            Value::Object(_) | Value::Array(_) => Some(Kind::Object),
            Value::Null => None,
        }
    }

    /// Parses `bool`/`boolean`, `string`, `number`/`integer`/`float`, `object`/`json`.
    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "bool" | "boolean" => Some(Kind::Bool),
            "string" => Some(Kind::String),
            "number" | "integer" | "float" => Some(Kind::Number),
            "object" | "json" => Some(Kind::Object),
            _ => None,
        }
    }

    /// The name `parse` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::String => "string",
            Kind::Number => "number",
            Kind::Object => "object",
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
    /// The variant served when targeting does not pick one (`None`: the caller's code default,
    /// flagd's `"defaultVariant": null`).
    pub default_variant: Option<String>,
    /// JSONLogic targeting rule (with `$ref`s already resolved).
    pub targeting: Option<Value>,
    /// Flag metadata (flag-set metadata merged under it), returned with every evaluation.
    pub metadata: Map<String, Value>,
    /// What the flag is for.
    pub description: Option<String>,
    /// Who owns it.
    pub owner: Option<String>,
    /// The value type (inferred from the variants when not given).
    pub kind: Option<Kind>,
    /// Expiry date `YYYY-MM-DD` (a warning after it).
    pub expires: Option<String>,
    /// Free tags.
    pub tags: Vec<String>,
    /// Where it was defined: a file name (`gantry.toml`, `flags.json`) or `built-in`.
    pub origin: String,
}

impl Flag {
    /// A bool flag with `on`/`off` variants, default `off`.
    pub fn kill_switch(key: &str) -> Flag {
        let mut variants = BTreeMap::new();
        variants.insert("on".to_string(), Value::Bool(true));
        variants.insert("off".to_string(), Value::Bool(false));
        Flag {
            key: key.to_string(),
            state: FlagState::Enabled,
            variants,
            default_variant: Some("off".to_string()),
            targeting: None,
            metadata: Map::new(),
            description: Some(format!("gantry kill switch `{key}`")),
            owner: Some("gantry".to_string()),
            kind: Some(Kind::Bool),
            expires: None,
            tags: vec!["kill-switch".to_string()],
            origin: "built-in".to_string(),
        }
    }

    /// The built-in [`SHED_PERCENT`] flag: a number, default 0 (variants 0, 10, 25, 50, 100;
    /// an override may give any number from 0 to 100).
    pub fn shed_percent() -> Flag {
        let variants = [0, 10, 25, 50, 100]
            .into_iter()
            .map(|p| (format!("p{p}"), Value::from(p)))
            .collect();
        Flag {
            key: SHED_PERCENT.to_string(),
            state: FlagState::Enabled,
            variants,
            default_variant: Some("p0".to_string()),
            targeting: None,
            metadata: Map::new(),
            description: Some(
                "the share (0-100) of the other routes' requests the ingress sheds in brownout"
                    .to_string(),
            ),
            owner: Some("gantry".to_string()),
            kind: Some(Kind::Number),
            expires: None,
            tags: vec!["kill-switch".to_string()],
            origin: "built-in".to_string(),
        }
    }

    /// The declared kind, or the kind of the default variant's value, or of the first variant.
    pub fn value_kind(&self) -> Option<Kind> {
        if let Some(kind) = self.kind {
            return Some(kind);
        }
        self.default_variant
            .as_ref()
            .and_then(|d| self.variants.get(d))
            .or_else(|| self.variants.values().next())
            .and_then(Kind::of)
    }
}

/// How bad a problem is: errors fail `gantry check` and refuse a file, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Refuses the definitions.
    Error,
    /// Reported only.
    Warning,
}

/// A problem in flag definitions, located by a JSON path such as `flags.new-ui.defaultVariant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagProblem {
    /// Error or warning.
    pub severity: Severity,
    /// The file (or `gantry.toml`, `built-in`) the flag came from.
    pub origin: String,
    /// JSON path inside it.
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
            ..FlagProblem::error(origin, path, message, hint)
        }
    }
}

impl fmt::Display for FlagProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// A runtime override: the flag evaluates to `value` (reason `STATIC`, variant `override`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Override {
    /// The flag key.
    pub key: String,
    /// The value it evaluates to.
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
    /// A `fractional` split picked the variant.
    Split,
    /// The flag is disabled: no value, the caller uses its code default.
    Disabled,
    /// Targeting gave no variant: the default variant.
    Default,
    /// An error (see the error code).
    Error,
}

/// A successful evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The flag key.
    pub key: String,
    /// The value; `None` when the caller's code default applies (disabled flag, null default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The variant name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Why.
    pub reason: Reason,
    /// The flag's metadata.
    pub metadata: Map<String, Value>,
}

/// OFREP's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No such flag.
    FlagNotFound,
    /// The definition could not be evaluated.
    ParseError,
    /// The value has the wrong type.
    TypeMismatch,
    /// `fractional` without a `targetingKey` in the context.
    TargetingKeyMissing,
    /// The context is not a JSON object.
    InvalidContext,
    /// Anything else.
    General,
}

/// A failed evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalError {
    /// The flag key.
    pub key: String,
    /// What kind of failure.
    #[serde(rename = "errorCode")]
    pub code: ErrorCode,
    /// Details for a human.
    #[serde(rename = "errorDetails")]
    pub details: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flag `{}`: {}", self.key, self.details)
    }
}

impl std::error::Error for EvalError {}

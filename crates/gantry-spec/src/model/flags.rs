//! The typed `[flags.NAME]` tables and `[settings] flags_file`: feature flag definitions as
//! written in gantry.toml, with the spans `gantry check` points back to.

use super::Sp;
use crate::source::Span;

/// Every flag defined in gantry.toml, and the flagd JSON file named by `[settings] flags_file`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagsSpec {
    /// `[flags.NAME]` tables, in file order.
    pub defs: Vec<FlagDef>,
    /// `[settings] flags_file` as written (relative to the stack file).
    pub file: Option<Sp<String>>,
}

/// One `[flags.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagDef {
    /// The flag key (the table name) and where the table starts.
    pub name: Sp<String>,
    /// What the flag is for.
    pub description: Option<String>,
    /// Who owns it.
    pub owner: Option<String>,
    /// `type`: `bool`, `string`, `number` or `object` (None: inferred from the variants).
    pub kind: Option<Sp<String>>,
    /// Variant name → value (TOML values as JSON), with the span of each value.
    pub variants: Vec<(Sp<String>, serde_json::Value)>,
    /// Where `variants` was written (the table's span when absent).
    pub variants_span: Span,
    /// `default`: the variant served when nothing else applies.
    pub default: Option<Sp<String>>,
    /// `expires = "YYYY-MM-DD"`, checked to be a date.
    pub expires: Option<Sp<(i32, u32, u32)>>,
    /// Free tags.
    pub tags: Vec<String>,
    /// `state = "disabled"` turns the flag off (default enabled).
    pub enabled: Sp<bool>,
}

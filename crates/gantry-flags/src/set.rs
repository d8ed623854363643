//! `FlagSet`: an immutable set of flags with overrides, evaluation, ETag and checks.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::logic;
use crate::model::{
    ErrorCode, EvalError, Evaluation, Flag, FlagProblem, FlagState, KILL_SWITCHES, Kind, Override,
    Reason, SHED_PERCENT, Severity,
};

/// An immutable set of flags (cheap to share as `Arc<FlagSet>`), built-in kill switches included.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagSet {
    flags: BTreeMap<String, Flag>,
    overrides: BTreeMap<String, Value>,
    revision: u64,
}

impl Default for FlagSet {
    fn default() -> Self {
        FlagSet::build(BTreeMap::new(), BTreeMap::new())
    }
}

impl FlagSet {
    fn build(mut flags: BTreeMap<String, Flag>, overrides: BTreeMap<String, Value>) -> FlagSet {
        for key in KILL_SWITCHES {
            flags
                .entry(key.to_string())
                .or_insert_with(|| Flag::kill_switch(key));
        }
        flags
            .entry(SHED_PERCENT.to_string())
            .or_insert_with(Flag::shed_percent);
        for flag in flags.values_mut() {
            if flag.kind.is_none() {
                flag.kind = flag.value_kind();
            }
        }
        let mut set = FlagSet {
            flags,
            overrides,
            revision: 0,
        };
        set.revision = set.compute_revision();
        set
    }

    /// Parses flagd's flag definition JSON (`flags`, `$evaluators`, `metadata`, `$schema`);
    /// `origin` names the file in problems. Every error at once, each with a JSON path and a hint.
    pub fn parse_flagd(text: &str, origin: &str) -> Result<FlagSet, Vec<FlagProblem>> {
        let defs = crate::parse::parse_flagd(text, origin)?;
        FlagSet::from_defs(defs)
    }

    /// A set from definitions (e.g. gantry.toml's `[flags.NAME]`); refuses definitions with errors.
    pub fn from_defs(defs: Vec<Flag>) -> Result<FlagSet, Vec<FlagProblem>> {
        let mut flags = BTreeMap::new();
        let mut problems = Vec::new();
        for flag in defs {
            if let Some(previous) = flags.get(&flag.key) {
                let previous: &Flag = previous;
                problems.push(FlagProblem::error(
                    &flag.origin,
                    format!("flags.{}", flag.key),
                    format!(
                        "flag `{}` is defined twice (also in {})",
                        flag.key, previous.origin
                    ),
                    "keep one definition",
                ));
                continue;
            }
            flags.insert(flag.key.clone(), flag);
        }
        let set = FlagSet::build(flags, BTreeMap::new());
        problems.extend(set.structural_problems());
        if problems.iter().any(|p| p.severity == Severity::Error) {
            return Err(problems
                .into_iter()
                .filter(|p| p.severity == Severity::Error)
                .collect());
        }
        Ok(set)
    }

    /// `toml`'s flags and `file`'s, the file winning for the same key.
    pub fn merged(toml: &FlagSet, file: &FlagSet) -> FlagSet {
        let mut flags = toml.flags.clone();
        for (key, flag) in &file.flags {
            if flag.origin == "built-in" && flags.contains_key(key) {
                continue;
            }
            flags.insert(key.clone(), flag.clone());
        }
        let mut overrides = toml.overrides.clone();
        overrides.extend(file.overrides.clone());
        FlagSet::build(flags, overrides)
    }

    /// This set with `overrides` applied (replacing any earlier ones); overrides for unknown keys
    /// or of the wrong type are skipped (check them with [`FlagSet::check_override`] first).
    pub fn with_overrides(&self, overrides: &[Override]) -> FlagSet {
        let mut map = BTreeMap::new();
        for o in overrides {
            if self.check_override(&o.key, &o.value).is_ok() {
                map.insert(o.key.clone(), o.value.clone());
            }
        }
        FlagSet::build(self.flags.clone(), map)
    }

    /// Whether `value` may override flag `key` (the flag exists and the value has its type).
    pub fn check_override(&self, key: &str, value: &Value) -> Result<(), String> {
        let Some(flag) = self.flags.get(key) else {
            return Err(format!(
                "no flag `{key}`: define it in gantry.toml or the flags file first"
            ));
        };
        let Some(want) = flag.value_kind() else {
            return Ok(());
        };
        match Kind::of(value) {
            Some(_)
                if key == SHED_PERCENT
                    && !value.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)) =>
            {
                Err(format!(
                    "flag `{key}` is a share of requests: give a number from 0 to 100, not {value}"
                ))
            }
            Some(got) if got == want => Ok(()),
            Some(got) => Err(format!(
                "flag `{key}` is a {} flag, the value {value} is a {}: give a {} value",
                want.name(),
                got.name(),
                want.name()
            )),
            None => Err(format!(
                "flag `{key}`: an override cannot be null; unset the override instead"
            )),
        }
    }

    /// The current overrides.
    pub fn overrides(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.overrides.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Evaluates flag `key` for evaluation context `ctx` (a JSON object, or null for none).
    pub fn evaluate(&self, key: &str, ctx: &Value) -> Result<Evaluation, EvalError> {
        let err = |code, details: String| EvalError {
            key: key.to_string(),
            code,
            details,
        };
        let Some(flag) = self.flags.get(key) else {
            return Err(err(
                ErrorCode::FlagNotFound,
                format!("flag `{key}` is not defined"),
            ));
        };
        let empty = Map::new();
        let ctx_map = match ctx {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => {
                return Err(err(
                    ErrorCode::InvalidContext,
                    "the evaluation context must be a JSON object".to_string(),
                ));
            }
        };
        let done = |value: Option<Value>, variant: Option<String>, reason| Evaluation {
            key: key.to_string(),
            value,
            variant,
            reason,
            metadata: flag.metadata.clone(),
        };
        if let Some(value) = self.overrides.get(key) {
            return Ok(done(
                Some(value.clone()),
                Some("override".to_string()),
                Reason::Static,
            ));
        }
        if flag.state == FlagState::Disabled {
            return Ok(done(None, None, Reason::Disabled));
        }
        let default = |reason| {
            // No default variant (flagd's `"defaultVariant": null`): the caller's code default.
            let Some(variant) = flag.default_variant.clone() else {
                return done(None, None, Reason::Default);
            };
            let value = flag.variants.get(&variant).cloned();
            done(value, Some(variant), reason)
        };
        let Some(rule) = flag.targeting.as_ref().filter(|t| !is_empty_rule(t)) else {
            return Ok(default(Reason::Static));
        };
        let outcome = logic::evaluate_targeting(rule, key, ctx_map).map_err(|e| {
            err(
                ErrorCode::ParseError,
                format!("targeting of flag `{key}` failed: {e}"),
            )
        })?;
        let name = match &outcome.value {
            Value::Null => return Ok(default(Reason::Default)),
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(err(
                    ErrorCode::General,
                    format!("targeting of flag `{key}` gave {other}, not a variant name"),
                ));
            }
        };
        let Some(value) = flag.variants.get(&name) else {
            return Err(err(
                ErrorCode::General,
                format!(
                    "targeting of flag `{key}` gave variant `{name}`, which is not among its variants"
                ),
            ));
        };
        let reason = if outcome.split {
            Reason::Split
        } else {
            Reason::TargetingMatch
        };
        Ok(done(Some(value.clone()), Some(name), reason))
    }

    /// Evaluates every flag (bulk), in key order.
    pub fn evaluate_all(&self, ctx: &Value) -> Vec<Result<Evaluation, EvalError>> {
        self.flags.keys().map(|k| self.evaluate(k, ctx)).collect()
    }

    /// A strong ETag (quoted) over the set's content and the context (key order independent).
    pub fn etag(&self, ctx: &Value) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.revision.to_be_bytes());
        let mut text = String::new();
        canonical(ctx, &mut text);
        hasher.update(text.as_bytes());
        let digest = hasher.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    }

    /// A hash of the set's content (definitions and overrides).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn compute_revision(&self) -> u64 {
        let mut text = String::new();
        let flags = serde_json::to_value(&self.flags).unwrap_or(Value::Null);
        canonical(&flags, &mut text);
        text.push('\n');
        let overrides = serde_json::to_value(&self.overrides).unwrap_or(Value::Null);
        canonical(&overrides, &mut text);
        let digest = Sha256::digest(text.as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(bytes)
    }

    /// The flag keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.flags.keys().map(String::as_str)
    }

    /// One flag's definition.
    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.flags.get(key)
    }

    /// How many flags (built-ins included).
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether the set is empty (never: the kill switches are always there).
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Every problem with the definitions, errors and warnings, `today` = (year, month, day) UTC.
    pub fn check(&self, today: (i32, u32, u32)) -> Vec<FlagProblem> {
        let mut problems = self.structural_problems();
        for flag in self.flags.values() {
            if let Some(expires) = &flag.expires {
                let path = format!("flags.{}.expires", flag.key);
                match parse_date(expires) {
                    Some(date) if date < today => problems.push(FlagProblem::warning(
                        &flag.origin,
                        path,
                        format!("flag `{}` expired on {expires}", flag.key),
                        "remove the flag from the code and its definition, or move the date",
                    )),
                    Some(_) => {}
                    None => problems.push(FlagProblem::error(
                        &flag.origin,
                        path,
                        format!("`{expires}` is not a date"),
                        "write it as YYYY-MM-DD",
                    )),
                }
            }
        }
        problems
    }

    fn structural_problems(&self) -> Vec<FlagProblem> {
        let mut problems = Vec::new();
        for flag in self.flags.values() {
            crate::parse::flag_problems(flag, &mut problems);
        }
        problems
    }
}

fn is_empty_rule(rule: &Value) -> bool {
    matches!(rule, Value::Object(m) if m.is_empty()) || rule.is_null()
}

/// Parses `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str) -> Option<(i32, u32, u32)> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let date = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&date.1) && (1..=31).contains(&date.2)).then_some(date)
}

/// Canonical JSON: object keys sorted, no whitespace.
pub(crate) fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

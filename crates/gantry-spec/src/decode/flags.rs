//! Decodes `[flags.NAME]` tables (feature flag definitions) and converts them into
//! `gantry_flags::Flag`s; maps a flag problem's JSON path back to the TOML span it is about.

use super::{Decoder, Value, join};
use crate::keys;
use crate::model::*;
use crate::source::Span;
use toml::de::DeValue;

/// A TOML value as JSON (datetimes become their text); None beyond the nesting limit.
pub(super) fn to_json(v: &DeValue<'_>, depth: usize) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    if depth > 32 {
        return None;
    }
    Some(match v {
        DeValue::String(s) => J::String(s.to_string()),
        DeValue::Boolean(b) => J::Bool(*b),
        DeValue::Integer(i) => J::from(i64::from_str_radix(i.as_str(), i.radix()).ok()?),
        DeValue::Float(f) => {
            let x = f.as_str().replace('_', "").parse::<f64>().ok()?;
            serde_json::Number::from_f64(x).map(J::Number)?
        }
        DeValue::Datetime(d) => J::String(d.to_string()),
        DeValue::Array(items) => J::Array(
            items
                .iter()
                .map(|i| to_json(i.get_ref(), depth + 1))
                .collect::<Option<Vec<_>>>()?,
        ),
        DeValue::Table(t) => {
            let mut m = serde_json::Map::new();
            for (k, x) in t.iter() {
                m.insert(k.get_ref().to_string(), to_json(x.get_ref(), depth + 1)?);
            }
            J::Object(m)
        }
    })
}

/// `YYYY-MM-DD` as a valid calendar date.
pub fn parse_date(text: &str) -> Option<(i32, u32, u32)> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days).contains(&d).then_some((y, m, d))
}

impl Decoder<'_> {
    /// `[flags]`: one `[flags.NAME]` table per flag.
    pub(super) fn flags(&mut self, v: &Value<'_>) -> Vec<FlagDef> {
        let Some(t) = self.table(v, "flags") else {
            return Vec::new();
        };
        let mut defs = Vec::new();
        for (key, value) in t.iter() {
            let name = key.get_ref().to_string();
            let path = join("flags", &name);
            if !valid_flag_key(&name) {
                self.error(
                    "invalid-name",
                    &path,
                    key.span(),
                    format!("flag name `{name}` is not a valid flag key"),
                    "use letters, digits, `_`, `-` and `.` (at most 128 characters)",
                );
                continue;
            }
            if let Some(def) = self.flag(&name, key.span(), value, &path) {
                defs.push(def);
            }
        }
        defs
    }

    fn flag(&mut self, name: &str, name_span: Span, v: &Value<'_>, path: &str) -> Option<FlagDef> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::FLAG, path);
        let text = |d: &mut Self, key: &str| {
            t.get(key)
                .and_then(|x| d.string(x, &join(path, key)))
                .map(|s| s.value)
        };
        let description = text(self, "description");
        let owner = text(self, "owner");
        let kind = t.get("type").and_then(|x| {
            self.enumeration(x, &join(path, "type"), keys::FLAG_TYPES)
                .map(|k| Sp::new(k.to_string(), x.span()))
        });
        let mut variants = Vec::new();
        let mut variants_span = v.span();
        if let Some(x) = t.get("variants") {
            variants_span = x.span();
            if let Some(vt) = self.table(x, &join(path, "variants")) {
                for (vk, vv) in vt.iter() {
                    let vpath = join(&join(path, "variants"), vk.get_ref());
                    match to_json(vv.get_ref(), 0) {
                        Some(json) => {
                            variants.push((Sp::new(vk.get_ref().to_string(), vv.span()), json))
                        }
                        None => self.error(
                            "invalid-value",
                            &vpath,
                            vv.span(),
                            "this variant's value cannot be served as JSON (a non-finite float or too deep)",
                            "write a bool, string, number or table",
                        ),
                    }
                }
            }
        } else {
            self.error(
                "missing-key",
                path,
                v.span(),
                format!("flag `{name}` has no `variants`"),
                "add variants = { on = true, off = false } (and default = \"off\")",
            );
        }
        let default = match t.get("default") {
            Some(x) => self.string(x, &join(path, "default")),
            None => {
                if !variants.is_empty() {
                    self.error(
                        "missing-key",
                        path,
                        v.span(),
                        format!("flag `{name}` has no `default` variant"),
                        "add default = \"NAME\" naming one of its variants",
                    );
                }
                None
            }
        };
        let expires = t.get("expires").and_then(|x| {
            let s = self.string(x, &join(path, "expires"))?;
            match parse_date(&s.value) {
                Some(date) => Some(Sp::new(date, x.span())),
                None => {
                    self.error(
                        "invalid-value",
                        &join(path, "expires"),
                        x.span(),
                        format!("`{}` is not a date", s.value),
                        "write the date as \"YYYY-MM-DD\", e.g. \"2027-03-31\"",
                    );
                    None
                }
            }
        });
        let tags = t
            .get("tags")
            .map(|x| self.str_list(x, &join(path, "tags")))
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.value)
            .collect();
        let enabled = match t.get("state") {
            Some(x) => {
                let on = self.enumeration(x, &join(path, "state"), keys::FLAG_STATES)
                    != Some("disabled");
                Sp::new(on, x.span())
            }
            None => Sp::new(true, v.span()),
        };
        Some(FlagDef {
            name: Sp::new(name.to_string(), name_span),
            description,
            owner,
            kind,
            variants,
            variants_span,
            default,
            expires,
            tags,
            enabled,
        })
    }
}

/// Whether `name` may be a flag key (also a safe `GANTRY_FLAG_<NAME>` suffix once upper-cased).
pub fn valid_flag_key(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl FlagDef {
    /// This definition as a `gantry_flags::Flag` (origin `origin`, e.g. `gantry.toml:12`).
    pub fn to_flag(&self, origin: &str) -> gantry_flags::Flag {
        let mut flag = gantry_flags::Flag::kill_switch(&self.name.value);
        flag.variants = self
            .variants
            .iter()
            .map(|(k, v)| (k.value.clone(), v.clone()))
            .collect();
        flag.default_variant = self.default.as_ref().map(|d| d.value.clone());
        flag.state = if self.enabled.value {
            gantry_flags::FlagState::Enabled
        } else {
            gantry_flags::FlagState::Disabled
        };
        flag.description = self.description.clone();
        flag.owner = self.owner.clone();
        flag.kind = self
            .kind
            .as_ref()
            .and_then(|k| gantry_flags::Kind::parse(&k.value));
        flag.expires = self
            .expires
            .as_ref()
            .map(|e| format!("{:04}-{:02}-{:02}", e.value.0, e.value.1, e.value.2));
        flag.tags = self.tags.clone();
        flag.origin = origin.to_string();
        flag
    }

    /// The span a problem at JSON path `path` (e.g. `flags.NAME.defaultVariant`,
    /// `flags.NAME.variants.on`) is about: the key it names, else the flag's table.
    pub fn span_of(&self, path: &str) -> Span {
        let prefix = format!("flags.{}", self.name.value);
        let rest = path
            .strip_prefix(&prefix)
            .map(|r| r.trim_start_matches('.'))
            .unwrap_or("");
        let mut parts = rest.splitn(3, '.');
        let (first, second) = (parts.next().unwrap_or(""), parts.next());
        match first {
            "defaultVariant" | "default" => self.default.as_ref().map(|d| d.span.clone()),
            "variants" => second
                .and_then(|s| self.variants.iter().find(|(k, _)| k.value == s))
                .map(|(k, _)| k.span.clone())
                .or_else(|| Some(self.variants_span.clone())),
            "expires" => self.expires.as_ref().map(|e| e.span.clone()),
            "type" | "kind" => self.kind.as_ref().map(|k| k.span.clone()),
            "state" => Some(self.enabled.span.clone()),
            _ => None,
        }
        .unwrap_or_else(|| self.name.span.clone())
    }
}

/// Checks the `[flags.NAME]` tables as a flag set (default among the variants, the variant
/// types agree, kill switches stay bool, expired flags) and reports each problem at the TOML
/// key it is about. `today` is `(year, month, day)`.
pub fn flag_diagnostics(
    spec: &Spec,
    origin: &str,
    today: (i32, u32, u32),
) -> Vec<crate::Diagnostic> {
    use crate::Diagnostic;
    if spec.flags.defs.is_empty() {
        return Vec::new();
    }
    let flags = spec.flags.defs.iter().map(|d| d.to_flag(origin)).collect();
    let problems = match gantry_flags::FlagSet::from_defs(flags) {
        Ok(set) => set.check(today),
        // A set with errors is refused before its expiry check: warn about expired flags here,
        // so one run of `gantry check` still shows every problem.
        Err(mut problems) => {
            for def in &spec.flags.defs {
                if let Some(e) = def.expires.as_ref().filter(|e| e.value < today) {
                    let (y, m, d) = e.value;
                    problems.push(gantry_flags::FlagProblem {
                        severity: gantry_flags::Severity::Warning,
                        origin: origin.to_string(),
                        path: format!("flags.{}.expires", def.name.value),
                        message: format!(
                            "flag `{}` expired on {y:04}-{m:02}-{d:02}",
                            def.name.value
                        ),
                        hint: "remove the flag from the code and its definition, or move the date"
                            .to_string(),
                    });
                }
            }
            problems
        }
    };
    problems
        .into_iter()
        .filter(|p| p.origin != "built-in")
        .map(|p| {
            // The flag a path is about: the longest defined name after `flags.`.
            let def = spec
                .flags
                .defs
                .iter()
                .filter(|d| {
                    p.path
                        .strip_prefix("flags.")
                        .and_then(|r| r.strip_prefix(d.name.value.as_str()))
                        .is_some_and(|r| r.is_empty() || r.starts_with('.'))
                })
                .max_by_key(|d| d.name.value.len());
            let key = match def {
                Some(d) => toml_key(&p.path, &d.name.value),
                None => p.path.clone(),
            };
            let d = match p.severity {
                gantry_flags::Severity::Error => Diagnostic::error("flag", p.message),
                gantry_flags::Severity::Warning => Diagnostic::warning("flag", p.message),
            }
            .key(key)
            .hint(p.hint);
            match def {
                Some(def) => d.at(def.span_of(&p.path)),
                None => d,
            }
        })
        .collect()
}

/// A flagd-style path (`flags.NAME.defaultVariant`) in gantry.toml's spelling (`flags.NAME.default`).
fn toml_key(path: &str, name: &str) -> String {
    let prefix = format!("flags.{name}");
    let rest = path.strip_prefix(&prefix).unwrap_or("");
    let rest = rest
        .replacen(".defaultVariant", ".default", 1)
        .replacen(".kind", ".type", 1);
    format!("{prefix}{rest}")
}

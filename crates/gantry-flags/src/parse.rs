//! flagd JSON parsing (`flags`, `$evaluators`/`$ref`, `metadata`, `$schema`) and the per-flag
//! structural checks shared by both definition sources.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::fractional::{MAX_WEIGHT_SUM, parse_buckets};
use crate::logic::{MAX_DEPTH, unknown_operators};
use crate::model::{Flag, FlagProblem, FlagState, KILL_SWITCHES, Kind, Severity};

const TOO_DEEP: &str = "\u{0}too deep";

const FLAG_KEYS: &[&str] = &[
    "state",
    "variants",
    "defaultVariant",
    "targeting",
    "metadata",
    "source",
    "selector",
    "description",
    "owner",
    "type",
    "expires",
    "tags",
];

/// Parses flagd's flag definition JSON into flags; every problem at once.
pub(crate) fn parse_flagd(text: &str, origin: &str) -> Result<Vec<Flag>, Vec<FlagProblem>> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        vec![FlagProblem::error(
            origin,
            "$",
            format!(
                "not valid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
            "fix the JSON syntax (a trailing comma or a missing quote?)",
        )]
    })?;
    let mut problems = Vec::new();
    let Value::Object(top) = doc else {
        return Err(vec![FlagProblem::error(
            origin,
            "$",
            "the document is not a JSON object",
            "write {\"flags\": {...}}",
        )]);
    };
    let evaluators = match top.get("$evaluators") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            problems.push(FlagProblem::error(
                origin,
                "$evaluators",
                "`$evaluators` is not an object",
                "write {\"name\": <JSONLogic rule>, ...}",
            ));
            Map::new()
        }
    };
    let set_metadata = match top.get("metadata") {
        None => Map::new(),
        Some(Value::Object(m)) => {
            check_metadata(m, origin, "metadata", &mut problems);
            m.clone()
        }
        Some(_) => {
            problems.push(FlagProblem::error(
                origin,
                "metadata",
                "`metadata` is not an object",
                "write {\"key\": \"value\", ...}",
            ));
            Map::new()
        }
    };
    let flags = match top.get("flags") {
        Some(Value::Object(m)) => m,
        Some(_) => {
            problems.push(FlagProblem::error(
                origin,
                "flags",
                "`flags` is not an object",
                "write {\"flags\": {\"my-flag\": {...}}}",
            ));
            return Err(problems);
        }
        None => {
            problems.push(FlagProblem::error(
                origin,
                "flags",
                "no `flags` object",
                "add {\"flags\": {\"my-flag\": {...}}}",
            ));
            return Err(problems);
        }
    };
    let mut out = Vec::new();
    for (key, def) in flags {
        if let Some(flag) = parse_flag(key, def, origin, &evaluators, &set_metadata, &mut problems)
        {
            out.push(flag);
        }
    }
    if problems.is_empty() {
        return Ok(out);
    }
    // The flags that did parse still get their structural errors reported in the same run.
    for flag in &out {
        let mut structural = Vec::new();
        flag_problems(flag, &mut structural);
        problems.extend(
            structural
                .into_iter()
                .filter(|p| p.severity == Severity::Error),
        );
    }
    Err(problems)
}

fn parse_flag(
    key: &str,
    def: &Value,
    origin: &str,
    evaluators: &Map<String, Value>,
    set_metadata: &Map<String, Value>,
    problems: &mut Vec<FlagProblem>,
) -> Option<Flag> {
    let path = format!("flags.{key}");
    let before = problems.len();
    let err = |problems: &mut Vec<FlagProblem>, field: &str, msg: String, hint: &str| {
        let p = if field.is_empty() {
            path.clone()
        } else {
            format!("{path}.{field}")
        };
        problems.push(FlagProblem::error(origin, p, msg, hint));
    };
    let Value::Object(def) = def else {
        err(
            problems,
            "",
            format!("flag `{key}` is not an object"),
            "write {\"state\": \"ENABLED\", \"variants\": {...}, \"defaultVariant\": \"...\"}",
        );
        return None;
    };
    for field in def.keys() {
        if !FLAG_KEYS.contains(&field.as_str()) {
            err(
                problems,
                field,
                format!("unknown key `{field}`"),
                "flagd knows state, variants, defaultVariant, targeting, metadata (gantry adds description, owner, type, expires, tags)",
            );
        }
    }
    let state = match def.get("state") {
        Some(Value::String(s)) if s == "ENABLED" => FlagState::Enabled,
        Some(Value::String(s)) if s == "DISABLED" => FlagState::Disabled,
        Some(other) => {
            err(
                problems,
                "state",
                format!("state {other} is neither \"ENABLED\" nor \"DISABLED\""),
                "write \"ENABLED\" or \"DISABLED\"",
            );
            FlagState::Enabled
        }
        None => {
            err(
                problems,
                "state",
                "no `state`".to_string(),
                "add \"state\": \"ENABLED\"",
            );
            FlagState::Enabled
        }
    };
    let variants: BTreeMap<String, Value> = match def.get("variants") {
        Some(Value::Object(m)) if !m.is_empty() => {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        Some(Value::Object(_)) => {
            err(
                problems,
                "variants",
                "no variants".to_string(),
                "add at least one, e.g. {\"on\": true, \"off\": false}",
            );
            BTreeMap::new()
        }
        Some(_) => {
            err(
                problems,
                "variants",
                "`variants` is not an object".to_string(),
                "write {\"name\": value, ...}",
            );
            BTreeMap::new()
        }
        None => {
            err(
                problems,
                "variants",
                "no `variants`".to_string(),
                "add e.g. \"variants\": {\"on\": true, \"off\": false}",
            );
            BTreeMap::new()
        }
    };
    let default_variant = match def.get("defaultVariant") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => {
            err(
                problems,
                "defaultVariant",
                format!("defaultVariant {other} is not a variant name"),
                "write the name of one of the variants as a string",
            );
            None
        }
    };
    let targeting = match def.get("targeting") {
        None | Some(Value::Null) => None,
        Some(t @ Value::Object(_)) => {
            let mut missing = Vec::new();
            let resolved =
                resolve_refs(t, evaluators, &format!("{path}.targeting"), 0, &mut missing);
            for (p, name) in missing {
                if name == TOO_DEEP {
                    problems.push(FlagProblem::error(origin, p, format!("the rule nests deeper than {MAX_DEPTH} levels (or `$ref`s form a cycle)"), "flatten the rule; an evaluator must not refer to itself"));
                } else {
                    problems.push(FlagProblem::error(
                        origin,
                        p,
                        format!("`$ref` to `{name}`, which is not in `$evaluators`"),
                        "define it under \"$evaluators\" or fix the name",
                    ));
                }
            }
            Some(resolved)
        }
        Some(_) => {
            err(
                problems,
                "targeting",
                "`targeting` is not an object".to_string(),
                "write a JSONLogic rule object, or {} for none",
            );
            None
        }
    };
    let mut metadata = set_metadata.clone();
    match def.get("metadata") {
        None => {}
        Some(Value::Object(m)) => {
            check_metadata(m, origin, &format!("{path}.metadata"), problems);
            metadata.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Some(_) => err(
            problems,
            "metadata",
            "`metadata` is not an object".to_string(),
            "write {\"key\": \"value\"}",
        ),
    }
    let text = |field: &str, problems: &mut Vec<FlagProblem>| match def.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            err(
                problems,
                field,
                format!("`{field}` is not a string"),
                "write a string",
            );
            None
        }
    };
    let description = text("description", problems);
    let owner = text("owner", problems);
    let expires = text("expires", problems);
    let kind = match text("type", problems) {
        None => None,
        Some(t) => match Kind::parse(&t) {
            Some(k) => Some(k),
            None => {
                err(
                    problems,
                    "type",
                    format!("unknown type `{t}`"),
                    "write bool, string, number or object",
                );
                None
            }
        },
    };
    let tags = match def.get("tags") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            err(
                problems,
                "tags",
                "`tags` is not a list of strings".to_string(),
                "write [\"tag\", ...]",
            );
            Vec::new()
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(Flag {
        key: key.to_string(),
        state,
        variants,
        default_variant,
        targeting,
        metadata,
        description,
        owner,
        kind,
        expires,
        tags,
        origin: origin.to_string(),
    })
}

fn check_metadata(
    m: &Map<String, Value>,
    origin: &str,
    path: &str,
    problems: &mut Vec<FlagProblem>,
) {
    for (k, v) in m {
        if !(v.is_string() || v.is_number() || v.is_boolean()) {
            problems.push(FlagProblem::error(
                origin,
                format!("{path}.{k}"),
                "metadata values must be strings, numbers or booleans",
                "flatten the value",
            ));
        }
    }
}

/// Replaces `{"$ref": "name"}` with the evaluator (recursively, bounded); names not found are
/// collected with their paths.
fn resolve_refs(
    v: &Value,
    evaluators: &Map<String, Value>,
    path: &str,
    depth: usize,
    missing: &mut Vec<(String, String)>,
) -> Value {
    if depth > MAX_DEPTH {
        missing.push((path.to_string(), TOO_DEEP.to_string()));
        return Value::Null;
    }
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("$ref") => match m.get("$ref") {
            Some(Value::String(name)) => match evaluators.get(name) {
                Some(rule) => resolve_refs(rule, evaluators, path, depth + 1, missing),
                None => {
                    missing.push((format!("{path}.$ref"), name.clone()));
                    Value::Null
                }
            },
            _ => {
                missing.push((format!("{path}.$ref"), "(not a string)".to_string()));
                Value::Null
            }
        },
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        resolve_refs(x, evaluators, &format!("{path}.{k}"), depth + 1, missing),
                    )
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    resolve_refs(x, evaluators, &format!("{path}[{i}]"), depth + 1, missing)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The flagd-style JSON path of `field` of `flag` (`flags.NAME.FIELD`).
fn field_path(flag: &Flag, field: &str) -> String {
    if field.is_empty() {
        format!("flags.{}", flag.key)
    } else {
        format!("flags.{}.{field}", flag.key)
    }
}

/// Structural problems of one flag (pushed onto `out`): errors and warnings.
pub(crate) fn flag_problems(flag: &Flag, out: &mut Vec<FlagProblem>) {
    let o = flag.origin.as_str();
    if flag.variants.is_empty() {
        out.push(FlagProblem::error(
            o,
            field_path(flag, "variants"),
            format!("flag `{}` has no variants", flag.key),
            "add at least one variant",
        ));
    }
    if let Some(d) = &flag.default_variant
        && !flag.variants.contains_key(d)
    {
        let names: Vec<&str> = flag.variants.keys().map(String::as_str).collect();
        out.push(FlagProblem::error(
            o,
            field_path(flag, "defaultVariant"),
            format!(
                "default variant `{d}` is not among the variants ({})",
                names.join(", ")
            ),
            "name one of the variants",
        ));
    }
    if let Some(want) = flag.value_kind() {
        for (name, value) in &flag.variants {
            match Kind::of(value) {
                Some(got) if got == want => {}
                got => out.push(FlagProblem::error(
                    o,
                    format!("{}.{name}", field_path(flag, "variants")),
                    format!(
                        "variant `{name}` is a {}, the flag is a {} flag",
                        got.map_or("null", Kind::name),
                        want.name()
                    ),
                    "give every variant a value of the same type",
                )),
            }
        }
    }
    if flag.key == crate::model::SHED_PERCENT
        && flag.origin != "built-in"
        && flag.value_kind() != Some(Kind::Number)
    {
        out.push(FlagProblem::error(
            o,
            field_path(flag, ""),
            format!(
                "`{}` is gantry's brownout shed share and must be a number flag",
                flag.key
            ),
            "give it number variants from 0 to 100, or rename your flag",
        ));
    }
    if KILL_SWITCHES.contains(&flag.key.as_str())
        && flag.origin != "built-in"
        && flag.value_kind() != Some(Kind::Bool)
    {
        out.push(FlagProblem::error(
            o,
            field_path(flag, ""),
            format!(
                "`{}` is a gantry kill switch and must be a bool flag",
                flag.key
            ),
            "give it bool variants (e.g. on = true, off = false) or rename your flag",
        ));
    }
    if let Some(rule) = &flag.targeting {
        let base = field_path(flag, "targeting");
        let mut unknown = Vec::new();
        unknown_operators(rule, &base, 0, &mut unknown);
        for (path, op) in unknown {
            out.push(FlagProblem::error(o, path, format!("unknown JSONLogic operator `{op}`"), "use a JSONLogic operator or one of flagd's: fractional, starts_with, ends_with, sem_ver"));
        }
        fractional_problems(flag, rule, &base, 0, out);
    }
}

fn fractional_problems(
    flag: &Flag,
    rule: &Value,
    path: &str,
    depth: usize,
    out: &mut Vec<FlagProblem>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let o = flag.origin.as_str();
    match rule {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                fractional_problems(flag, item, &format!("{path}[{i}]"), depth + 1, out);
            }
        }
        Value::Object(map) => {
            for (op, args) in map {
                let here = format!("{path}.{op}");
                if op == "fractional" {
                    let args: &[Value] = args.as_array().map_or(&[], Vec::as_slice);
                    let buckets = match args.first() {
                        Some(Value::Array(_)) => args,
                        Some(_) => &args[1..],
                        None => &[],
                    };
                    let explicit = buckets
                        .iter()
                        .any(|b| b.as_array().is_some_and(|a| a.len() == 2));
                    match parse_buckets(buckets) {
                        None => out.push(FlagProblem::error(
                            o,
                            here.clone(),
                            "a `fractional` bucket is not [variant] or [variant, integer weight]",
                            "write [\"variant\", 50] (weights are integers)",
                        )),
                        Some(buckets) if buckets.is_empty() => out.push(FlagProblem::error(
                            o,
                            here.clone(),
                            "`fractional` has no buckets",
                            "add [\"variant\", weight] buckets",
                        )),
                        Some(buckets) => {
                            let total: u64 = buckets.iter().map(|(_, w)| *w).sum();
                            if total == 0 || total > MAX_WEIGHT_SUM {
                                out.push(FlagProblem::error(
                                    o,
                                    here.clone(),
                                    format!("`fractional` weights total {total}"),
                                    "give weights whose total is between 1 and 2147483647",
                                ));
                            } else if explicit && total != 100 {
                                let shares: Vec<String> = buckets
                                    .iter()
                                    .map(|(v, w)| {
                                        format!(
                                            "{} {:.1}%",
                                            v.as_str()
                                                .map_or_else(|| v.to_string(), str::to_string),
                                            *w as f64 * 100.0 / total as f64
                                        )
                                    })
                                    .collect();
                                out.push(FlagProblem::warning(o, here.clone(), format!("`fractional` weights sum to {total}, not 100 (flagd treats them as relative: {})", shares.join(", ")), "make them sum to 100 if they are meant as percentages"));
                            }
                            for (v, _) in &buckets {
                                if let Value::String(name) = v
                                    && !flag.variants.contains_key(name)
                                {
                                    out.push(FlagProblem::error(
                                        o,
                                        here.clone(),
                                        format!("`fractional` bucket `{name}` is not a variant"),
                                        "name one of the flag's variants",
                                    ));
                                }
                            }
                        }
                    }
                }
                fractional_problems(flag, args, &here, depth + 1, out);
            }
        }
        _ => {}
    }
}

//! A bounded JSONLogic evaluator with flagd's custom operators (`fractional`, `starts_with`,
//! `ends_with`, `sem_ver`). Bounded in depth and in steps: the rules are user input.

use std::fmt;

use serde_json::{Map, Number, Value};

use crate::fractional;

/// Deepest nesting of operations a rule may have.
pub(crate) const MAX_DEPTH: usize = 64;
/// Most operations one evaluation may perform.
const MAX_STEPS: usize = 100_000;
/// Longest string or array an evaluation may build.
const MAX_LEN: usize = 65_536;

/// Every operator the evaluator knows (`gantry check` reports any other).
pub(crate) const OPERATORS: &[&str] = &[
    "var",
    "missing",
    "missing_some",
    "if",
    "?:",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "or",
    "and",
    "<",
    "<=",
    ">",
    ">=",
    "max",
    "min",
    "+",
    "-",
    "*",
    "/",
    "%",
    "in",
    "cat",
    "substr",
    "merge",
    "map",
    "filter",
    "reduce",
    "all",
    "some",
    "none",
    "log",
    "fractional",
    "starts_with",
    "ends_with",
    "sem_ver",
];

/// The result of a targeting rule: its value and whether a `fractional` split decided it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub value: Value,
    pub split: bool,
}

/// Why a rule could not be evaluated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogicError(pub String);

impl fmt::Display for LogicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Evaluates `rule` for flag `flag_key` against `ctx` (flagd adds `$flagd.flagKey` and
/// `$flagd.timestamp`).
pub(crate) fn evaluate_targeting(
    rule: &Value,
    flag_key: &str,
    ctx: &Map<String, Value>,
) -> Result<Outcome, LogicError> {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut ev = Evaluator {
        ctx,
        flag_key,
        timestamp,
        steps: 0,
        split: false,
    };
    let value = ev.eval(rule, Scope::Root, 0)?;
    Ok(Outcome {
        value,
        split: ev.split,
    })
}

#[derive(Clone, Copy)]
enum Scope<'a> {
    Root,
    Local(&'a Value),
}

struct Evaluator<'a> {
    ctx: &'a Map<String, Value>,
    flag_key: &'a str,
    timestamp: u64,
    steps: usize,
    split: bool,
}

fn fail<T>(msg: impl Into<String>) -> Result<T, LogicError> {
    Err(LogicError(msg.into()))
}

impl Evaluator<'_> {
    fn eval(&mut self, rule: &Value, scope: Scope<'_>, depth: usize) -> Result<Value, LogicError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return fail(format!("the rule takes more than {MAX_STEPS} steps"));
        }
        if depth > MAX_DEPTH {
            return fail(format!("the rule nests deeper than {MAX_DEPTH}"));
        }
        match rule {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item, scope, depth + 1)?);
                }
                Ok(Value::Array(out))
            }
            Value::Object(map) if map.len() == 1 => {
                let Some((op, raw)) = map.iter().next() else {
                    return Ok(rule.clone());
                };
                let args: &[Value] = match raw {
                    Value::Array(items) => items,
                    other => std::slice::from_ref(other),
                };
                self.op(op, args, scope, depth + 1)
            }
            other => Ok(other.clone()),
        }
    }

    fn args(
        &mut self,
        args: &[Value],
        scope: Scope<'_>,
        depth: usize,
    ) -> Result<Vec<Value>, LogicError> {
        args.iter().map(|a| self.eval(a, scope, depth)).collect()
    }

    fn op(
        &mut self,
        op: &str,
        raw: &[Value],
        scope: Scope<'_>,
        depth: usize,
    ) -> Result<Value, LogicError> {
        // Lazy operators first: they evaluate only the arguments they need.
        match op {
            "if" | "?:" => {
                let mut i = 0;
                while i + 1 < raw.len() {
                    if truthy(&self.eval(&raw[i], scope, depth)?) {
                        return self.eval(&raw[i + 1], scope, depth);
                    }
                    i += 2;
                }
                return match raw.get(i) {
                    Some(last) => self.eval(last, scope, depth),
                    None => Ok(Value::Null),
                };
            }
            "and" | "or" => {
                let mut last = Value::Null;
                for a in raw {
                    last = self.eval(a, scope, depth)?;
                    if truthy(&last) == (op == "or") {
                        return Ok(last);
                    }
                }
                return Ok(last);
            }
            "map" | "filter" | "all" | "some" | "none" => {
                let items = match raw.first() {
                    Some(a) => self.eval(a, scope, depth)?,
                    None => Value::Null,
                };
                let items = match items {
                    Value::Array(v) => v,
                    _ => Vec::new(),
                };
                let body = raw.get(1).unwrap_or(&Value::Null);
                let mut out = Vec::new();
                for item in &items {
                    let r = self.eval(body, Scope::Local(item), depth)?;
                    match op {
                        "map" => out.push(r),
                        "filter" if truthy(&r) => out.push(item.clone()),
                        "all" if !truthy(&r) => return Ok(Value::Bool(false)),
                        "some" if truthy(&r) => return Ok(Value::Bool(true)),
                        "none" if truthy(&r) => return Ok(Value::Bool(false)),
                        _ => {}
                    }
                }
                return Ok(match op {
                    "map" | "filter" => Value::Array(out),
                    "all" => Value::Bool(!items.is_empty()),
                    "some" => Value::Bool(false),
                    _ => Value::Bool(true),
                });
            }
            "reduce" => {
                let items = match raw.first() {
                    Some(a) => self.eval(a, scope, depth)?,
                    None => Value::Null,
                };
                let mut acc = match raw.get(2) {
                    Some(a) => self.eval(a, scope, depth)?,
                    None => Value::Null,
                };
                let body = raw.get(1).unwrap_or(&Value::Null);
                if let Value::Array(items) = items {
                    for item in items {
                        let mut local = Map::new();
                        local.insert("current".to_string(), item);
                        local.insert("accumulator".to_string(), acc);
                        let local = Value::Object(local);
                        acc = self.eval(body, Scope::Local(&local), depth)?;
                    }
                }
                return Ok(acc);
            }
            _ => {}
        }
        let a = self.args(raw, scope, depth)?;
        let arg = |i: usize| a.get(i).cloned().unwrap_or(Value::Null);
        let value = match op {
            "var" => self.var(&arg(0), a.get(1), scope),
            "missing" => {
                let keys: Vec<Value> = match a.first() {
                    Some(Value::Array(k)) => k.clone(),
                    _ => a.clone(),
                };
                Value::Array(self.missing(&keys, scope))
            }
            "missing_some" => {
                let need = to_number(&arg(0));
                let keys = match arg(1) {
                    Value::Array(k) => k,
                    _ => Vec::new(),
                };
                let missing = self.missing(&keys, scope);
                if (keys.len() - missing.len()) as f64 >= need {
                    Value::Array(Vec::new())
                } else {
                    Value::Array(missing)
                }
            }
            "==" => Value::Bool(loose_eq(&arg(0), &arg(1))),
            "!=" => Value::Bool(!loose_eq(&arg(0), &arg(1))),
            "===" => Value::Bool(strict_eq(&arg(0), &arg(1))),
            "!==" => Value::Bool(!strict_eq(&arg(0), &arg(1))),
            "!" => Value::Bool(!truthy(&arg(0))),
            "!!" => Value::Bool(truthy(&arg(0))),
            "<" | "<=" | ">" | ">=" => {
                let holds = |x: &Value, y: &Value| compare(op, x, y);
                if a.len() >= 3 && (op == "<" || op == "<=") {
                    Value::Bool(holds(&a[0], &a[1]) && holds(&a[1], &a[2]))
                } else {
                    Value::Bool(holds(&arg(0), &arg(1)))
                }
            }
            "max" | "min" => {
                let nums: Vec<f64> = a.iter().map(to_number).collect();
                if nums.is_empty() {
                    Value::Null
                } else if op == "max" {
                    number(nums.into_iter().fold(f64::NEG_INFINITY, f64::max))
                } else {
                    number(nums.into_iter().fold(f64::INFINITY, f64::min))
                }
            }
            "+" => number(a.iter().map(to_number).sum()),
            "*" => number(a.iter().map(to_number).product()),
            "-" if a.len() == 1 => number(-to_number(&a[0])),
            "-" => number(to_number(&arg(0)) - to_number(&arg(1))),
            "/" => number(to_number(&arg(0)) / to_number(&arg(1))),
            "%" => number(to_number(&arg(0)) % to_number(&arg(1))),
            "in" => Value::Bool(match arg(1) {
                Value::String(hay) => hay.contains(&to_string(&arg(0))),
                Value::Array(items) => items.iter().any(|i| strict_eq(i, &arg(0))),
                _ => false,
            }),
            "cat" => {
                let s: String = a.iter().map(to_string).collect();
                if s.len() > MAX_LEN {
                    return fail(format!("`cat` builds a string longer than {MAX_LEN} bytes"));
                }
                Value::String(s)
            }
            "substr" => Value::String(substr(&to_string(&arg(0)), &arg(1), a.get(2))),
            "merge" => {
                let mut out = Vec::new();
                for v in a {
                    match v {
                        Value::Array(items) => out.extend(items),
                        other => out.push(other),
                    }
                }
                if out.len() > MAX_LEN {
                    return fail(format!("`merge` builds an array longer than {MAX_LEN}"));
                }
                Value::Array(out)
            }
            "log" => arg(0),
            "starts_with" | "ends_with" => match (a.first(), a.get(1)) {
                (Some(Value::String(s)), Some(Value::String(p))) if a.len() == 2 => {
                    Value::Bool(if op == "starts_with" {
                        s.starts_with(p.as_str())
                    } else {
                        s.ends_with(p.as_str())
                    })
                }
                _ => Value::Null,
            },
            "sem_ver" => crate::semver::sem_ver(&a),
            "fractional" => {
                let v = fractional::fractional(&a, self.flag_key, self.ctx.get("targetingKey"));
                if !v.is_null() {
                    self.split = true;
                }
                v
            }
            other => return fail(format!("unknown operator `{other}`")),
        };
        Ok(value)
    }

    fn lookup(&self, path: &str, scope: Scope<'_>) -> Option<Value> {
        if path.is_empty() {
            return Some(match scope {
                Scope::Local(v) => v.clone(),
                Scope::Root => Value::Object(self.root_map()),
            });
        }
        let mut parts = path.split('.');
        let first = parts.next()?;
        let mut current: Value = match scope {
            Scope::Local(v) => index(v, first)?.clone(),
            Scope::Root if first == "$flagd" => Value::Object(self.flagd_map()),
            Scope::Root => self.ctx.get(first)?.clone(),
        };
        for part in parts {
            current = index(&current, part)?.clone();
        }
        Some(current)
    }

    fn flagd_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "flagKey".to_string(),
            Value::String(self.flag_key.to_string()),
        );
        m.insert(
            "timestamp".to_string(),
            Value::Number(Number::from(self.timestamp)),
        );
        m
    }

    fn root_map(&self) -> Map<String, Value> {
        let mut m = self.ctx.clone();
        m.insert("$flagd".to_string(), Value::Object(self.flagd_map()));
        m
    }

    fn var(&self, key: &Value, default: Option<&Value>, scope: Scope<'_>) -> Value {
        let path = match key {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return default.cloned().unwrap_or(Value::Null),
        };
        match self.lookup(&path, scope) {
            Some(Value::Null) | None => default.cloned().unwrap_or(Value::Null),
            Some(v) => v,
        }
    }

    fn missing(&self, keys: &[Value], scope: Scope<'_>) -> Vec<Value> {
        keys.iter()
            .filter(|k| {
                let v = self.var(k, None, scope);
                v.is_null() || v == Value::String(String::new())
            })
            .cloned()
            .collect()
    }
}

fn index<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) => m.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

/// JSONLogic truthiness (JavaScript's, with an empty array false).
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if s.trim().is_empty() => 0.0,
        Value::String(s) => s.trim().parse().unwrap_or(f64::NAN),
        Value::Array(a) if a.is_empty() => 0.0,
        Value::Array(a) if a.len() == 1 => to_number(&a[0]),
        _ => f64::NAN,
    }
}

fn to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Array(a) => a.iter().map(to_string).collect::<Vec<_>>().join(","),
        Value::Object(_) => "[object Object]".to_string(),
    }
}

fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Number(Number::from(f as i64))
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Number(_), Value::Number(_)) => strict_eq(a, b),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Array(_) | Value::Object(_), Value::Array(_) | Value::Object(_)) => false,
        (Value::Array(_) | Value::Object(_), Value::String(s))
        | (Value::String(s), Value::Array(_) | Value::Object(_)) => {
            let other = if a.is_string() { b } else { a };
            to_string(other) == *s
        }
        _ => to_number(a) == to_number(b),
    }
}

fn compare(op: &str, a: &Value, b: &Value) -> bool {
    if let (Value::String(x), Value::String(y)) = (a, b) {
        return match op {
            "<" => x < y,
            "<=" => x <= y,
            ">" => x > y,
            _ => x >= y,
        };
    }
    let (x, y) = (to_number(a), to_number(b));
    match op {
        "<" => x < y,
        "<=" => x <= y,
        ">" => x > y,
        _ => x >= y,
    }
}

fn substr(s: &str, start: &Value, len: Option<&Value>) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let start = to_number(start);
    let start = if start.is_nan() { 0 } else { start as i64 };
    let from = if start < 0 {
        (n + start).max(0)
    } else {
        start.min(n)
    };
    let to = match len.map(to_number) {
        None => n,
        Some(l) if l.is_nan() => n,
        Some(l) if l < 0.0 => n.saturating_add(l as i64).max(from),
        Some(l) => from.saturating_add(l as i64).min(n),
    };
    chars[from as usize..to.max(from) as usize].iter().collect()
}

/// Operators `rule` uses that the evaluator does not know, with their JSON paths under `path`.
pub(crate) fn unknown_operators(
    rule: &Value,
    path: &str,
    depth: usize,
    out: &mut Vec<(String, String)>,
) {
    if depth > MAX_DEPTH {
        out.push((path.to_string(), format!("nests deeper than {MAX_DEPTH}")));
        return;
    }
    match rule {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unknown_operators(item, &format!("{path}[{i}]"), depth + 1, out);
            }
        }
        Value::Object(map) if map.len() == 1 => {
            for (op, args) in map {
                let here = format!("{path}.{op}");
                if !OPERATORS.contains(&op.as_str()) {
                    out.push((here.clone(), op.clone()));
                }
                unknown_operators(args, &here, depth + 1, out);
            }
        }
        _ => {}
    }
}

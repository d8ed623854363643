//! Decodes the spanned TOML tree into the typed [`Spec`], collecting every problem at once.
//!
//! serde stops at the first error; a user fixing a file wants all of them, each
//! with file:line:column, the key and a hint. So the decoder walks the tree by
//! hand, records a diagnostic for each bad value, substitutes the default and goes on.

use crate::diag::{Diagnostic, did_you_mean};
use crate::duration::parse_duration;
use crate::interp::interpolate;
use crate::keys::{self, Key};
use crate::model::*;
use crate::size::{format_size, parse_size};
use crate::source::{Source, Span};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

mod alerts;
mod cluster;
mod flags;
mod ingress;
mod probe;
mod rollout;
mod runbooks;
mod service;
mod settings;

pub use flags::{flag_diagnostics, parse_date, valid_flag_key};
pub use ingress::instance_name;

type Value<'i> = Spanned<DeValue<'i>>;

/// The outcome of reading a file: the spec (best effort, even with errors) and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    pub spec: Spec,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and decodes `source`. `env` looks up variables for `${VAR}` interpolation.
pub fn decode(source: &Source, env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    // Before the parser builds a tree that deep: see depth.rs.
    if let Some(too_deep) = crate::depth::too_deep(&source.text) {
        return Loaded {
            spec: Spec::default(),
            diagnostics: vec![too_deep],
        };
    }
    let (doc, errors) = DeTable::parse_recoverable(&source.text);
    if !errors.is_empty() {
        let diagnostics = errors
            .iter()
            .map(|e| {
                let mut d = Diagnostic::error("syntax", e.message().trim().to_string())
                    .hint("fix the TOML syntax at this position; see docs/config.md");
                if let Some(span) = e.span() {
                    d = d.at(span);
                }
                d
            })
            .collect();
        return Loaded {
            spec: Spec::default(),
            diagnostics,
        };
    }
    let mut d = Decoder {
        diags: Vec::new(),
        env,
        logs: LogRotation::default(),
        instance_vars: false,
        port_used: None,
    };
    let root = doc.get_ref();
    let mut spec = d.spec(root, doc.span());
    if let Some(v) = root.get("ingress") {
        spec.ingress = d.ingress(v);
    }
    if let Some(v) = root.get("flags") {
        spec.flags.defs = d.flags(v);
    }
    if let Some(v) = root
        .get("settings")
        .and_then(|s| s.get_ref().as_table())
        .and_then(|t| t.get("flags_file"))
    {
        spec.flags.file = d.string(v, "settings.flags_file");
    }
    if let Some(v) = root.get("alerts") {
        spec.alerts = d.alerts(v);
    }
    if let Some(v) = root.get("cluster") {
        spec.cluster = d.cluster(v);
    }
    if let Some(v) = root.get("slo") {
        spec.slos = d.slos(v, &spec);
    }
    if let Some(v) = root.get("runbooks") {
        spec.runbooks = d.runbooks(v, &spec);
    }
    d.check_rule_runbooks(&spec);
    d.check_flags_restart(&spec);
    d.check_instances(&spec);
    ingress::check_routes(&spec, source, &mut d.diags);
    let mut diagnostics = d.diags;
    diagnostics.retain(|diag| !secret_fills_database(&spec, diag));
    Loaded { spec, diagnostics }
}

/// The warning for a `${VAR}` without a default whose variable is not set.
fn unset_message(var: &str) -> String {
    format!("environment variable `{var}` is not set; using an empty string")
}

/// The names a secret delivers to service `service` (its `env`, else its name).
pub fn secret_vars_for<'a>(spec: &'a Spec, service: &'a str) -> impl Iterator<Item = &'a str> {
    spec.secrets
        .iter()
        .filter(move |s| s.services.iter().any(|x| x.value == service))
        .map(|s| s.env.as_deref().unwrap_or(&s.name.value))
}

/// An "unset variable" warning about a migrate service's `database` whose variable is
/// a secret delivered to that service: `gantry up` and the migrate commands fill it
/// with the secret's value, so it is not unset where it is used.
fn secret_fills_database(spec: &Spec, diag: &Diagnostic) -> bool {
    if diag.code != "unset-variable" {
        return false;
    }
    let Some(service) = diag
        .key
        .as_deref()
        .and_then(|k| k.strip_prefix("services."))
        .and_then(|k| k.strip_suffix(".database"))
    else {
        return false;
    };
    spec.services
        .iter()
        .any(|s| s.name.value == service && s.migrate.is_some())
        && secret_vars_for(spec, service).any(|var| diag.message == unset_message(var))
}

struct Decoder<'e> {
    diags: Vec<Diagnostic>,
    env: &'e dyn Fn(&str) -> Option<String>,
    /// `[settings] logs`, which `[defaults]` and services refine key by key.
    logs: LogRotation,
    /// Set while a service with `replicas` is decoded: `${PORT}` and `${REPLICA}` stay as
    /// written, for the plan to replace per instance.
    instance_vars: bool,
    /// Where such a service first wrote `${PORT}` (it then needs `replica_ports`).
    port_used: Option<Span>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Valid service, layer, profile and secret names: they appear in paths, metrics
/// labels and process titles, so keep them to a safe alphabet.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Decoder<'_> {
    fn error(
        &mut self,
        code: &'static str,
        path: &str,
        span: Span,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.diags.push(
            Diagnostic::error(code, msg)
                .key(path.to_string())
                .at(span)
                .hint(hint),
        );
    }

    fn wrong_type(&mut self, path: &str, v: &Value<'_>, expected: &str) {
        let got = type_name(v.get_ref());
        self.error(
            "wrong-type",
            path,
            v.span(),
            format!("expected {expected}, found {got}"),
            format!(
                "write {expected} here; see docs/config.md#{}",
                path.split('.').next().unwrap_or("")
            ),
        );
    }

    /// Warns about keys this table does not know (never an error: newer files
    /// must still load in older gantry versions).
    fn unknown_keys(&mut self, table: &DeTable<'_>, known: &'static [Key], path: &str) {
        for (key, _) in table.iter() {
            let name = key.get_ref().as_ref();
            if keys::find(known, name).is_none() {
                let mut d =
                    Diagnostic::warning("unknown-key", format!("unknown key `{name}` (ignored)"))
                        .key(join(path, name))
                        .at(key.span());
                d = match did_you_mean(name, known.iter().map(|k| k.name)) {
                    Some(s) => d.hint(format!("did you mean `{s}`?")),
                    None => d.hint("remove it, or check the key reference in docs/config.md"),
                };
                self.diags.push(d);
            }
        }
    }

    fn table<'a, 'i>(&mut self, v: &'a Value<'i>, path: &str) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(path, v, "a table");
                None
            }
        }
    }

    fn interp(&mut self, raw: &str, path: &str, span: Span) -> String {
        let keep = self.instance_vars;
        let port_used = std::cell::Cell::new(false);
        let env = self.env;
        let lookup = |name: &str| match name {
            "PORT" | "REPLICA" if keep => {
                port_used.set(port_used.get() || name == "PORT");
                Some(format!("${{{name}}}"))
            }
            _ => env(name),
        };
        let result = interpolate(raw, &lookup);
        if port_used.get() && self.port_used.is_none() {
            self.port_used = Some(span.clone());
        }
        match result {
            Ok(r) => {
                for var in r.missing {
                    self.diags.push(
                        Diagnostic::warning("unset-variable", unset_message(&var))
                            .key(path.to_string())
                            .at(span.clone())
                            .hint(format!("set {var}, or give a default: ${{{var}:-value}}")),
                    );
                }
                for (var, why) in r.required {
                    self.error(
                        "required-variable",
                        path,
                        span.clone(),
                        format!("{var} is required but not set: {why}"),
                        format!("export {var}=... before running gantry"),
                    );
                }
                r.value
            }
            Err(e) => {
                self.error(
                    "bad-interpolation",
                    path,
                    span,
                    e,
                    "write ${VAR}, ${VAR:-default} or ${VAR:?message}; use $$ for a literal $",
                );
                raw.to_string()
            }
        }
    }

    fn string(&mut self, v: &Value<'_>, path: &str) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(self.interp(s, path, v.span()), v.span())),
            _ => {
                self.wrong_type(path, v, "a string");
                None
            }
        }
    }

    /// Element `i` of the array at `path`, as [`Decoder::string`]; its key (`path[i]`) is
    /// formatted only when a diagnostic needs it: a plain string (no `$`) has none.
    fn element(&mut self, v: &Value<'_>, path: &str, i: usize) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::String(s) if !s.contains('$') => Some(Sp::new(s.to_string(), v.span())),
            _ => self.string(v, &format!("{path}[{i}]")),
        }
    }

    /// The file path under `key` of table `t` (at `path`): a string, and not empty (an empty
    /// one is an error with `hint`). A probe's `ca_file`/`cert_file`/`key_file` and a TLS
    /// listener's `cert`/`key`.
    fn pem_path(
        &mut self,
        t: &DeTable<'_>,
        path: &str,
        key: &str,
        hint: &str,
    ) -> Option<Sp<String>> {
        let x = t.get(key)?;
        let v = self.string(x, &join(path, key))?;
        if v.value.trim().is_empty() {
            self.error(
                "invalid-value",
                &join(path, key),
                x.span(),
                format!("`{key}` is empty"),
                hint,
            );
            return None;
        }
        Some(v)
    }

    fn boolean(&mut self, v: &Value<'_>, path: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(path, v, "true or false");
                None
            }
        }
    }

    fn int(&mut self, v: &Value<'_>, path: &str, min: i64, max: i64) -> Option<i64> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => {
                self.wrong_type(path, v, "an integer");
                return None;
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    "out-of-range",
                    path,
                    v.span(),
                    format!("value out of range: must be between {min} and {max}"),
                    format!("use a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn duration(&mut self, v: &Value<'_>, path: &str) -> Option<Dur> {
        let s = match v.get_ref() {
            DeValue::String(s) => self.interp(s, path, v.span()),
            DeValue::Integer(_) | DeValue::Float(_) => {
                self.error(
                    "bad-duration",
                    path,
                    v.span(),
                    "a duration needs a unit",
                    "write it as a string with a unit, e.g. \"500ms\", \"5s\" or \"1m\"",
                );
                return None;
            }
            _ => {
                self.wrong_type(path, v, "a duration string such as \"5s\"");
                return None;
            }
        };
        match parse_duration(&s) {
            Ok(d) => Some(Dur(d)),
            Err(e) => {
                self.error(
                    "bad-duration",
                    path,
                    v.span(),
                    format!("invalid duration: {e}"),
                    "use a number with a unit: us, ms, s, m, h or d (e.g. \"250ms\", \"1m30s\")",
                );
                None
            }
        }
    }

    /// A size: an integer of bytes, or a string with a binary unit; at least `min` bytes.
    fn size(&mut self, v: &Value<'_>, path: &str, min: u64) -> Option<u64> {
        const FORMS: &str =
            "write a number of bytes, or a string with a unit: \"512KiB\", \"10MiB\", \"1GiB\"";
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if n >= 0 => Ok(n as u64),
                Ok(_) => Err("a size cannot be negative".to_string()),
                Err(_) => Err("the number is too large".to_string()),
            },
            DeValue::Float(_) => Err("a size is a whole number of bytes".to_string()),
            DeValue::String(s) => {
                let s = self.interp(s, path, v.span());
                parse_size(&s).map_err(|e| format!("invalid size: {e}"))
            }
            _ => {
                self.wrong_type(path, v, "a size such as \"10MiB\"");
                return None;
            }
        };
        match parsed {
            Ok(n) if n >= min => Some(n),
            Ok(n) => {
                let (have, least) = (format_size(n), format_size(min));
                self.error(
                    "out-of-range",
                    path,
                    v.span(),
                    format!("{have} is below the minimum of {least}"),
                    format!("use at least \"{least}\", e.g. \"10MiB\""),
                );
                None
            }
            Err(e) => {
                self.error("bad-size", path, v.span(), e, FORMS);
                None
            }
        }
    }

    /// A share of the CPUs: a number (`0.5`, `2`) or a string (`"50%"`, `"0.5"`).
    fn cpu(&mut self, v: &Value<'_>, path: &str) -> Option<MilliCpus> {
        const FORMS: &str =
            "write a number of CPUs (cpu_max = 0.5) or a percentage of one CPU (cpu_max = \"50%\")";
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => crate::cpu::from_cpus(n as f64, i.as_str()),
                Err(_) => Err("the number is too large".to_string()),
            },
            DeValue::Float(x) => match x.as_str().parse::<f64>() {
                Ok(n) => crate::cpu::from_cpus(n, x.as_str()),
                Err(_) => Err(format!("`{}` is not a CPU share", x.as_str())),
            },
            DeValue::String(s) => {
                let s = self.interp(s, path, v.span());
                crate::cpu::parse_cpu(&s)
            }
            _ => {
                self.wrong_type(path, v, "a number of CPUs such as 0.5, or \"50%\"");
                return None;
            }
        };
        match parsed {
            Ok(m) => Some(m),
            Err(e) => {
                self.error("bad-cpu", path, v.span(), e, FORMS);
                None
            }
        }
    }

    fn enumeration(
        &mut self,
        v: &Value<'_>,
        path: &str,
        options: &'static [&'static str],
    ) -> Option<&'static str> {
        let s = self.string(v, path)?;
        if let Some(o) = options.iter().find(|o| o.eq_ignore_ascii_case(&s.value)) {
            return Some(o);
        }
        let list = options
            .iter()
            .map(|o| format!("`{o}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = match did_you_mean(&s.value.to_ascii_lowercase(), options.iter().copied()) {
            Some(m) => format!("did you mean `{m}`? expected one of {list}"),
            None => format!("expected one of {list}"),
        };
        self.error(
            "invalid-value",
            path,
            v.span(),
            format!("invalid value `{}`", s.value),
            hint,
        );
        None
    }

    fn command(&mut self, v: &Value<'_>, path: &str) -> Option<Sp<Vec<String>>> {
        let argv = match v.get_ref() {
            DeValue::String(s) => {
                let s = self.interp(s, path, v.span());
                match shlex::split(&s) {
                    Some(argv) => argv,
                    None => {
                        self.error(
                            "bad-command",
                            path,
                            v.span(),
                            "cannot split this command: unbalanced quotes",
                            "close the quote, or write the command as an array of arguments",
                        );
                        return None;
                    }
                }
            }
            DeValue::Array(items) => {
                let mut argv = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    argv.push(self.element(item, path, i)?.value);
                }
                argv
            }
            _ => {
                self.wrong_type(path, v, "a string or an array of strings");
                return None;
            }
        };
        if argv.is_empty() || argv[0].is_empty() {
            self.error(
                "bad-command",
                path,
                v.span(),
                "the command is empty",
                "name a program to run, e.g. command = \"python3 app.py\"",
            );
            return None;
        }
        Some(Sp::new(argv, v.span()))
    }

    fn str_list(&mut self, v: &Value<'_>, path: &str) -> Vec<Sp<String>> {
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.element(item, path, i))
                .collect(),
            _ => {
                self.wrong_type(path, v, "an array of strings");
                Vec::new()
            }
        }
    }

    fn str_or_list(&mut self, v: &Value<'_>, path: &str) -> Vec<Sp<String>> {
        match v.get_ref() {
            DeValue::String(_) => self.string(v, path).into_iter().collect(),
            _ => self.str_list(v, path),
        }
    }

    fn env_table(&mut self, v: &Value<'_>, path: &str) -> Vec<EnvVar> {
        let Some(t) = self.table(v, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in t.iter() {
            let name = key.get_ref().as_ref();
            let p = join(path, name);
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                self.error(
                    "invalid-name",
                    &p,
                    key.span(),
                    format!("`{name}` is not a valid environment variable name"),
                    "use letters, digits and underscores",
                );
                continue;
            }
            let value = match value.get_ref() {
                DeValue::String(_) => self.string(value, &p),
                DeValue::Integer(i) => Some(Sp::new(i.as_str().to_string(), value.span())),
                DeValue::Boolean(b) => Some(Sp::new(b.to_string(), value.span())),
                DeValue::Float(f) => Some(Sp::new(f.as_str().to_string(), value.span())),
                _ => {
                    self.wrong_type(&p, value, "a string");
                    None
                }
            };
            if let Some(value) = value {
                out.push(EnvVar {
                    name: Sp::new(name.to_string(), key.span()),
                    value,
                });
            }
        }
        out
    }

    fn spec(&mut self, root: &DeTable<'_>, _span: Span) -> Spec {
        self.unknown_keys(root, keys::TOP, "");
        let mut spec = Spec::default();
        if let Some(v) = root.get("settings")
            && let Some(t) = self.table(v, "settings")
        {
            spec.settings = self.settings(t);
        }
        if let Some(v) = root.get("env") {
            spec.env = self.env_table(v, "env");
        }
        if let Some(v) = root.get("env_file") {
            spec.env_file = self.str_or_list(v, "env_file");
        }
        if let Some(v) = root.get("secrets")
            && let Some(t) = self.table(v, "secrets")
        {
            for (key, value) in t.iter() {
                if let Some(s) = self.secret(key, value) {
                    spec.secrets.push(s);
                }
            }
        }
        let mut defaults = ServiceDefaults::default();
        if let Some(v) = root.get("defaults")
            && let Some(t) = self.table(v, "defaults")
        {
            self.unknown_keys(t, keys::DEFAULTS, "defaults");
            defaults = self.inheritable(t, "defaults", self.logs);
        }
        if let Some(v) = root.get("services")
            && let Some(t) = self.table(v, "services")
        {
            let mut seen: std::collections::HashMap<String, Span> =
                std::collections::HashMap::new();
            for (key, value) in t.iter() {
                let lower = key.get_ref().to_ascii_lowercase();
                if let Some(first) = seen.get(&lower) {
                    let (first_line, _) = (first.start, ());
                    let _ = first_line;
                    self.error(
                            "duplicate-name",
                            &join("services", key.get_ref()),
                            key.span(),
                            format!("service `{}` differs from another service only by letter case", key.get_ref()),
                            "give each service a distinct name; names are compared without case in paths and metrics",
                        );
                    continue;
                }
                seen.insert(lower, key.span());
                if let Some(s) = self.service(key, value, &defaults) {
                    spec.services.push(s);
                }
            }
        }
        spec.defaults = defaults;
        if let Some(v) = root.get("layers")
            && let Some(t) = self.table(v, "layers")
        {
            self.unknown_keys(t, keys::LAYERS, "layers");
            let order = t
                .get("order")
                .map(|o| self.str_list(o, "layers.order"))
                .unwrap_or_default();
            spec.layers = Some(Layers { order });
        }
        if let Some(v) = root.get("profiles")
            && let Some(t) = self.table(v, "profiles")
        {
            for (key, value) in t.iter() {
                let path = join("profiles", key.get_ref());
                self.check_name(key, &path, "profile");
                let Some(pt) = self.table(value, &path) else {
                    continue;
                };
                self.unknown_keys(pt, keys::PROFILE, &path);
                let services = pt
                    .get("services")
                    .map(|s| self.str_list(s, &join(&path, "services")))
                    .unwrap_or_default();
                let mut priorities = Vec::new();
                if let Some(ps) = pt.get("priorities") {
                    if let DeValue::Array(items) = ps.get_ref() {
                        for (i, item) in items.iter().enumerate() {
                            if let Some(p) = self.enumeration(
                                item,
                                &format!("{path}.priorities[{i}]"),
                                keys::PRIORITIES,
                            ) {
                                priorities.push(priority(p));
                            }
                        }
                    } else {
                        self.wrong_type(&join(&path, "priorities"), ps, "an array of priorities");
                    }
                }
                spec.profiles.push(Profile {
                    name: Sp::new(key.get_ref().to_string(), key.span()),
                    services,
                    priorities,
                });
            }
        }
        spec
    }

    fn check_name(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        path: &str,
        what: &str,
    ) -> bool {
        let name = key.get_ref();
        if valid_name(name) {
            return true;
        }
        self.error(
            "invalid-name",
            path,
            key.span(),
            format!("`{name}` is not a valid {what} name"),
            "start with a letter or digit; then letters, digits, `_`, `-` or `.`; at most 63 characters",
        );
        false
    }
}

fn priority(p: &str) -> Priority {
    match p {
        "critical" => Priority::Critical,
        "high" => Priority::High,
        "low" => Priority::Low,
        _ => Priority::Medium,
    }
}

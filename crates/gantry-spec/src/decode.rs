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
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

mod alerts;
mod cluster;
mod flags;
mod ingress;
mod rollout;
mod runbooks;

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
                    argv.push(self.string(item, &format!("{path}[{i}]"))?.value);
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
                .filter_map(|(i, item)| self.string(item, &format!("{path}[{i}]")))
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

    fn settings(&mut self, t: &DeTable<'_>) -> Settings {
        self.unknown_keys(t, keys::SETTINGS, "settings");
        let mut s = Settings::default();
        if let Some(v) = t.get("state_dir")
            && let Some(x) = self.string(v, "settings.state_dir")
        {
            s.state_dir = x.value;
        }
        if let Some(v) = t.get("api")
            && let Some(x) = self.string(v, "settings.api")
        {
            let ok =
                x.value.starts_with("unix:") || x.value.parse::<std::net::SocketAddr>().is_ok();
            if ok {
                s.api = x.value;
            } else {
                self.error(
                    "invalid-value",
                    "settings.api",
                    v.span(),
                    format!("`{}` is not an address", x.value),
                    "write host:port such as \"127.0.0.1:7070\", or \"unix:/path/to/socket\"",
                );
            }
        }
        if let Some(v) = t.get("api_tokens")
            && let Some(x) = self.string(v, "settings.api_tokens")
        {
            s.api_tokens = Some(x.value);
        }
        if let Some(v) = t.get("shutdown_timeout")
            && let Some(d) = self.duration(v, "settings.shutdown_timeout")
        {
            s.shutdown_timeout = d;
        }
        if let Some(v) = t.get("allow_degraded")
            && let Some(b) = self.boolean(v, "settings.allow_degraded")
        {
            s.allow_degraded = b;
        }
        if let Some(v) = t.get("revalidate") {
            s.revalidate = self.duration(v, "settings.revalidate");
        }
        if let Some(v) = t.get("logs") {
            s.logs = self.logs(v, "settings.logs", LogRotation::default());
            self.logs = s.logs;
        }
        if let Some(v) = t.get("retention") {
            s.retention = self.retention(v, "settings.retention");
        }
        s
    }

    /// `{ max_size = "10MiB", keep = 3 }`; a missing or bad key keeps its value in `base`.
    fn logs(&mut self, v: &Value<'_>, path: &str, base: LogRotation) -> LogRotation {
        let mut l = base;
        let Some(t) = self.table(v, path) else {
            return l;
        };
        self.unknown_keys(t, keys::LOGS, path);
        if let Some(x) = t.get("max_size") {
            l.max_size = self
                .size(x, &join(path, "max_size"), keys::LOG_MIN_SIZE)
                .unwrap_or(l.max_size);
        }
        if let Some(x) = t.get("keep") {
            l.keep = self
                .int(x, &join(path, "keep"), 0, 1000)
                .map_or(l.keep, |n| n as u32);
        }
        l
    }

    fn secret(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        v: &Value<'_>,
    ) -> Option<Secret> {
        let path = join("secrets", key.get_ref());
        let t = self.table(v, &path)?;
        self.unknown_keys(t, keys::SECRET, &path);
        let mut sources = Vec::new();
        for (name, make) in [
            (
                "from_env",
                SecretSource::FromEnv as fn(String) -> SecretSource,
            ),
            ("from_file", SecretSource::FromFile),
        ] {
            if let Some(x) = t.get(name)
                && let Some(s) = self.string(x, &join(&path, name))
            {
                sources.push(Sp::new(make(s.value), x.span()));
            }
        }
        if let Some(x) = t.get("from_command")
            && let Some(c) = self.command(x, &join(&path, "from_command"))
        {
            sources.push(Sp::new(SecretSource::FromCommand(c.value), x.span()));
        }
        if sources.len() > 1 {
            self.error(
                "secret-source",
                &path,
                key.span(),
                "a secret needs exactly one source, found several",
                "keep one of from_env, from_file or from_command",
            );
        }
        if sources.is_empty()
            && !["from_env", "from_file", "from_command"]
                .iter()
                .any(|k| t.contains_key(*k))
        {
            self.error(
                "secret-source",
                &path,
                key.span(),
                "a secret needs a source",
                "add from_env = \"VAR\", from_file = \"path\" or from_command = \"cmd\"",
            );
        }
        let required = t
            .get("required")
            .and_then(|x| self.boolean(x, &join(&path, "required")))
            .unwrap_or(true);
        let services = t
            .get("services")
            .map(|x| self.str_list(x, &join(&path, "services")))
            .unwrap_or_default();
        let env = t
            .get("env")
            .and_then(|x| self.string(x, &join(&path, "env")))
            .map(|s| s.value);
        Some(Secret {
            name: Sp::new(key.get_ref().to_string(), key.span()),
            source: sources.into_iter().next(),
            required,
            services,
            env,
        })
    }

    /// `{ boots = 100, missions = "30d" }`; a missing or bad key keeps its default.
    fn retention(&mut self, v: &Value<'_>, path: &str) -> Retention {
        let mut r = Retention::default();
        let Some(t) = self.table(v, path) else {
            return r;
        };
        self.unknown_keys(t, keys::RETENTION, path);
        if let Some(x) = t.get("boots") {
            r.boots = self
                .int(x, &join(path, "boots"), 1, 1_000_000)
                .map_or(r.boots, |n| n as u64);
        }
        if let Some(x) = t.get("missions") {
            r.missions = self
                .duration(x, &join(path, "missions"))
                .unwrap_or(r.missions);
        }
        r
    }

    /// The keys `[defaults]` and a service share; `logs_base` is the rotation whose keys a
    /// `logs` table here leaves unchanged.
    fn inheritable(
        &mut self,
        t: &DeTable<'_>,
        path: &str,
        logs_base: LogRotation,
    ) -> ServiceDefaults {
        let mut d = ServiceDefaults::default();
        if let Some(v) = t.get("logs") {
            d.logs = Some(self.logs(v, &join(path, "logs"), logs_base));
        }
        if let Some(v) = t.get("working_dir") {
            d.working_dir = self.string(v, &join(path, "working_dir")).map(|s| s.value);
        }
        if let Some(v) = t.get("env") {
            d.env = self.env_table(v, &join(path, "env"));
        }
        if let Some(v) = t.get("priority") {
            d.priority = self
                .enumeration(v, &join(path, "priority"), keys::PRIORITIES)
                .map(priority);
        }
        if let Some(v) = t.get("restart") {
            d.restart = self
                .enumeration(v, &join(path, "restart"), keys::RESTARTS)
                .map(|r| match r {
                    "always" => Restart::Always,
                    "on-failure" => Restart::OnFailure,
                    _ => Restart::Never,
                });
        }
        if let Some(v) = t.get("retry") {
            d.retry = self.retry(v, &join(path, "retry"));
        }
        if let Some(v) = t.get("start_limit") {
            d.start_limit = self.start_limit(v, &join(path, "start_limit"));
        }
        if let Some(v) = t.get("start_breaker") {
            d.start_breaker = self.start_breaker(v, &join(path, "start_breaker"));
        }
        if let Some(v) = t.get("start_timeout") {
            d.start_timeout = self.duration(v, &join(path, "start_timeout"));
        }
        if let Some(v) = t.get("stop_signal") {
            d.stop_signal = self
                .enumeration(v, &join(path, "stop_signal"), keys::SIGNALS)
                .map(str::to_string);
        }
        if let Some(v) = t.get("stop_timeout") {
            d.stop_timeout = self.duration(v, &join(path, "stop_timeout"));
        }
        if let Some(v) = t.get("healthy_after") {
            d.healthy_after = self.duration(v, &join(path, "healthy_after"));
        }
        if let Some(v) = t.get("start_grace") {
            d.start_grace = self.duration(v, &join(path, "start_grace"));
        }
        if let Some(v) = t.get("memory_max") {
            d.limits.memory_max = self.size(v, &join(path, "memory_max"), keys::MEMORY_MIN);
        }
        if let Some(v) = t.get("cpu_max") {
            d.limits.cpu_max = self.cpu(v, &join(path, "cpu_max"));
        }
        d
    }

    fn retry(&mut self, v: &Value<'_>, path: &str) -> Option<Retry> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::RETRY, path);
        let mut r = Retry::default();
        if let Some(x) = t.get("attempts") {
            r.attempts = self
                .int(x, &join(path, "attempts"), 1, 1000)
                .map_or(r.attempts, |n| n as u32);
        }
        if let Some(x) = t.get("backoff") {
            r.backoff = self
                .duration(x, &join(path, "backoff"))
                .unwrap_or(r.backoff);
        }
        if let Some(x) = t.get("max_backoff") {
            r.max_backoff = self
                .duration(x, &join(path, "max_backoff"))
                .unwrap_or(r.max_backoff);
        }
        if let Some(x) = t.get("jitter") {
            r.jitter = self.boolean(x, &join(path, "jitter")).unwrap_or(r.jitter);
        }
        if r.max_backoff < r.backoff {
            self.diags.push(
                Diagnostic::warning(
                    "out-of-range",
                    "max_backoff is smaller than backoff; every delay will be max_backoff",
                )
                .key(path.to_string())
                .at(v.span())
                .hint("raise max_backoff or lower backoff"),
            );
        }
        Some(r)
    }

    fn start_limit(&mut self, v: &Value<'_>, path: &str) -> Option<StartLimit> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::START_LIMIT, path);
        let mut s = StartLimit::default();
        if let Some(x) = t.get("burst") {
            s.burst = self
                .int(x, &join(path, "burst"), 1, 10000)
                .map_or(s.burst, |n| n as u32);
        }
        if let Some(x) = t.get("interval") {
            s.interval = self
                .duration(x, &join(path, "interval"))
                .unwrap_or(s.interval);
        }
        Some(s)
    }

    /// `{ failures = N, cooldown = "30s" }`; a missing key takes its default.
    /// A table with a bad value still decodes (with the default for that key),
    /// so a typo does not silently drop the breaker from the spec.
    fn start_breaker(&mut self, v: &Value<'_>, path: &str) -> Option<StartBreaker> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::START_BREAKER, path);
        let mut b = StartBreaker::default();
        if let Some(x) = t.get("failures") {
            b.failures = self
                .int(x, &join(path, "failures"), 1, 1000)
                .map_or(b.failures, |n| n as u32);
        }
        if let Some(x) = t.get("cooldown") {
            match self.duration(x, &join(path, "cooldown")) {
                Some(d) if d.0.is_zero() => self.error(
                    "out-of-range",
                    &join(path, "cooldown"),
                    x.span(),
                    "cooldown must be greater than zero",
                    "use at least 1ms, e.g. cooldown = \"30s\"; remove start_breaker for no breaker",
                ),
                Some(d) => b.cooldown = d,
                None => {}
            }
        }
        Some(b)
    }

    /// A breaker that needs at least as many failures as the retry policy allows
    /// attempts can never open: the service gives up first.
    fn check_breaker(&mut self, service: &Service, t: &DeTable<'_>, path: &str, fallback: Span) {
        let Some(b) = service.start_breaker else {
            return;
        };
        let attempts = service.retry.attempts;
        if b.failures < attempts {
            return;
        }
        let span = t.get("start_breaker").map_or(fallback, |x| x.span());
        self.diags.push(
            Diagnostic::warning(
                "out-of-range",
                format!(
                    "the start breaker never opens: it needs {} failed attempts, retry allows {attempts}",
                    b.failures
                ),
            )
            .key(join(path, "start_breaker"))
            .at(span)
            .hint(format!(
                "raise retry.attempts above {} (e.g. retry = {{ attempts = {} }}) or lower start_breaker.failures",
                b.failures,
                b.failures.saturating_add(2)
            )),
        );
    }

    fn probe(&mut self, v: &Value<'_>, path: &str) -> Option<Probe> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::PROBE, path);
        let name = self.probe_kind_key(t, v, path)?;
        let kp = join(path, name);
        let kv = &t[name];
        let tls = self.tls_options(t, name, path);
        let kind = match name {
            "exec" => ProbeKind::Exec(self.command(kv, &kp)?.value),
            "http" => self.http_probe(t, kv, path, tls)?,
            "tcp" => self.tcp_probe(kv, &kp)?,
            "log" => self.log_probe(kv, &kp)?,
            "notify" => self.notify_probe(kv, &kp)?,
            store_kind => {
                let url = self.string(kv, &kp)?.value;
                let s = StoreProbe {
                    tls,
                    ..self.store_probe(t, path, url)
                };
                match store_kind {
                    "postgres" => ProbeKind::Postgres(s),
                    "mysql" => ProbeKind::Mysql(s),
                    "redis" => ProbeKind::Redis(s),
                    "amqp" => ProbeKind::Amqp(s),
                    "nats" => ProbeKind::Nats(s),
                    _ => ProbeKind::Sqlite(s),
                }
            }
        };
        Some(self.probe_schedule(t, v, path, kind))
    }

    /// The one kind key of a probe table (`tcp`, `http`, …); none or several is an error.
    fn probe_kind_key(
        &mut self,
        t: &DeTable<'_>,
        v: &Value<'_>,
        path: &str,
    ) -> Option<&'static str> {
        let present: Vec<&'static str> = keys::PROBE_KINDS
            .iter()
            .copied()
            .filter(|k| t.contains_key(*k))
            .collect();
        let kinds = keys::PROBE_KINDS
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if present.is_empty() {
            self.error(
                "probe-kind",
                path,
                v.span(),
                "the probe says nothing to check",
                format!("add exactly one of {kinds}, e.g. {{ tcp = \"127.0.0.1:5432\" }}"),
            );
            return None;
        }
        if present.len() > 1 {
            self.error(
                "probe-kind",
                path,
                v.span(),
                format!("a probe checks one thing, found {}", present.join(" and ")),
                "split it into separate probes (readiness, liveness, startup) or keep one kind",
            );
            return None;
        }
        Some(present[0])
    }

    /// The options of a store probe (`rw`, `queues`, `require_dlq`, `streams`).
    fn store_probe(&mut self, t: &DeTable<'_>, path: &str, url: String) -> StoreProbe {
        let mut s = StoreProbe {
            url,
            ..StoreProbe::default()
        };
        if let Some(x) = t.get("rw") {
            s.rw = self.boolean(x, &join(path, "rw")).unwrap_or(false);
        }
        if let Some(x) = t.get("queues") {
            s.queues = self
                .str_list(x, &join(path, "queues"))
                .into_iter()
                .map(|q| q.value)
                .collect();
        }
        if let Some(x) = t.get("require_dlq") {
            s.require_dlq = self.boolean(x, &join(path, "require_dlq")).unwrap_or(false);
        }
        if let Some(x) = t.get("streams") {
            s.streams = self
                .str_list(x, &join(path, "streams"))
                .into_iter()
                .map(|q| q.value)
                .collect();
        }
        s
    }

    /// The TLS keys of a probe table: a client certificate needs both files, an empty path
    /// is an error; on a kind that never uses TLS they are a warning, and so is
    /// `insecure_skip_verify = true` (any server passes).
    fn tls_options(&mut self, t: &DeTable<'_>, kind: &str, path: &str) -> TlsOptions {
        let mut tls = TlsOptions::default();
        let file = |d: &mut Self, key: &str| -> Option<String> {
            let x = t.get(key)?;
            let v = d.string(x, &join(path, key))?;
            if v.value.trim().is_empty() {
                d.error(
                    "invalid-value",
                    &join(path, key),
                    x.span(),
                    format!("`{key}` is empty"),
                    "write the path of a PEM file (relative to this file), or remove the key",
                );
                return None;
            }
            Some(v.value)
        };
        tls.ca_file = file(self, "ca_file");
        tls.cert_file = file(self, "cert_file");
        tls.key_file = file(self, "key_file");
        if let Some(x) = t.get("insecure_skip_verify") {
            tls.insecure_skip_verify = self
                .boolean(x, &join(path, "insecure_skip_verify"))
                .unwrap_or(false);
        }
        for (have, missing) in [("cert_file", "key_file"), ("key_file", "cert_file")] {
            if let Some(x) = t.get(have)
                && !t.contains_key(missing)
            {
                self.error(
                    "missing-key",
                    &join(path, have),
                    x.span(),
                    format!("`{have}` without `{missing}`: a client certificate needs both"),
                    format!("add {missing} = \"...\" (PEM), or remove {have}"),
                );
            }
        }
        let uses_tls = matches!(
            kind,
            "http" | "postgres" | "mysql" | "redis" | "amqp" | "nats"
        );
        for key in keys::TLS_KEYS {
            let Some((k, _)) = t.get_key_value(*key) else {
                continue;
            };
            if !uses_tls {
                self.diags.push(
                    Diagnostic::warning(
                        "unused-key",
                        format!("`{key}` has no effect on a {kind} probe (ignored)"),
                    )
                    .key(join(path, key))
                    .at(k.span())
                    .hint("TLS keys apply to http (https://) and the postgres, mysql, redis, amqp and nats probes; remove it"),
                );
            }
        }
        if uses_tls
            && tls.insecure_skip_verify
            && let Some((k, _)) = t.get_key_value("insecure_skip_verify")
        {
            self.diags.push(
                Diagnostic::warning(
                    "insecure",
                    "insecure_skip_verify = true: the server's certificate is not checked, so any server (or a man in the middle) passes this probe",
                )
                .key(join(path, "insecure_skip_verify"))
                .at(k.span())
                .hint("set ca_file to the PEM of the CA that signed the server's certificate, and remove insecure_skip_verify"),
            );
        }
        tls
    }

    fn http_probe(
        &mut self,
        t: &DeTable<'_>,
        kv: &Value<'_>,
        path: &str,
        tls: TlsOptions,
    ) -> Option<ProbeKind> {
        let kp = join(path, "http");
        let url = self.string(kv, &kp)?;
        if !(url.value.starts_with("http://") || url.value.starts_with("https://")) {
            self.error(
                "invalid-value",
                &kp,
                kv.span(),
                format!("`{}` is not an http(s) URL", url.value),
                "write a full URL such as \"http://127.0.0.1:8000/health\"",
            );
            return None;
        }
        if let Some(problem) = url_authority_problem(&ingress::with_sample_instance(&url.value)) {
            self.error(
                "invalid-value",
                &kp,
                kv.span(),
                format!("`{}`: {problem}", url.value),
                "write a full URL such as \"http://127.0.0.1:8000/health\" (ports 1-65535)",
            );
            return None;
        }
        let expect_status = t
            .get("expect_status")
            .and_then(|x| self.int(x, &join(path, "expect_status"), 100, 599))
            .map(|n| n as u16);
        let expect_body = t
            .get("expect_body")
            .and_then(|x| self.string(x, &join(path, "expect_body")))
            .map(|s| s.value);
        if tls.is_set() && !url.value.starts_with("https://") {
            self.diags.push(
                Diagnostic::warning(
                    "unused-key",
                    format!("TLS keys have no effect: `{}` is not an https:// URL", url.value),
                )
                .key(kp.clone())
                .at(kv.span())
                .hint("use an https:// URL, or remove ca_file, cert_file, key_file and insecure_skip_verify"),
            );
        }
        Some(ProbeKind::Http {
            url: url.value,
            expect_status,
            expect_body,
            tls,
        })
    }

    fn tcp_probe(&mut self, kv: &Value<'_>, kp: &str) -> Option<ProbeKind> {
        let addr = self.string(kv, kp)?;
        let ok = ingress::with_sample_instance(&addr.value)
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            self.error(
                "invalid-value",
                kp,
                kv.span(),
                format!("`{}` is not host:port", addr.value),
                "write the address as \"host:port\", e.g. \"127.0.0.1:6379\"",
            );
            return None;
        }
        Some(ProbeKind::Tcp(addr.value))
    }

    fn log_probe(&mut self, kv: &Value<'_>, kp: &str) -> Option<ProbeKind> {
        let re = self.string(kv, kp)?;
        match LogPattern::new(&re.value) {
            Ok(pattern) => Some(ProbeKind::Log(pattern)),
            Err(e) => {
                let first = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                self.error("invalid-value", kp, kv.span(), format!("invalid regular expression: {first}"), "fix the pattern (Rust regex syntax); escape literal characters such as . or ( with \\\\");
                None
            }
        }
    }

    fn notify_probe(&mut self, kv: &Value<'_>, kp: &str) -> Option<ProbeKind> {
        if self.boolean(kv, kp) != Some(true) {
            if matches!(kv.get_ref(), DeValue::Boolean(false)) {
                self.error(
                    "invalid-value",
                    kp,
                    kv.span(),
                    "notify = false checks nothing",
                    "write notify = true, or remove the probe",
                );
            }
            return None;
        }
        Some(ProbeKind::Notify)
    }

    /// The probe's timing and thresholds, with their range checks.
    fn probe_schedule(
        &mut self,
        t: &DeTable<'_>,
        v: &Value<'_>,
        path: &str,
        kind: ProbeKind,
    ) -> Probe {
        let dur = |d: &mut Self, key: &str, default: Duration| {
            t.get(key)
                .and_then(|x| d.duration(x, &join(path, key)))
                .unwrap_or(Dur(default))
        };
        let initial_delay = dur(self, "initial_delay", Duration::ZERO);
        let period = dur(self, "period", Duration::from_secs(1));
        let timeout = dur(self, "timeout", Duration::from_secs(1));
        let success_threshold = t
            .get("success_threshold")
            .and_then(|x| self.int(x, &join(path, "success_threshold"), 1, 1000))
            .unwrap_or(1) as u32;
        let failure_threshold = t
            .get("failure_threshold")
            .and_then(|x| self.int(x, &join(path, "failure_threshold"), 1, 1000))
            .unwrap_or(3) as u32;
        for (key, d) in [("period", period), ("timeout", timeout)] {
            if d.0.is_zero()
                && let Some(x) = t.get(key)
            {
                self.error(
                    "out-of-range",
                    &join(path, key),
                    x.span(),
                    format!("{key} must be greater than zero"),
                    "use at least 1ms",
                );
            }
        }
        let watchdog = self.watchdog(t, v, path, &kind);
        if let Some(x) = t.get("timeout")
            && timeout > period
            && t.contains_key("period")
        {
            self.diags.push(
                    Diagnostic::warning("out-of-range", "timeout is longer than period; probes never overlap, so checks will be timeout apart")
                        .key(join(path, "timeout"))
                        .at(x.span())
                        .hint("make timeout at most period"),
                );
        }
        Probe {
            kind,
            span: v.span(),
            initial_delay,
            period,
            timeout,
            success_threshold,
            failure_threshold,
            watchdog,
        }
    }

    /// `watchdog` of a `notify` liveness probe (greater than zero); on any other probe it is
    /// ignored with a warning. A notify liveness probe without one is a warning too: it can
    /// never fail.
    fn watchdog(
        &mut self,
        t: &DeTable<'_>,
        v: &Value<'_>,
        path: &str,
        kind: &ProbeKind,
    ) -> Option<Dur> {
        let liveness_notify = path.ends_with(".liveness") && *kind == ProbeKind::Notify;
        let Some(x) = t.get("watchdog") else {
            if liveness_notify {
                self.diags.push(
                    Diagnostic::warning(
                        "no-watchdog",
                        "a notify liveness probe without `watchdog` can never fail: any READY=1 or WATCHDOG=1 passes it and silence goes unnoticed",
                    )
                    .key(path.to_string())
                    .at(v.span())
                    .hint("add watchdog = \"10s\" (the service reads it from $WATCHDOG_USEC and sends WATCHDOG=1 at least that often), or use another liveness probe"),
                );
            }
            return None;
        };
        let key = join(path, "watchdog");
        let d = self.duration(x, &key)?;
        if !liveness_notify {
            self.diags.push(
                Diagnostic::warning(
                    "ignored-key",
                    "`watchdog` applies to a notify liveness probe only; ignored here",
                )
                .key(key)
                .at(x.span())
                .hint("write it in liveness = { notify = true, watchdog = \"10s\" }"),
            );
            return None;
        }
        if d.0.is_zero() {
            self.error(
                "out-of-range",
                &key,
                x.span(),
                "watchdog must be greater than zero",
                "use the longest silence the service may keep, e.g. \"10s\"",
            );
            return None;
        }
        Some(d)
    }

    fn depends_on(&mut self, v: &Value<'_>, path: &str) -> Vec<Dependency> {
        let mut out = Vec::new();
        match v.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(name) = self.string(item, &format!("{path}[{i}]")) {
                        out.push(Dependency {
                            name,
                            condition: Condition::Ready,
                            required: true,
                        });
                    }
                }
            }
            DeValue::Table(t) => {
                for (key, value) in t.iter() {
                    let p = join(path, key.get_ref());
                    let name = Sp::new(key.get_ref().to_string(), key.span());
                    let (cond_value, required) = match value.get_ref() {
                        DeValue::String(_) => (Some(value), true),
                        DeValue::Table(long) => {
                            for (k, _) in long.iter() {
                                if !matches!(k.get_ref().as_ref(), "condition" | "required") {
                                    self.diags.push(
                                        Diagnostic::warning(
                                            "unknown-key",
                                            format!("unknown key `{}` (ignored)", k.get_ref()),
                                        )
                                        .key(join(&p, k.get_ref()))
                                        .at(k.span())
                                        .hint("a dependency takes `condition` and `required`"),
                                    );
                                }
                            }
                            let required = long
                                .get("required")
                                .and_then(|r| self.boolean(r, &join(&p, "required")))
                                .unwrap_or(true);
                            (long.get("condition"), required)
                        }
                        _ => {
                            self.wrong_type(&p, value, "a condition (\"ready\") or { condition = \"ready\", required = false }");
                            continue;
                        }
                    };
                    let condition = match cond_value {
                        Some(c) => match self.enumeration(c, &p, keys::CONDITIONS) {
                            Some("started") => Condition::Started,
                            Some("completed") => Condition::Completed,
                            Some(_) => Condition::Ready,
                            None => continue,
                        },
                        None => Condition::Ready,
                    };
                    out.push(Dependency {
                        name,
                        condition,
                        required,
                    });
                }
            }
            _ => self.wrong_type(path, v, "a list of service names or a table of conditions"),
        }
        out
    }

    /// The keys of a `kind = "migrate"` service; `database` is required.
    fn migrate(&mut self, t: &DeTable<'_>, path: &str, span: Span) -> Option<MigrateSpec> {
        let database_template = match t.get("database").map(|x| x.get_ref()) {
            Some(DeValue::String(s)) => s.to_string(),
            _ => String::new(),
        };
        let Some(database) = t
            .get("database")
            .and_then(|x| self.string(x, &join(path, "database")))
        else {
            if !t.contains_key("database") {
                self.error(
                    "missing-database",
                    path,
                    span,
                    "a migrate service needs a database",
                    "add database = \"postgres://127.0.0.1:5432/app\" (or mysql://, sqlite://path)",
                );
            }
            return None;
        };
        let scheme_ok = [
            "postgres://",
            "postgresql://",
            "mysql://",
            "mariadb://",
            "sqlite://",
        ]
        .iter()
        .any(|p| database.value.starts_with(p));
        if !scheme_ok && !database.value.is_empty() {
            self.error(
                "invalid-value",
                &join(path, "database"),
                database.span.clone(),
                "unsupported database URL",
                "use postgres://…, mysql://… or sqlite://path",
            );
        }
        let dir = t
            .get("dir")
            .and_then(|x| self.string(x, &join(path, "dir")))
            .map_or_else(|| "migrations".to_string(), |s| s.value);
        let create_database = t
            .get("create_database")
            .and_then(|x| self.boolean(x, &join(path, "create_database")))
            .unwrap_or(false);
        let on_drift = match t
            .get("on_drift")
            .and_then(|x| self.enumeration(x, &join(path, "on_drift"), &["fail", "warn"]))
        {
            Some("warn") => OnDrift::Warn,
            _ => OnDrift::Fail,
        };
        let lock_timeout = t
            .get("lock_timeout")
            .and_then(|x| self.duration(x, &join(path, "lock_timeout")))
            .unwrap_or(Dur(Duration::from_secs(60)));
        Some(MigrateSpec {
            database,
            database_template,
            dir,
            create_database,
            on_drift,
            lock_timeout,
        })
    }

    fn service(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        v: &Value<'_>,
        defaults: &ServiceDefaults,
    ) -> Option<Service> {
        let path = join("services", key.get_ref());
        let named_ok = self.check_name(key, &path, "service");
        let t = self.table(v, &path)?;
        self.unknown_keys(t, keys::SERVICE, &path);
        self.instance_vars = t.contains_key("replicas");
        self.port_used = None;
        let p = |k: &str| join(&path, k);
        let kind = match t
            .get("kind")
            .and_then(|x| self.enumeration(x, &p("kind"), keys::KINDS))
        {
            Some("task") => Kind::Task,
            Some("external") => Kind::External,
            Some("migrate") => Kind::Migrate,
            _ => Kind::Process,
        };
        let command = t
            .get("command")
            .and_then(|x| self.command(x, &p("command")));
        match (&command, kind) {
            (None, Kind::Process | Kind::Task) if !t.contains_key("command") => {
                self.error("missing-command", &path, key.span(), format!("service `{}` has no command", key.get_ref()), "add command = \"...\", or kind = \"external\" for a service gantry only probes");
            }
            (Some(c), Kind::External | Kind::Migrate) => {
                self.diags.push(
                    Diagnostic::warning(
                        "ignored-key",
                        if kind == Kind::External {
                            "external services are not started; their command is ignored"
                        } else {
                            "migrate services run gantry's migrator; their command is ignored"
                        },
                    )
                    .key(p("command"))
                    .at(c.span.clone())
                    .hint("remove the command, or drop kind = \"external\""),
                );
            }
            _ => {}
        }
        let own = self.inheritable(t, &path, defaults.logs.unwrap_or(self.logs));
        let mut env = defaults.env.clone();
        for var in own.env {
            env.retain(|e| e.name.value != var.name.value);
            env.push(var);
        }
        let readiness = t
            .get("readiness")
            .and_then(|x| self.probe(x, &p("readiness")));
        let liveness = t
            .get("liveness")
            .and_then(|x| self.probe(x, &p("liveness")));
        let startup = t.get("startup").and_then(|x| self.probe(x, &p("startup")));
        let stop_signal_span = t.get("stop_signal").map_or(key.span(), |x| x.span());
        let ports = match t.get("ports") {
            Some(x) => match x.get_ref() {
                DeValue::Array(items) => items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| {
                        self.int(item, &format!("{}[{i}]", p("ports")), 1, 65535)
                    })
                    .map(|n| n as u16)
                    .collect(),
                _ => {
                    self.wrong_type(&p("ports"), x, "an array of port numbers");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let rollout = t
            .get("rollout")
            .and_then(|x| self.rollout(x, &p("rollout")));
        let service = Service {
            name: Sp::new(key.get_ref().to_string(), key.span()),
            rollout: rollout.map(Box::new),
            kind,
            command,
            working_dir: own.working_dir.or_else(|| defaults.working_dir.clone()),
            env,
            env_file: t
                .get("env_file")
                .map(|x| self.str_or_list(x, &p("env_file")))
                .unwrap_or_default(),
            depends_on: t
                .get("depends_on")
                .map(|x| self.depends_on(x, &p("depends_on")))
                .unwrap_or_default(),
            priority: own.priority.or(defaults.priority).unwrap_or_default(),
            readiness: readiness.map(Box::new),
            liveness: liveness.map(Box::new),
            startup: startup.map(Box::new),
            restart: own.restart.or(defaults.restart).unwrap_or_default(),
            retry: own.retry.or(defaults.retry).unwrap_or_default(),
            start_limit: own.start_limit.or(defaults.start_limit).unwrap_or_default(),
            start_breaker: own.start_breaker.or(defaults.start_breaker),
            start_timeout: own.start_timeout.or(defaults.start_timeout),
            stop_signal: Sp::new(
                own.stop_signal
                    .or_else(|| defaults.stop_signal.clone())
                    .unwrap_or_else(|| "SIGTERM".into()),
                stop_signal_span,
            ),
            stop_timeout: own
                .stop_timeout
                .or(defaults.stop_timeout)
                .unwrap_or(Dur(Duration::from_secs(10))),
            healthy_after: own
                .healthy_after
                .or(defaults.healthy_after)
                .unwrap_or(Dur(keys::HEALTHY_AFTER)),
            start_grace: own
                .start_grace
                .or(defaults.start_grace)
                .unwrap_or(Dur(keys::START_GRACE)),
            cleanup: t
                .get("cleanup")
                .and_then(|x| self.command(x, &p("cleanup")))
                .map(|c| c.value),
            layer: t.get("layer").and_then(|x| self.string(x, &p("layer"))),
            preflight: t
                .get("preflight")
                .and_then(|x| self.command(x, &p("preflight")))
                .map(|c| c.value),
            ports,
            data_dir: self.data_dir(t, &path, kind),
            data_size: self.data_size(t, &path),
            expected_start: t
                .get("expected_start")
                .and_then(|x| self.duration(x, &p("expected_start"))),
            remediate: t
                .get("remediate")
                .and_then(|x| self.command(x, &p("remediate")))
                .map(|c| c.value),
            migrate: if kind == Kind::Migrate {
                self.migrate(t, &path, key.span()).map(Box::new)
            } else {
                None
            },
            logs: own.logs.or(defaults.logs).unwrap_or(self.logs),
            limits: own.limits.or(defaults.limits),
            flags_restart: t
                .get("flags_restart")
                .map(|x| self.str_list(x, &p("flags_restart")))
                .unwrap_or_default(),
            upstream: t
                .get("upstream")
                .and_then(|x| self.upstream(x, &p("upstream"))),
            replicas: self.replicas(t, &path, kind).map(Box::new),
            instance: None,
        };
        self.instance_vars = false;
        if kind == Kind::External
            && let Some((name, x)) = ["memory_max", "cpu_max"]
                .iter()
                .find_map(|k| t.get(*k).map(|x| (*k, x)))
        {
            self.diags.push(
                Diagnostic::warning(
                    "ignored-key",
                    "external services are not started by gantry; their limits are ignored",
                )
                .key(p(name))
                .at(x.span())
                .hint("limit the external service where it runs, or remove the key"),
            );
        }
        self.check_breaker(&service, t, &path, key.span());
        named_ok.then_some(service)
    }
}

impl Decoder<'_> {
    /// `data_dir`: a non-empty path without `..`, for a process only.
    fn data_dir(&mut self, t: &DeTable<'_>, path: &str, kind: Kind) -> Option<Sp<String>> {
        let key = join(path, "data_dir");
        let v = t.get("data_dir")?;
        let dir = self.string(v, &key)?;
        let problem = if dir.value.trim().is_empty() {
            Some("the path is empty")
        } else if dir.value.contains('\0') {
            Some("the path holds a NUL byte")
        } else if dir.value.split('/').any(|part| part == "..") {
            Some("the path climbs out with `..`")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error(
                "invalid-value",
                &key,
                v.span(),
                format!("data_dir: {problem}"),
                "write the data directory's path, e.g. data_dir = \"/var/lib/postgresql/data\" or \"data/pg\"",
            );
            return None;
        }
        if kind != Kind::Process {
            let what = match kind {
                Kind::External => "an external service is not started by gantry",
                _ => "a one-shot keeps no data of its own",
            };
            self.error(
                "invalid-value",
                &key,
                v.span(),
                format!("data_dir applies to kind = \"process\" only: {what}"),
                "remove data_dir, or put it on the service that keeps the data",
            );
            return None;
        }
        Some(dir)
    }

    /// `data_size`: a size of at least `DATA_SIZE_MIN`; without `data_dir` it is ignored.
    fn data_size(&mut self, t: &DeTable<'_>, path: &str) -> Option<u64> {
        let key = join(path, "data_size");
        let v = t.get("data_size")?;
        let size = self.size(v, &key, keys::DATA_SIZE_MIN)?;
        if !t.contains_key("data_dir") {
            self.diags.push(
                Diagnostic::warning("ignored-key", "data_size without data_dir is ignored")
                    .key(key)
                    .at(v.span())
                    .hint("add data_dir = \"PATH\" (where the service keeps its data), or remove data_size"),
            );
            return None;
        }
        Some(size)
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

/// What is wrong with an http(s) URL's host and port, if anything: no host, or a port that
/// is not a number from 1 to 65535 (`http://127.0.0.1:99999/` would fail every probe run).
fn url_authority_problem(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => return Some("an IPv6 host needs its closing `]`".into()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Some("the URL has no host".into());
    }
    match port {
        Some(p) if !matches!(p.parse::<u32>(), Ok(1..=65535)) => {
            Some(format!("port `{p}` is not a number from 1 to 65535"))
        }
        _ => None,
    }
}

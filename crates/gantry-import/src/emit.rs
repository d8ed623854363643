//! The gantry.toml an import produces: a small model of the keys an import can set, and its
//! rendering as TOML text (strings always quoted and escaped, tables in a stable order).

use std::fmt::Write as _;

/// A command: a string gantry splits like a shell, or an argument list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Line(String),
    Args(Vec<String>),
}

/// A probe table: one kind key (`exec`, `http`, `log`) and its tuning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probe {
    pub exec: Option<Cmd>,
    pub http: Option<String>,
    pub log: Option<String>,
    pub initial_delay: Option<String>,
    pub period: Option<String>,
    pub timeout: Option<String>,
    pub success_threshold: Option<u64>,
    pub failure_threshold: Option<u64>,
}

/// One entry of `depends_on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// The dependency's gantry name.
    pub name: String,
    /// `started`, `ready` or `completed`.
    pub condition: &'static str,
    pub required: bool,
    /// Line of the dependency in the source, for notes.
    pub line: usize,
}

/// One `[services.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    pub name: String,
    /// The name in the source file (differs when renamed).
    pub source_name: String,
    pub line: usize,
    pub kind: Option<&'static str>,
    pub command: Option<Cmd>,
    pub working_dir: Option<String>,
    pub env_file: Vec<String>,
    pub env: Vec<(String, String)>,
    pub depends_on: Vec<Dep>,
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
    pub startup: Option<Probe>,
    pub restart: Option<&'static str>,
    /// Run after the service stopped.
    pub cleanup: Option<Cmd>,
    pub start_limit_burst: Option<u64>,
    pub start_timeout: Option<String>,
    pub stop_signal: Option<&'static str>,
    pub stop_timeout: Option<String>,
    pub ports: Vec<u16>,
    pub replicas: Option<u64>,
    /// A gantry size (`512MiB`).
    pub memory_max: Option<String>,
    /// A number of CPUs, written as a TOML number.
    pub cpu_max: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GantryFile {
    pub env_file: Vec<String>,
    pub env: Vec<(String, String)>,
    pub services: Vec<Service>,
    /// `[profiles.NAME] services = [...]`.
    pub profiles: Vec<(String, Vec<String>)>,
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key: bare when TOML allows it, quoted otherwise.
pub fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        quote(s)
    }
}

fn list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", parts.join(", "))
}

fn cmd(c: &Cmd) -> String {
    match c {
        Cmd::Line(s) => quote(s),
        Cmd::Args(a) => list(a),
    }
}

fn probe(p: &Probe) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &p.exec {
        parts.push(format!("exec = {}", cmd(c)));
    }
    if let Some(u) = &p.http {
        parts.push(format!("http = {}", quote(u)));
    }
    if let Some(l) = &p.log {
        parts.push(format!("log = {}", quote(l)));
    }
    for (k, v) in [
        ("initial_delay", &p.initial_delay),
        ("period", &p.period),
        ("timeout", &p.timeout),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k} = {}", quote(v)));
        }
    }
    if let Some(n) = p.success_threshold {
        parts.push(format!("success_threshold = {n}"));
    }
    if let Some(n) = p.failure_threshold {
        parts.push(format!("failure_threshold = {n}"));
    }
    format!("{{ {} }}", parts.join(", "))
}

fn env_table(out: &mut String, env: &[(String, String)]) {
    for (k, v) in env {
        let _ = writeln!(out, "{} = {}", key(k), quote(v));
    }
}

impl GantryFile {
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.env_file.is_empty() {
            let _ = writeln!(out, "env_file = {}\n", list(&self.env_file));
        }
        if !self.env.is_empty() {
            out.push_str("[env]\n");
            env_table(&mut out, &self.env);
            out.push('\n');
        }
        for s in &self.services {
            s.render(&mut out);
            out.push('\n');
        }
        for (name, services) in &self.profiles {
            let _ = writeln!(
                out,
                "[profiles.{}]\nservices = {}\n",
                key(name),
                list(services)
            );
        }
        while out.ends_with("\n\n") {
            out.pop();
        }
        out
    }
}

impl Service {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "[services.{}]", key(&self.name));
        if let Some(k) = self.kind {
            let _ = writeln!(out, "kind = {}", quote(k));
        }
        if let Some(c) = &self.command {
            let _ = writeln!(out, "command = {}", cmd(c));
        }
        if let Some(w) = &self.working_dir {
            let _ = writeln!(out, "working_dir = {}", quote(w));
        }
        if !self.env_file.is_empty() {
            let _ = writeln!(out, "env_file = {}", list(&self.env_file));
        }
        if !self.depends_on.is_empty() {
            let all_ready = self
                .depends_on
                .iter()
                .all(|d| d.condition == "ready" && d.required);
            if all_ready {
                let names: Vec<String> = self.depends_on.iter().map(|d| d.name.clone()).collect();
                let _ = writeln!(out, "depends_on = {}", list(&names));
            } else {
                let parts: Vec<String> = self
                    .depends_on
                    .iter()
                    .map(|d| {
                        if d.required {
                            format!("{} = {}", key(&d.name), quote(d.condition))
                        } else {
                            format!(
                                "{} = {{ condition = {}, required = false }}",
                                key(&d.name),
                                quote(d.condition)
                            )
                        }
                    })
                    .collect();
                let _ = writeln!(out, "depends_on = {{ {} }}", parts.join(", "));
            }
        }
        for (k, p) in [
            ("startup", &self.startup),
            ("readiness", &self.readiness),
            ("liveness", &self.liveness),
        ] {
            if let Some(p) = p {
                let _ = writeln!(out, "{k} = {}", probe(p));
            }
        }
        if let Some(r) = self.restart {
            let _ = writeln!(out, "restart = {}", quote(r));
        }
        if let Some(c) = &self.cleanup {
            let _ = writeln!(out, "cleanup = {}", cmd(c));
        }
        if let Some(b) = self.start_limit_burst {
            // One window long enough to stand for "at most N restarts".
            let _ = writeln!(out, "start_limit = {{ burst = {b}, interval = \"1h\" }}");
        }
        if let Some(t) = &self.start_timeout {
            let _ = writeln!(out, "start_timeout = {}", quote(t));
        }
        if let Some(s) = self.stop_signal {
            let _ = writeln!(out, "stop_signal = {}", quote(s));
        }
        if let Some(t) = &self.stop_timeout {
            let _ = writeln!(out, "stop_timeout = {}", quote(t));
        }
        if !self.ports.is_empty() {
            let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
            let _ = writeln!(out, "ports = [{}]", ports.join(", "));
        }
        if let Some(r) = self.replicas {
            let _ = writeln!(out, "replicas = {r}");
        }
        if let Some(m) = &self.memory_max {
            let _ = writeln!(out, "memory_max = {}", quote(m));
        }
        if let Some(c) = &self.cpu_max {
            let _ = writeln!(out, "cpu_max = {c}");
        }
        if !self.env.is_empty() {
            let _ = writeln!(out, "\n[services.{}.env]", key(&self.name));
            env_table(out, &self.env);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(key("API_KEY"), "API_KEY");
        assert_eq!(key("a.b"), "\"a.b\"");
    }
}

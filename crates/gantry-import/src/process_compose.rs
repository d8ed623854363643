//! process-compose files: `processes.NAME` with command, depends_on conditions, readiness and
//! liveness probes (exec, http_get), availability (restart, max_restarts), environment,
//! working_dir, ready_log_line, replicas, shutdown and disabled. The rest is a note.

use crate::common::{
    self, assign_names, environment, interpolate_with, needs_shell, note, regex_escape, seconds,
};
use crate::emit::{Cmd, Dep, GantryFile, Probe, Service};
use crate::yaml::{self, Node, Value};
use crate::{ImportError, Imported, Note, Options};
use std::collections::HashMap;

const HANDLED: &[&str] = &[
    "command",
    "working_dir",
    "environment",
    "depends_on",
    "readiness_probe",
    "liveness_probe",
    "availability",
    "shutdown",
    "disabled",
    "ready_log_line",
    "replicas",
    "description",
    "vars",
];

/// Translates a process-compose file. `Err` only when it is not YAML or has no `processes`.
pub fn import(text: &str, opts: &Options) -> Result<Imported, ImportError> {
    let root = yaml::parse(text)?;
    let Some(top) = root.as_map() else {
        return Err(ImportError {
            line: root.line,
            col: root.col,
            message: format!("a process-compose file is a mapping with `processes`, this is {}", root.kind()),
            hint: "is this a process-compose file? `gantry import compose` and `gantry import procfile` read the other formats".into(),
        });
    };
    let mut notes = Vec::new();
    let mut file = GantryFile::default();
    let mut processes = None;
    let mut global_vars = Vec::new();
    for (k, v) in top {
        match k.as_str().unwrap_or("") {
            "processes" => processes = Some(v),
            "version" => {}
            "environment" => file.env = environment(v, "environment", None, &mut notes),
            "vars" => global_vars = vars(v, None, &mut notes),
            // Extension fields hold anchors; what they carry arrives through the aliases.
            key if key.starts_with("x-") => {}
            other => notes.push(note(
                k.line,
                None,
                format!("top-level `{other}` not carried over"),
            )),
        }
    }
    let Some(processes) = processes else {
        return Err(ImportError {
            line: root.line,
            col: root.col,
            message: "no `processes` in the file".into(),
            hint: "a process-compose file lists its processes under `processes:`".into(),
        });
    };
    let Some(entries) = processes.as_map() else {
        if processes.is_null() {
            return Ok(Imported { file, notes });
        }
        return Err(ImportError {
            line: processes.line,
            col: processes.col,
            message: format!(
                "`processes` is {}, expected a mapping of process names",
                processes.kind()
            ),
            hint: "write `processes:` followed by indented `NAME:` entries".into(),
        });
    };
    let source_names: Vec<(String, usize)> = entries
        .iter()
        .filter_map(|(k, _)| k.as_str().map(|n| (n.to_string(), k.line)))
        .collect();
    let names = assign_names(&source_names, &mut notes);
    let mut enabled = Vec::new();
    let mut any_disabled = false;
    let mut log_ready_deps: Vec<(String, usize, String)> = Vec::new();
    for (k, v) in entries {
        let Some(src) = k.as_str() else { continue };
        let Some(name) = names.get(src).cloned() else {
            continue;
        };
        let mut c = Ctx {
            src,
            notes: &mut notes,
            opts,
        };
        // `{{.NAME}}` templates from `vars` (the process's own over the file's).
        let mut own = global_vars.clone();
        if let Some(pv) = v.get("vars") {
            for (k, val) in vars(pv, Some(src), c.notes) {
                own.retain(|(ok, _)| *ok != k);
                own.push((k, val));
            }
        }
        let rendered = render(v, &own, src, c.notes);
        let v = &rendered;
        let Some(s) = c.process(&name, k.line, v, &names, &mut log_ready_deps) else {
            continue;
        };
        if v.get("disabled").and_then(Node::as_bool) == Some(true) {
            any_disabled = true;
            c.note(k.line, "disabled: process-compose does not start it; here it is left out of `[profiles.default]` (`gantry up --profile default` starts the others)");
        } else {
            enabled.push(name);
        }
        file.services.push(s);
    }
    // `process_log_ready` on a dependency without ready_log_line.
    for (dep, line, from) in log_ready_deps {
        let has_log = file.services.iter().any(|s| {
            s.name == dep
                && (s.readiness.as_ref().is_some_and(|p| p.log.is_some())
                    || s.startup.as_ref().is_some_and(|p| p.log.is_some()))
        });
        if !has_log && file.services.iter().any(|s| s.name == dep) {
            notes.push(note(line, Some(&from), format!("depends on `{dep}` with process_log_ready, but `{dep}` has no ready_log_line: waiting for it to be ready")));
        }
    }
    if any_disabled {
        file.profiles.push(("default".into(), enabled));
    }
    common::finish(&mut file, &mut notes);
    crate::sort_notes(&mut notes);
    Ok(Imported { file, notes })
}

/// A `vars` mapping: each name and its value as text.
fn vars(node: &Node, svc: Option<&str>, notes: &mut Vec<Note>) -> Vec<(String, String)> {
    let Some(entries) = node.as_map() else {
        if !node.is_null() {
            notes.push(note(
                node.line,
                svc,
                format!("vars is {}, expected a mapping; left out", node.kind()),
            ));
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        match (k.as_str(), v.as_str()) {
            (Some(name), Some(value)) => out.push((name.to_string(), value.to_string())),
            (name, _) => notes.push(note(
                v.line,
                svc,
                format!(
                    "vars.{}: {} is not a value to put in a template; left out",
                    name.unwrap_or("?"),
                    v.kind()
                ),
            )),
        }
    }
    out
}

/// A process with its `{{.NAME}}` templates (Go template syntax, as process-compose renders
/// them) filled in from `vars`; a template naming no var is kept as written and reported.
fn render(node: &Node, vars: &[(String, String)], svc: &str, notes: &mut Vec<Note>) -> Node {
    let value = match &node.value {
        Value::Scalar { text, quoted } if text.contains("{{") => Value::Scalar {
            text: render_text(text, vars, node.line, svc, notes),
            quoted: *quoted,
        },
        Value::Scalar { .. } => node.value.clone(),
        Value::Seq(items) => {
            Value::Seq(items.iter().map(|i| render(i, vars, svc, notes)).collect())
        }
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    let v = if k.as_str() == Some("vars") {
                        v.clone()
                    } else {
                        render(v, vars, svc, notes)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
    };
    Node {
        value,
        ..node.clone()
    }
}

fn render_text(
    text: &str,
    vars: &[(String, String)],
    line: usize,
    svc: &str,
    notes: &mut Vec<Note>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = after[..end].trim();
        let value = inner
            .strip_prefix('.')
            .and_then(|name| vars.iter().find(|(k, _)| k == name))
            .map(|(_, v)| v.as_str());
        match value {
            Some(v) => out.push_str(v),
            None => {
                notes.push(note(
                    line,
                    Some(svc),
                    format!("template `{{{{{inner}}}}}` names no entry of `vars`; kept as written"),
                ));
                out.push_str(&rest[start..start + 2 + end + 2]);
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

struct Ctx<'a> {
    src: &'a str,
    notes: &'a mut Vec<Note>,
    opts: &'a Options,
}

impl Ctx<'_> {
    fn note(&mut self, line: usize, message: impl Into<String>) {
        self.notes.push(note(line, Some(self.src), message.into()));
    }

    /// A command process-compose runs through its shell: a string for gantry to split when
    /// that means the same, else `sh -c`.
    fn command(&mut self, node: &Node, what: &str) -> Option<Cmd> {
        let Some(text) = node.as_str() else {
            self.note(
                node.line,
                format!("{what} is {}, expected a string; left out", node.kind()),
            );
            return None;
        };
        // `${VAR}` stays gantry's interpolation (process-compose expands it when loading);
        // `$VAR` is the shell's.
        let text = interpolate_with(text, false, what, node.line, Some(self.src), self.notes);
        Some(if needs_shell(&text) {
            Cmd::Args(vec!["sh".into(), "-c".into(), text])
        } else {
            Cmd::Line(text)
        })
    }

    fn secs(&mut self, node: &Node, key: &str, min: u64) -> Option<u64> {
        let v = node.get(key)?;
        match v.as_u64() {
            Some(n) if n >= min => Some(n),
            _ => {
                self.note(
                    v.line,
                    format!("{key}: not a whole number of at least {min}; gantry's default"),
                );
                None
            }
        }
    }

    fn threshold(&mut self, node: &Node, key: &str) -> Option<u64> {
        self.secs(node, key, 1).map(|n| n.min(1000))
    }

    fn probe(&mut self, node: &Node, what: &str) -> Option<Probe> {
        if node.as_map().is_none() {
            self.note(
                node.line,
                format!("{what} is {}, expected a mapping; left out", node.kind()),
            );
            return None;
        }
        let mut p = Probe::default();
        if let Some(exec) = node.get("exec") {
            match exec.get("command") {
                Some(c) => p.exec = self.command(c, &format!("{what}.exec.command")),
                None => self.note(
                    exec.line,
                    format!("{what}.exec without `command`; left out"),
                ),
            }
            if let Some(wd) = exec.get("working_dir") {
                self.note(wd.line, format!("{what}.exec.working_dir: gantry runs probes in the service's working_dir; left out"));
            }
        } else if let Some(h) = node.get("http_get") {
            let host = h.get("host").and_then(Node::as_str).unwrap_or("127.0.0.1");
            let scheme = h
                .get("scheme")
                .and_then(Node::as_str)
                .unwrap_or("http")
                .to_ascii_lowercase();
            let path = h.get("path").and_then(Node::as_str).unwrap_or("/");
            let port = h.get("port").and_then(Node::as_str);
            if let Some(p) = port
                && !p.trim().parse::<u16>().is_ok_and(|p| p > 0)
            {
                self.note(
                    h.line,
                    format!(
                        "{what}.http_get: port `{p}` is not a number from 1 to 65535; left out"
                    ),
                );
                return None;
            }
            if host.is_empty()
                || !host.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
                })
            {
                self.note(
                    h.line,
                    format!(
                        "{what}.http_get: host `{host}` is not a host name or address; left out"
                    ),
                );
                return None;
            }
            let path = if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            };
            let url = match port {
                Some(port) => format!("{scheme}://{host}:{port}{path}"),
                None => format!("{scheme}://{host}{path}"),
            };
            if !matches!(scheme.as_str(), "http" | "https") {
                self.note(
                    h.line,
                    format!("{what}.http_get: scheme `{scheme}` is not http or https; left out"),
                );
                return None;
            }
            for (k, _) in h.as_map().unwrap_or(&[]) {
                if !matches!(k.as_str(), Some("host" | "port" | "path" | "scheme")) {
                    self.note(
                        k.line,
                        format!(
                            "{what}.http_get.{} not carried over",
                            k.as_str().unwrap_or("?")
                        ),
                    );
                }
            }
            p.http = Some(url);
        } else {
            self.note(
                node.line,
                format!("{what} has neither `exec` nor `http_get`; left out"),
            );
            return None;
        }
        if p.exec.is_none() && p.http.is_none() {
            return None;
        }
        // process-compose's defaults: every 10s, 1s timeout, 1 success, 3 failures.
        p.initial_delay = self
            .secs(node, "initial_delay_seconds", 0)
            .filter(|n| *n > 0)
            .map(seconds);
        let period = self.secs(node, "period_seconds", 1).unwrap_or(10);
        let timeout = self.secs(node, "timeout_seconds", 1).unwrap_or(1);
        // gantry never overlaps a probe with itself: a slow one runs `timeout` apart anyway.
        let period = if timeout > period {
            self.note(node.line, format!("{what}: timeout_seconds {timeout} is longer than period_seconds {period}; the period became {timeout}s (gantry never runs a probe while the last one is still running)"));
            timeout
        } else {
            period
        };
        p.period = Some(seconds(period));
        p.timeout = Some(seconds(timeout));
        p.success_threshold = self.threshold(node, "success_threshold").filter(|n| *n > 1);
        p.failure_threshold = Some(self.threshold(node, "failure_threshold").unwrap_or(3));
        Some(p)
    }

    fn process(
        &mut self,
        name: &str,
        line: usize,
        node: &Node,
        names: &HashMap<String, String>,
        log_ready: &mut Vec<(String, usize, String)>,
    ) -> Option<Service> {
        let Some(map) = node.as_map() else {
            self.note(
                node.line,
                format!(
                    "a process is a mapping of keys, this is {}; left out",
                    node.kind()
                ),
            );
            return None;
        };
        for (k, _) in map {
            let key = k.as_str().unwrap_or("");
            if !HANDLED.contains(&key) {
                let why = match key {
                    "is_daemon" => " (gantry supervises processes that stay in the foreground)",
                    "namespace" => " (use a `[profiles.NAME]` to start a group)",
                    _ => "",
                };
                self.note(k.line, format!("`{key}` not carried over{why}"));
            }
        }
        let command = match node.get("command") {
            Some(c) => self.command(c, "command"),
            None => None,
        };
        let Some(command) = command else {
            self.note(line, "no `command`; left out");
            return None;
        };
        let mut s = Service {
            name: name.to_string(),
            source_name: self.src.to_string(),
            line,
            command: Some(command),
            ..Service::default()
        };
        if let Some(wd) = node.get("working_dir").and_then(Node::as_str) {
            s.working_dir = Some(common::rebase(&self.opts.path_prefix, wd));
        }
        if let Some(env) = node.get("environment") {
            s.env = environment(env, "environment", Some(self.src), self.notes);
        }
        if let Some(deps) = node.get("depends_on") {
            match deps.as_map() {
                Some(entries) => {
                    for (k, v) in entries {
                        let Some(d) = k.as_str() else { continue };
                        let cond = v
                            .get("condition")
                            .and_then(Node::as_str)
                            .unwrap_or("process_started");
                        let target = names.get(d).cloned().unwrap_or_else(|| d.to_string());
                        let condition = match cond {
                            "process_started" => "started",
                            "process_healthy" => "ready",
                            "process_completed_successfully" => "completed",
                            "process_completed" => {
                                self.note(v.line, format!("depends_on {d}: process_completed (any exit) became \"completed\", which needs exit 0"));
                                "completed"
                            }
                            "process_log_ready" => {
                                log_ready.push((target.clone(), k.line, self.src.to_string()));
                                "ready"
                            }
                            other => {
                                self.note(v.line, format!("depends_on {d}: condition `{other}` is not a process-compose condition; waiting until it is started"));
                                "started"
                            }
                        };
                        s.depends_on.push(Dep {
                            name: target,
                            condition,
                            required: true,
                            line: k.line,
                        });
                    }
                }
                None if deps.is_null() => {}
                None => self.note(
                    deps.line,
                    format!(
                        "depends_on is {}, expected a mapping; left out",
                        deps.kind()
                    ),
                ),
            }
        }
        let readiness = node
            .get("readiness_probe")
            .and_then(|p| self.probe(p, "readiness_probe"));
        s.liveness = node
            .get("liveness_probe")
            .and_then(|p| self.probe(p, "liveness_probe"));
        let log_line = node
            .get("ready_log_line")
            .and_then(Node::as_str)
            .map(|l| Probe {
                log: Some(regex_escape(l)),
                ..Probe::default()
            });
        match (readiness, log_line) {
            (Some(r), Some(l)) => {
                self.note(line, "ready_log_line and readiness_probe: the log line became a `startup` probe, so the service is ready once the line was printed and the readiness probe passes");
                s.startup = Some(l);
                s.readiness = Some(r);
            }
            (r, l) => s.readiness = r.or(l),
        }
        if let Some(av) = node.get("availability") {
            for (k, v) in av.as_map().unwrap_or(&[]) {
                match k.as_str().unwrap_or("") {
                    "restart" => match v.as_str().unwrap_or("") {
                        "always" => s.restart = Some("always"),
                        "on_failure" => s.restart = Some("on-failure"),
                        "no" => {}
                        "exit_on_failure" => self.note(v.line, "restart: exit_on_failure (stop everything when it fails) has no gantry equivalent; not restarted (`priority = \"critical\"` makes a failure at boot a NO-GO)"),
                        other => self.note(v.line, format!("restart: `{other}` is not a process-compose policy; left out")),
                    },
                    "max_restarts" => match v.as_u64() {
                        Some(0) => {}
                        Some(n) if n <= 10_000 => {
                            s.start_limit_burst = Some(n);
                            self.note(v.line, format!("max_restarts: {n} became `start_limit = {{ burst = {n}, interval = \"1h\" }}` (at most {n} restarts an hour)"));
                        }
                        _ => self.note(v.line, "max_restarts: not a number from 0 to 10000; left out"),
                    },
                    other => self.note(k.line, format!("availability.{other} not carried over")),
                }
            }
        }
        if let Some(sd) = node.get("shutdown") {
            for (k, v) in sd.as_map().unwrap_or(&[]) {
                match k.as_str().unwrap_or("") {
                    "signal" => {
                        s.stop_signal = match v.as_u64() {
                            Some(1) => Some("SIGHUP"),
                            Some(2) => Some("SIGINT"),
                            Some(3) => Some("SIGQUIT"),
                            Some(9) => Some("SIGKILL"),
                            Some(10) => Some("SIGUSR1"),
                            Some(12) => Some("SIGUSR2"),
                            Some(15) => Some("SIGTERM"),
                            _ => {
                                self.note(v.line, "shutdown.signal: gantry sends 1, 2, 3, 9, 10, 12 or 15 (HUP, INT, QUIT, KILL, USR1, USR2, TERM); left out (SIGTERM)");
                                None
                            }
                        }
                    }
                    "timeout_seconds" => match v.as_u64() {
                        Some(n) => s.stop_timeout = Some(seconds(n)),
                        None => self.note(v.line, "shutdown.timeout_seconds: not a whole number; left out"),
                    },
                    "command" => self.note(k.line, "shutdown.command: gantry stops a service with its signal; the command is not run (a `cleanup` command runs after the stop, if that is what it is for)"),
                    other => self.note(k.line, format!("shutdown.{other} not carried over")),
                }
            }
        }
        if let Some(r) = node.get("replicas") {
            match r.as_u64() {
                Some(1) => {}
                Some(n) if (2..=1000).contains(&n) => {
                    s.replicas = Some(n);
                    self.note(r.line, format!("replicas: {n} instances {name}.1 … {name}.{n}; each gets REPLICA (1 to {n}) in its env, not process-compose's PC_REPLICA_NUM"));
                }
                _ => self.note(r.line, "replicas: not a number from 1 to 1000; left out"),
            }
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(y: &str) -> Imported {
        import(y, &Options::default()).unwrap()
    }

    fn svc<'a>(i: &'a Imported, name: &str) -> &'a Service {
        i.file.services.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn vars_fill_templates_and_extension_fields_stay_quiet() {
        let i = run(r#"
vars: {PORT: 7000, HOST: 127.0.0.1}
x-probe: &probe {period_seconds: 2, timeout_seconds: 5}
processes:
  api:
    vars: {PORT: 7100}
    command: "api --listen {{.HOST}}:{{ .PORT }} --name {{.NAME}}"
    readiness_probe:
      http_get: {host: "{{.HOST}}", port: "{{.PORT}}", path: /ready}
      <<: *probe
"#);
        let api = svc(&i, "api");
        assert_eq!(
            api.command,
            Some(Cmd::Line(
                "api --listen 127.0.0.1:7100 --name {{.NAME}}".into()
            ))
        );
        let ready = api.readiness.as_ref().unwrap();
        assert_eq!(ready.http.as_deref(), Some("http://127.0.0.1:7100/ready"));
        // A timeout longer than the period: the period follows it, and the note says so.
        assert_eq!(ready.period.as_deref(), Some("5s"));
        let notes: Vec<_> = i.notes.iter().map(|n| n.message.as_str()).collect();
        assert!(
            notes
                .iter()
                .any(|n| n.contains("template `{{.NAME}}` names no entry of `vars`")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("timeout_seconds 5 is longer than period_seconds 2")),
            "{notes:?}"
        );
        assert!(
            !notes
                .iter()
                .any(|n| n.contains("x-probe") || n.contains("`vars`  not")),
            "{notes:?}"
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
    }

    #[test]
    fn conditions_probes_and_availability() {
        let i = run(r#"
version: "0.5"
environment: ["LOG=debug"]
processes:
  db:
    command: "postgres -D data"
    readiness_probe:
      exec: {command: "pg_isready -h 127.0.0.1"}
      initial_delay_seconds: 2
      period_seconds: 5
      timeout_seconds: 3
      failure_threshold: 10
    availability: {restart: always, max_restarts: 4}
    shutdown: {signal: 2, timeout_seconds: 30}
  migrate:
    command: "./migrate.sh && echo done"
    depends_on: {db: {condition: process_healthy}}
  web:
    command: "./web --port 8080"
    environment: ["PORT=8080"]
    ready_log_line: "listening on :8080 (http)"
    liveness_probe:
      http_get: {host: 127.0.0.1, port: 8080, path: /health}
    depends_on:
      migrate: {condition: process_completed_successfully}
      db: {condition: process_started}
    availability: {restart: on_failure}
  tail:
    command: tail -f log
    depends_on: {web: {condition: process_log_ready}}
    availability: {restart: exit_on_failure}
    disabled: true
    replicas: 2
"#);
        assert_eq!(i.file.env, [("LOG".to_string(), "debug".to_string())]);
        let db = svc(&i, "db");
        let p = db.readiness.clone().unwrap();
        assert_eq!(p.exec, Some(Cmd::Line("pg_isready -h 127.0.0.1".into())));
        assert_eq!(
            (
                p.initial_delay.as_deref(),
                p.period.as_deref(),
                p.timeout.as_deref(),
                p.failure_threshold
            ),
            (Some("2s"), Some("5s"), Some("3s"), Some(10))
        );
        assert_eq!(
            (
                db.restart,
                db.start_limit_burst,
                db.stop_signal,
                db.stop_timeout.as_deref()
            ),
            (Some("always"), Some(4), Some("SIGINT"), Some("30s"))
        );
        let migrate = svc(&i, "migrate");
        assert_eq!(migrate.kind, Some("task"));
        assert_eq!(
            migrate.command,
            Some(Cmd::Args(vec![
                "sh".into(),
                "-c".into(),
                "./migrate.sh && echo done".into()
            ]))
        );
        let web = svc(&i, "web");
        assert_eq!(
            web.readiness.as_ref().unwrap().log.as_deref(),
            Some("listening on :8080 \\(http\\)")
        );
        assert_eq!(
            web.liveness.as_ref().unwrap().http.as_deref(),
            Some("http://127.0.0.1:8080/health")
        );
        let conds: Vec<_> = web
            .depends_on
            .iter()
            .map(|d| (d.name.as_str(), d.condition))
            .collect();
        assert_eq!(conds, [("migrate", "completed"), ("db", "started")]);
        let tail = svc(&i, "tail");
        assert_eq!(
            (tail.replicas, tail.depends_on[0].condition),
            (Some(2), "ready")
        );
        assert_eq!(
            i.file.profiles,
            [(
                "default".to_string(),
                vec!["db".to_string(), "migrate".into(), "web".into()]
            )]
        );
        assert!(
            i.notes
                .iter()
                .any(|n| n.message.contains("exit_on_failure"))
        );
        let text = i.to_toml("pc.yaml", "process-compose");
        let loaded = gantry_spec::decode(
            &gantry_spec::Source::new("gantry.toml", text.clone()),
            &|_| None,
        );
        assert!(!loaded.has_errors(), "{text}\n{:#?}", loaded.diagnostics);
    }

    #[test]
    fn malformed_is_an_error_with_a_line() {
        let e = import("processes:\n  a: {command: [x\n", &Options::default()).unwrap_err();
        assert!(e.line >= 2, "{e:?}");
        assert!(import("log_level: debug\n", &Options::default()).is_err());
        let i = run(
            "processes:\n  a: 1\n  b: {command: 5, readiness_probe: {exec: 1}, availability: [1], shutdown: {signal: TERM}, replicas: many, depends_on: [a]}\n",
        );
        assert!(i.notes.len() >= 4, "{:#?}", i.notes);
    }
}

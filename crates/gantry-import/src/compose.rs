//! docker compose files: services with a command run on the host, services with an image
//! become `docker run --rm` commands, and depends_on, healthcheck, restart, environment,
//! env_file, profiles, ports, working_dir, stop_signal, stop_grace_period and deploy.replicas
//! become their gantry keys. Everything else is a note with its line.

use crate::common::{
    self, assign_names, compose_duration, environment, fmt, interpolation, note, profile_name,
};
use crate::emit::{Cmd, GantryFile, Service};
use crate::yaml::{self, Node, Value};
use crate::{ImportError, Imported, Note, Options};
use extends::extend;
use keys::memory;
use std::collections::BTreeMap;
use std::time::Duration;

/// Service keys this import reads (the rest are reported).
const HANDLED: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "depends_on",
    "healthcheck",
    "restart",
    "environment",
    "env_file",
    "profiles",
    "ports",
    "working_dir",
    "stop_signal",
    "stop_grace_period",
    "deploy",
    "container_name",
    "volumes",
    "user",
    "init",
    "network_mode",
    "hostname",
    "extra_hosts",
    "tmpfs",
    "privileged",
    "cap_add",
    "cap_drop",
    "platform",
    "expose",
    "mem_limit",
    "cpus",
    "extends",
];

/// Translates a compose file. `Err` only when the file is not YAML or not a compose file at all.
pub fn import(text: &str, opts: &Options) -> Result<Imported, ImportError> {
    let root = yaml::parse(text)?;
    let Some(top) = root.as_map() else {
        return Err(ImportError {
            line: root.line,
            col: root.col,
            message: format!("a compose file is a mapping with `services`, this is {}", root.kind()),
            hint: "is this a compose file? `gantry import procfile` and `gantry import process-compose` read the other formats".into(),
        });
    };
    let mut notes: Vec<Note> = Vec::new();
    let mut services_node = None;
    for (k, v) in top {
        match k.as_str().unwrap_or("") {
            "services" => services_node = Some(v),
            "version" | "name" => {}
            key if key.starts_with("x-") => {}
            key => notes.push(note(k.line, None, format!("top-level `{key}` not carried over (gantry runs processes; docker volumes, networks, secrets and configs are docker's)"))),
        }
    }
    let Some(services_node) = services_node else {
        return Err(ImportError {
            line: root.line,
            col: root.col,
            message: "no `services` in the file".into(),
            hint: "a compose file lists its containers under `services:`".into(),
        });
    };
    let Some(entries) = services_node.as_map() else {
        if services_node.is_null() {
            return Ok(Imported {
                file: GantryFile::default(),
                notes,
            });
        }
        return Err(ImportError {
            line: services_node.line,
            col: services_node.col,
            message: format!(
                "`services` is {}, expected a mapping of service names",
                services_node.kind()
            ),
            hint: "write `services:` followed by indented `NAME:` entries".into(),
        });
    };
    let source_names: Vec<(String, usize)> = entries
        .iter()
        .filter_map(|(k, _)| k.as_str().map(|n| (n.to_string(), k.line)))
        .collect();
    let names = assign_names(&source_names, &mut notes);
    let mut file = GantryFile::default();
    let mut profiles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut default_set: Vec<String> = Vec::new();
    let mut networked = false;
    for (k, v) in entries {
        let Some(src) = k.as_str() else {
            notes.push(note(
                k.line,
                None,
                format!(
                    "a service name must be a string, this is {}; left out",
                    k.kind()
                ),
            ));
            continue;
        };
        let Some(name) = names.get(src).cloned() else {
            continue;
        };
        let extended = extend(src, v, entries, &mut notes);
        let v = &extended;
        let mut c = Ctx {
            src,
            notes: &mut notes,
            opts,
        };
        if let Some(svc) = c.service(&name, k.line, v, &names, &mut networked) {
            match v.get("profiles").map(|p| c.strings(p, "profiles")) {
                Some(list) if !list.is_empty() => {
                    for p in list {
                        let p =
                            profile_name(&p, v.get("profiles").map_or(k.line, |n| n.line), c.notes);
                        profiles.entry(p).or_default().push(name.clone());
                    }
                }
                _ => default_set.push(name.clone()),
            }
            file.services.push(svc);
        }
    }
    if networked {
        notes.push(Note { line: None, service: None, message: "image services run with `docker run` on docker's default network, where service names do not resolve: containers reach each other through their published ports on the host (add `--network NAME` to the commands to share a network you create)".into() });
    }
    if !profiles.is_empty() {
        let mut all: Vec<(String, Vec<String>)> = Vec::new();
        all.push(("default".into(), default_set.clone()));
        for (p, mut members) in profiles {
            if p == "default" {
                notes.push(Note { line: None, service: None, message: "compose profile `default` merged into gantry's `default` profile (the services without a profile)".into() });
                all[0].1.extend(members);
                continue;
            }
            let mut services = default_set.clone();
            services.append(&mut members);
            all.push((p, services));
        }
        for (_, s) in &mut all {
            common::dedup(s);
        }
        all.retain(|(_, s)| !s.is_empty());
        notes.push(Note { line: None, service: None, message: "compose starts services with `profiles` only when a profile is active; `gantry up` starts every service: use `gantry up --profile default` for compose's default set, `--profile NAME` for a profile (with the default set, as compose does)".into() });
        file.profiles = all;
    }
    common::finish(&mut file, &mut notes);
    crate::sort_notes(&mut notes);
    Ok(Imported { file, notes })
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

    fn interp(&mut self, s: &str, what: &str, line: usize) -> String {
        interpolation(s, what, line, Some(self.src), self.notes)
    }

    /// A string or a list of strings.
    fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| {
                    let s = common::scalar(i).filter(|_| !i.is_null());
                    if s.is_none() {
                        self.note(
                            i.line,
                            format!("{what}: {} is not a string; left out", i.kind()),
                        );
                    }
                    s
                })
                .collect(),
            Value::Scalar { .. } if node.is_null() => Vec::new(),
            Value::Scalar { text, .. } => vec![text.clone()],
            Value::Map(_) => {
                self.note(
                    node.line,
                    format!("{what} is a mapping, expected a string or a list; left out"),
                );
                Vec::new()
            }
        }
    }

    /// A command as compose reads it: a string split like a shell, or a list.
    fn words(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => {
                let text = self.interp(text, what, node.line);
                match shlex::split(&text) {
                    Some(w) => Some(w),
                    None => {
                        self.note(node.line, format!("{what}: unbalanced quotes; left out"));
                        None
                    }
                }
            }
            Value::Seq(_) => {
                let items = self.strings(node, what);
                Some(
                    items
                        .iter()
                        .map(|s| self.interp(s, what, node.line))
                        .collect(),
                )
            }
            _ if node.is_null() => None,
            _ => {
                self.note(
                    node.line,
                    format!(
                        "{what} is {}, expected a string or a list; left out",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = node.as_str()?;
        match compose_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.note(node.line, format!("{what}: {e}; left out"));
                None
            }
        }
    }

    fn service(
        &mut self,
        name: &str,
        line: usize,
        node: &Node,
        names: &std::collections::HashMap<String, String>,
        networked: &mut bool,
    ) -> Option<Service> {
        let Some(map) = node.as_map() else {
            self.note(
                node.line,
                format!(
                    "a service is a mapping of keys, this is {}; left out",
                    node.kind()
                ),
            );
            return None;
        };
        let mut s = Service {
            name: name.to_string(),
            source_name: self.src.to_string(),
            line,
            ..Service::default()
        };
        for (k, _) in map {
            let key = k.as_str().unwrap_or("");
            if !HANDLED.contains(&key) && !key.starts_with("x-") {
                self.note(k.line, format!("`{key}` not carried over"));
            }
        }
        let image = node
            .get("image")
            .and_then(|i| i.as_str())
            .map(|i| (i.to_string(), node.get("image").map_or(line, |n| n.line)));
        let env = node
            .get("environment")
            .map(|e| environment(e, "environment", Some(self.src), self.notes))
            .unwrap_or_default();
        let mut env_files = Vec::new();
        if let Some(ef) = node.get("env_file") {
            let items: Vec<&Node> = match &ef.value {
                Value::Seq(items) => items.iter().collect(),
                _ => vec![ef],
            };
            for item in items {
                let (path, required) = match &item.value {
                    Value::Map(_) => (
                        item.get("path").and_then(Node::as_str).map(str::to_string),
                        item.get("required").and_then(Node::as_bool).unwrap_or(true),
                    ),
                    _ => (item.as_str().map(str::to_string), true),
                };
                let Some(path) = path else {
                    self.note(item.line, "env_file: an entry without a path; left out");
                    continue;
                };
                if !required {
                    self.note(item.line, format!("env_file {path}: `required: false` has no gantry equivalent; the file must exist"));
                }
                let p = self.interp(&path, "env_file", item.line);
                env_files.push(common::rebase(&self.opts.path_prefix, &p));
            }
        }
        let working_dir = node.get("working_dir").and_then(Node::as_str).map(|w| {
            let line = node.get("working_dir").map_or(line, |n| n.line);
            self.interp(w, "working_dir", line)
        });
        // deploy: replicas, restart_policy; the rest reported.
        let mut replicas = None;
        let mut restart_node: Option<(String, usize)> = None;
        if let Some(r) = node.get("restart") {
            match r.as_str() {
                Some(t) => restart_node = Some((t.to_string(), r.line)),
                None => self.note(r.line, format!("restart is {}, expected no, always, on-failure[:N] or unless-stopped; left out", r.kind())),
            }
        }
        let mut mem: Option<(String, usize)> = None;
        let mut cpus: Option<(String, usize)> = None;
        if let Some(deploy) = node.get("deploy") {
            for (k, v) in deploy.as_map().unwrap_or(&[]) {
                match k.as_str().unwrap_or("") {
                    "replicas" => match v.as_u64() {
                        Some(0) => self.note(v.line, "deploy.replicas: 0 (not started by default in compose); gantry starts it once — remove it from the file or stop it with `gantry disable`"),
                        Some(1) => {}
                        Some(n) if n <= 1000 => {
                            replicas = Some(n);
                            let ports = if node.get("ports").is_some() { "; give each its own port with `replica_ports` and `${PORT}` in the command" } else { "" };
                            self.note(v.line, format!("deploy.replicas: {n} became `replicas = {n}` (units {name}.1 … {name}.{n}){ports}"));
                        }
                        _ => self.note(v.line, "deploy.replicas: not a number from 1 to 1000; left out"),
                    },
                    "restart_policy" => {
                        let cond = v.get("condition").and_then(Node::as_str).unwrap_or("any");
                        let max = v.get("max_attempts").and_then(Node::as_u64);
                        let policy = match (cond, max) {
                            ("none", _) => "no".to_string(),
                            ("on-failure", Some(n)) => format!("on-failure:{n}"),
                            ("on-failure", None) => "on-failure".into(),
                            (_, _) => "always".into(),
                        };
                        // Compose reads `restart` only when deploy.restart_policy is not set.
                        if let Some((written, wline)) = &restart_node
                            && *written != policy
                        {
                            self.note(*wline, format!("restart: `{written}` is overridden by deploy.restart_policy (`{policy}`), as compose does"));
                        }
                        restart_node = Some((policy, v.line));
                        for (rk, _) in v.as_map().unwrap_or(&[]) {
                            if !matches!(rk.as_str(), Some("condition" | "max_attempts")) {
                                self.note(rk.line, format!("deploy.restart_policy.{} not carried over", rk.as_str().unwrap_or("?")));
                            }
                        }
                    }
                    "resources" => {
                        for (rk, rv) in v.as_map().unwrap_or(&[]) {
                            if rk.as_str() != Some("limits") {
                                self.note(rk.line, format!("deploy.resources.{} not carried over (gantry sets limits only)", rk.as_str().unwrap_or("?")));
                                continue;
                            }
                            for (lk, lv) in rv.as_map().unwrap_or(&[]) {
                                match (lk.as_str(), lv.as_str()) {
                                    (Some("memory"), Some(m)) => mem = Some((m.to_string(), lv.line)),
                                    (Some("cpus"), Some(c)) => cpus = Some((c.to_string(), lv.line)),
                                    (other, _) => self.note(lk.line, format!("deploy.resources.limits.{} not carried over", other.unwrap_or("?"))),
                                }
                            }
                        }
                    }
                    other => self.note(k.line, format!("deploy.{other} not carried over")),
                }
            }
        }
        if let Some(m) = node.get("mem_limit")
            && let Some(t) = m.as_str()
        {
            mem.get_or_insert((t.to_string(), m.line));
        }
        if let Some(c) = node.get("cpus")
            && let Some(t) = c.as_str()
        {
            cpus.get_or_insert((t.to_string(), c.line));
        }
        // The command.
        if let Some((image, image_line)) = image {
            *networked = true;
            let image = self.interp(&image, "image", image_line);
            let container = match node.get("container_name").and_then(Node::as_str) {
                Some(c) if replicas.is_none() => c.to_string(),
                Some(c) => {
                    self.note(line, "container_name with replicas: each instance gets its own name (`NAME-${REPLICA}`)");
                    format!("{c}-${{REPLICA}}")
                }
                None if replicas.is_some() => format!("{name}-${{REPLICA}}"),
                None => name.to_string(),
            };
            let mut args: Vec<String> = ["docker", "run", "--rm", "--name", &container]
                .iter()
                .map(|s| s.to_string())
                .collect();
            self.docker_flags(node, &mut args);
            // Limits go to the container: a gantry limit would only hold the docker CLI.
            if let Some((m, _)) = &mem {
                args.extend(["--memory".into(), m.clone()]);
            }
            if let Some((c, _)) = &cpus {
                args.extend(["--cpus".into(), c.clone()]);
            }
            for p in self.ports(node, true, &mut s.ports) {
                args.extend(["-p".into(), p]);
            }
            for (k, _) in &env {
                // docker takes the value from its own environment: the service's env below.
                args.extend(["-e".into(), k.clone()]);
            }
            for f in env_files.drain(..) {
                args.extend(["--env-file".into(), f]);
            }
            self.volumes(node, &mut args);
            if let Some(w) = &working_dir {
                args.extend(["-w".into(), w.clone()]);
            }
            if let Some(sig) = node.get("stop_signal").and_then(Node::as_str) {
                args.extend(["--stop-signal".into(), sig.to_string()]);
            }
            let entrypoint = node
                .get("entrypoint")
                .and_then(|e| self.words(e, "entrypoint"));
            let command = node.get("command").and_then(|c| self.words(c, "command"));
            let mut tail = Vec::new();
            if let Some(ep) = entrypoint {
                let mut ep = ep.into_iter();
                args.extend(["--entrypoint".into(), ep.next().unwrap_or_default()]);
                tail.extend(ep);
            }
            args.push(image);
            tail.extend(command.unwrap_or_default());
            args.extend(tail);
            s.command = Some(Cmd::Args(args));
            // A killed gantry (or docker CLI) leaves the container running under dockerd; the
            // next start would find its name taken.
            if let Ok(quoted) = shlex::try_quote(&container) {
                s.cleanup = Some(Cmd::Args(vec![
                    "sh".into(),
                    "-c".into(),
                    format!("docker rm -f {quoted} >/dev/null 2>&1 || true"),
                ]));
            }
            s.env = env;
            if node.get("build").is_some() {
                self.note(line, "build: gantry does not build images; build it first (`docker compose build`) so that `docker run` finds the image");
            }
            s.readiness = self.healthcheck(node, Some(&container), &mut s);
        } else {
            if let Some(ctn) = node.get("container_name") {
                self.note(
                    ctn.line,
                    "container_name: no container (the command runs on the host); left out",
                );
            }
            let cmd = match (node.get("entrypoint"), node.get("command")) {
                (Some(ep), cmd) => self.words(ep, "entrypoint").map(|mut ep| {
                    ep.extend(
                        cmd.and_then(|c| self.words(c, "command"))
                            .unwrap_or_default(),
                    );
                    Cmd::Args(ep)
                }),
                (
                    None,
                    Some(
                        c @ Node {
                            value: Value::Scalar { text, .. },
                            ..
                        },
                    ),
                ) if !c.is_null() => {
                    let line = self.interp(text, "command", c.line);
                    if shlex::split(&line).is_some() {
                        Some(Cmd::Line(line))
                    } else {
                        self.note(c.line, "command: unbalanced quotes; left out");
                        None
                    }
                }
                (None, Some(c)) => self.words(c, "command").map(Cmd::Args),
                (None, None) => None,
            };
            let Some(cmd) = cmd.filter(|c| {
                !matches!(c, Cmd::Args(a) if a.is_empty())
                    && !matches!(c, Cmd::Line(l) if l.trim().is_empty())
            }) else {
                let why = if node.get("build").is_some() {
                    "has `build` but no `image` or `command`: gantry does not build images; left out (set `image:` to a built image, or `command:` to run it on the host)"
                } else {
                    "has no `image`, `command` or `entrypoint`: nothing to run; left out"
                };
                self.note(line, why);
                return None;
            };
            if node.get("build").is_some() {
                self.note(
                    line,
                    "build: ignored; the command runs on the host, not in the built image",
                );
            }
            s.command = Some(cmd);
            s.env = env;
            s.env_file = env_files;
            s.working_dir = working_dir.map(|w| common::rebase(&self.opts.path_prefix, &w));
            let mut ports = Vec::new();
            // The `-p` specs are docker's; a host command keeps only the ports it listens on.
            self.ports(node, false, &mut ports);
            s.ports = ports;
            if let Some(v) = node.get("volumes") {
                self.note(
                    v.line,
                    "volumes: the command runs on the host, nothing is mounted; left out",
                );
            }
            for key in [
                "user",
                "init",
                "network_mode",
                "hostname",
                "extra_hosts",
                "tmpfs",
                "privileged",
                "cap_add",
                "cap_drop",
                "platform",
            ] {
                if let Some(v) = node.get(key) {
                    self.note(
                        v.line,
                        format!(
                            "{key}: a container option, and the command runs on the host; left out"
                        ),
                    );
                }
            }
            s.readiness = self.healthcheck(node, None, &mut s);
            if let Some((m, line)) = mem {
                s.memory_max = memory(&m);
                if s.memory_max.is_none() {
                    self.note(line, format!("memory limit `{m}`: not a size of at least 1MiB (e.g. 512m, 1g); left out"));
                }
            }
            if let Some((c, line)) = cpus {
                s.cpu_max = c
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| (0.01..=1024.0).contains(n))
                    .map(|n| n.to_string());
                if s.cpu_max.is_none() {
                    self.note(
                        line,
                        format!("cpus `{c}`: not a number of CPUs from 0.01 to 1024; left out"),
                    );
                }
            }
        }
        if let Some(ex) = node.get("expose") {
            self.note(
                ex.line,
                "expose: only meaningful between containers; left out",
            );
        }
        if replicas.is_some() && !s.ports.is_empty() {
            self.note(line, "ports with replicas: instances cannot share a host port; `ports` left out (use `replica_ports`)");
            s.ports.clear();
        }
        s.replicas = replicas;
        // Dependencies.
        if let Some(deps) = node.get("depends_on") {
            s.depends_on = self.depends_on(deps, names);
        }
        // Restart.
        if let Some((policy, rline)) = restart_node {
            let (restart, burst) = self.restart(&policy, rline);
            s.restart = restart;
            s.start_limit_burst = burst;
        }
        if let Some(sig) = node.get("stop_signal") {
            s.stop_signal = self.signal(sig);
        }
        if let Some(g) = node.get("stop_grace_period") {
            s.stop_timeout = self.duration(g, "stop_grace_period").map(fmt);
        }
        Some(s)
    }
}

mod extends;
mod keys;

#[cfg(test)]
mod tests;

//! docker compose files: services with a command run on the host, services with an image
//! become `docker run --rm` commands, and depends_on, healthcheck, restart, environment,
//! env_file, profiles, ports, working_dir, stop_signal, stop_grace_period and deploy.replicas
//! become their gantry keys. Everything else is a note with its line.

use crate::common::{
    self, assign_names, compose_duration, environment, fmt, interpolation, note, profile_name,
};
use crate::emit::{Cmd, Dep, GantryFile, Probe, Service};
use crate::yaml::{self, Node, Value};
use crate::{ImportError, Imported, Note, Options};
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

    fn docker_flags(&mut self, node: &Node, args: &mut Vec<String>) {
        for (key, flag) in [
            ("user", "--user"),
            ("hostname", "--hostname"),
            ("platform", "--platform"),
        ] {
            if let Some(v) = node.get(key).and_then(Node::as_str) {
                args.extend([flag.into(), v.to_string()]);
            }
        }
        if let Some(m) = node.get("network_mode") {
            match m.as_str() {
                Some(svc) if svc.starts_with("service:") => {
                    let target = &svc["service:".len()..];
                    self.note(m.line, format!("network_mode {svc} became `--network container:{target}` (the container named {target} must run first: depend on it)"));
                    args.extend(["--network".into(), format!("container:{target}")]);
                }
                Some(mode) => args.extend(["--network".into(), mode.to_string()]),
                None => self.note(m.line, "network_mode is not a string; left out"),
            }
        }
        for (key, flag) in [("init", "--init"), ("privileged", "--privileged")] {
            if node.get(key).and_then(Node::as_bool) == Some(true) {
                args.push(flag.into());
            }
        }
        for (key, flag) in [
            ("cap_add", "--cap-add"),
            ("cap_drop", "--cap-drop"),
            ("tmpfs", "--tmpfs"),
            ("extra_hosts", "--add-host"),
        ] {
            if let Some(v) = node.get(key) {
                let items: Vec<String> = match &v.value {
                    Value::Map(entries) => entries
                        .iter()
                        .filter_map(|(h, ip)| Some(format!("{}:{}", h.as_str()?, ip.as_str()?)))
                        .collect(),
                    _ => self.strings(v, key),
                };
                for i in items {
                    let i = if key == "extra_hosts" {
                        i.replacen('=', ":", 1)
                    } else {
                        i
                    };
                    args.extend([flag.into(), i]);
                }
            }
        }
    }

    fn volumes(&mut self, node: &Node, args: &mut Vec<String>) {
        let Some(v) = node.get("volumes") else { return };
        let Some(items) = v.as_seq() else {
            self.note(
                v.line,
                format!("volumes is {}, expected a list; left out", v.kind()),
            );
            return;
        };
        for item in items {
            match &item.value {
                Value::Scalar { text, .. } if !item.is_null() => {
                    let t = self.interp(text, "volumes", item.line);
                    args.extend(["-v".into(), t]);
                }
                Value::Map(_) => {
                    let ty = item.get("type").and_then(Node::as_str).unwrap_or("volume");
                    let target = item.get("target").and_then(Node::as_str);
                    let source = item.get("source").and_then(Node::as_str);
                    let ro = item.get("read_only").and_then(Node::as_bool) == Some(true);
                    match (ty, source, target) {
                        ("tmpfs", _, Some(t)) => args.extend(["--tmpfs".into(), t.to_string()]),
                        ("bind" | "volume", Some(s), Some(t)) => {
                            let spec = format!("{s}:{t}{}", if ro { ":ro" } else { "" });
                            let spec = self.interp(&spec, "volumes", item.line);
                            args.extend(["-v".into(), spec]);
                        }
                        ("volume", None, Some(t)) => args.extend(["-v".into(), t.to_string()]),
                        _ => self.note(
                            item.line,
                            format!("volumes: a `{ty}` mount is not carried over"),
                        ),
                    }
                }
                _ => self.note(
                    item.line,
                    "volumes: an entry that is not a string or mapping; left out",
                ),
            }
        }
    }

    /// `ports`: the `-p` specs for docker (when `docker`), and the published TCP host ports
    /// (or, for a host command, the port it listens on) in `out`.
    fn ports(&mut self, node: &Node, docker: bool, out: &mut Vec<u16>) -> Vec<String> {
        let Some(p) = node.get("ports") else {
            return Vec::new();
        };
        let Some(items) = p.as_seq() else {
            self.note(
                p.line,
                format!("ports is {}, expected a list; left out", p.kind()),
            );
            return Vec::new();
        };
        let mut specs = Vec::new();
        for item in items {
            let (spec, host, target, proto) = match &item.value {
                Value::Map(_) => {
                    let target = item
                        .get("target")
                        .and_then(Node::as_str)
                        .unwrap_or("")
                        .to_string();
                    let published = item
                        .get("published")
                        .and_then(Node::as_str)
                        .map(str::to_string);
                    let ip = item.get("host_ip").and_then(Node::as_str);
                    let proto = item
                        .get("protocol")
                        .and_then(Node::as_str)
                        .unwrap_or("tcp")
                        .to_string();
                    let mut spec = String::new();
                    if let Some(ip) = ip {
                        spec.push_str(ip);
                        spec.push(':');
                    }
                    if let Some(p) = &published {
                        spec.push_str(p);
                        spec.push(':');
                    }
                    spec.push_str(&target);
                    if proto != "tcp" {
                        spec.push('/');
                        spec.push_str(&proto);
                    }
                    (spec, published, target, proto)
                }
                Value::Scalar { text, .. } if !item.is_null() => {
                    let (body, proto) = match text.rsplit_once('/') {
                        Some((b, p)) => (b, p.to_string()),
                        None => (text.as_str(), "tcp".to_string()),
                    };
                    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
                    let target = parts.first().copied().unwrap_or("").to_string();
                    let host = parts
                        .get(1)
                        .map(|h| h.to_string())
                        .filter(|h| !h.is_empty());
                    (text.clone(), host, target, proto)
                }
                _ => {
                    self.note(
                        item.line,
                        "ports: an entry that is not a string or mapping; left out",
                    );
                    continue;
                }
            };
            let spec = self.interp(&spec, "ports", item.line);
            if docker {
                specs.push(spec.clone());
            }
            if proto != "tcp" {
                self.note(
                    item.line,
                    format!(
                        "ports {spec}: {proto} is not checked by gantry's pre-flight (TCP only)"
                    ),
                );
                continue;
            }
            let listen = if docker { host } else { host.or(Some(target)) };
            let Some(listen) = listen else { continue };
            match port_range(&listen) {
                Some(range) => out.extend(range),
                None if listen.contains('$') => self.note(item.line, format!("ports {spec}: a port from a variable is not checked by the pre-flight")),
                None => self.note(item.line, format!("ports {spec}: `{listen}` is not a port or a range of at most 100 ports; left out of `ports`")),
            }
        }
        out.sort_unstable();
        out.dedup();
        specs
    }

    fn depends_on(
        &mut self,
        deps: &Node,
        names: &std::collections::HashMap<String, String>,
    ) -> Vec<Dep> {
        let mut out = Vec::new();
        let mut push = |dep: &str, line: usize, condition: &'static str, required: bool| {
            let name = names.get(dep).cloned().unwrap_or_else(|| dep.to_string());
            out.push(Dep {
                name,
                condition,
                required,
                line,
            });
        };
        match &deps.value {
            Value::Seq(items) => {
                for i in items {
                    match i.as_str() {
                        Some(d) => push(d, i.line, "started", true),
                        None => {
                            self.note(i.line, "depends_on: an entry that is not a name; left out")
                        }
                    }
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    let Some(d) = k.as_str() else { continue };
                    let cond = v
                        .get("condition")
                        .and_then(Node::as_str)
                        .unwrap_or("service_started");
                    let condition = match cond {
                        "service_started" => "started",
                        "service_healthy" => "ready",
                        "service_completed_successfully" => "completed",
                        other => {
                            self.note(v.line, format!("depends_on {d}: condition `{other}` is not a compose condition; waiting until it is started"));
                            "started"
                        }
                    };
                    let required = v.get("required").and_then(Node::as_bool).unwrap_or(true);
                    if v.get("restart").and_then(Node::as_bool) == Some(true) {
                        self.note(v.line, format!("depends_on {d}: `restart: true` — gantry restarts hard dependents of a restarted service in order anyway"));
                    }
                    push(d, k.line, condition, required);
                }
            }
            _ if deps.is_null() => {}
            _ => self.note(
                deps.line,
                format!(
                    "depends_on is {}, expected a list or a mapping; left out",
                    deps.kind()
                ),
            ),
        }
        out
    }

    fn restart(&mut self, policy: &str, line: usize) -> (Option<&'static str>, Option<u64>) {
        let (p, n) = match policy.split_once(':') {
            Some((p, n)) => (p, Some(n)),
            None => (policy, None),
        };
        match (p, n) {
            ("no" | "false", _) => (None, None),
            ("always", _) => (Some("always"), None),
            ("unless-stopped", _) => {
                self.note(line, "restart: unless-stopped became `always` (a service stopped with `gantry stop` stays stopped)");
                (Some("always"), None)
            }
            ("on-failure", None) => (Some("on-failure"), None),
            ("on-failure", Some(n)) => match n.trim().parse::<u64>() {
                Ok(n) if (1..=10_000).contains(&n) => {
                    self.note(line, format!("restart: on-failure:{n} became `restart = \"on-failure\"` with `start_limit = {{ burst = {n}, interval = \"1h\" }}` (at most {n} restarts an hour, not {n} in all)"));
                    (Some("on-failure"), Some(n))
                }
                _ => {
                    self.note(line, format!("restart: `{policy}`: the count is not a number from 1 to 10000; `on-failure` without a limit"));
                    (Some("on-failure"), None)
                }
            },
            _ => {
                self.note(line, format!("restart: `{policy}` is not a compose policy (no, always, on-failure[:N], unless-stopped); left out"));
                (None, None)
            }
        }
    }

    fn signal(&mut self, node: &Node) -> Option<&'static str> {
        let text = node.as_str()?.trim().to_ascii_uppercase();
        let name = text.strip_prefix("SIG").unwrap_or(&text).to_string();
        let sig = match name.as_str() {
            "TERM" | "15" => "SIGTERM",
            "INT" | "2" => "SIGINT",
            "QUIT" | "3" => "SIGQUIT",
            "HUP" | "1" => "SIGHUP",
            "KILL" | "9" => "SIGKILL",
            "USR1" | "10" => "SIGUSR1",
            "USR2" | "12" => "SIGUSR2",
            _ => {
                self.note(node.line, format!("stop_signal `{text}`: gantry sends SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGKILL, SIGUSR1 or SIGUSR2; left out (SIGTERM)"));
                return None;
            }
        };
        Some(sig)
    }

    /// `healthcheck` → a readiness probe of kind exec (in the container for image services).
    fn healthcheck(
        &mut self,
        node: &Node,
        container: Option<&str>,
        s: &mut Service,
    ) -> Option<Probe> {
        let hc = node.get("healthcheck")?;
        if hc.as_map().is_none() {
            self.note(
                hc.line,
                format!("healthcheck is {}, expected a mapping; left out", hc.kind()),
            );
            return None;
        }
        if hc.get("disable").and_then(Node::as_bool) == Some(true) {
            return None;
        }
        for (k, _) in hc.as_map().unwrap_or(&[]) {
            if !matches!(
                k.as_str(),
                Some("test" | "interval" | "timeout" | "retries" | "start_period" | "disable")
            ) {
                self.note(
                    k.line,
                    format!("healthcheck.{} not carried over", k.as_str().unwrap_or("?")),
                );
            }
        }
        let Some(test) = hc.get("test") else {
            self.note(hc.line, "healthcheck without `test` (the image's own HEALTHCHECK is not known here); no readiness probe");
            return None;
        };
        let words: Vec<String> = match &test.value {
            Value::Scalar { text, .. } if !test.is_null() => vec!["CMD-SHELL".into(), text.clone()],
            Value::Seq(_) => self.strings(test, "healthcheck.test"),
            _ => {
                self.note(
                    test.line,
                    format!("healthcheck.test is {}; no readiness probe", test.kind()),
                );
                return None;
            }
        };
        let words: Vec<String> = words
            .iter()
            .map(|w| self.interp(w, "healthcheck.test", test.line))
            .collect();
        let (form, rest) = match words.split_first() {
            Some((f, r)) => (f.as_str(), r.to_vec()),
            None => ("NONE", Vec::new()),
        };
        let mut args: Vec<String> = match container {
            Some(c) => vec!["docker".into(), "exec".into(), c.to_string()],
            None => Vec::new(),
        };
        match form {
            "NONE" => return None,
            "CMD" if !rest.is_empty() => args.extend(rest),
            "CMD-SHELL" if !rest.is_empty() => {
                args.extend(["sh".into(), "-c".into(), rest.join(" ")]);
            }
            other => {
                self.note(test.line, format!("healthcheck.test `{other}` with no command after it, or not one of CMD, CMD-SHELL, NONE; no readiness probe"));
                return None;
            }
        }
        let interval = hc
            .get("interval")
            .and_then(|n| self.duration(n, "healthcheck.interval"));
        let timeout = hc
            .get("timeout")
            .and_then(|n| self.duration(n, "healthcheck.timeout"));
        let start = hc
            .get("start_period")
            .and_then(|n| self.duration(n, "healthcheck.start_period"));
        let retries = hc.get("retries").map(|r| match r.as_u64() {
            Some(n) if (1..=1000).contains(&n) => Some(n),
            _ => {
                self.note(
                    r.line,
                    "healthcheck.retries: not a number from 1 to 1000; gantry's default (3)",
                );
                None
            }
        });
        let positive = |d: Option<Duration>| d.filter(|d| !d.is_zero()).map(fmt);
        let interval_d = interval
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(30));
        if let Some(start) = start.filter(|d| !d.is_zero()) {
            // Compose ignores failures during start_period; gantry waits for readiness up to
            // start_timeout, so the grace goes there.
            let t = Duration::from_secs(60) + start;
            s.start_timeout = Some(fmt(t));
            self.note(hc.line, format!("healthcheck.start_period {} became `start_timeout = \"{}\"` (gantry's 60s plus the start period: how long the service may take to become ready)", fmt(start), fmt(t)));
        }
        Some(Probe {
            exec: Some(Cmd::Args(args)),
            // Compose's defaults when unset: every 30s, 30s timeout, 3 retries.
            period: Some(fmt(interval_d)),
            timeout: Some(match positive(timeout) {
                Some(t) => t,
                // Compose's 30s default, but no longer than the period (gantry warns otherwise).
                None => fmt(interval_d.min(Duration::from_secs(30))),
            }),
            failure_threshold: Some(retries.flatten().unwrap_or(3)),
            ..Probe::default()
        })
    }
}

/// A service with `extends: NAME` (or `{service: NAME}`) of the same file: the base's keys
/// under its own (its own win, key by key at the top level; compose merges some lists deeper,
/// which is reported). `file:` (another file) and chains longer than 10 are reported.
fn extend(src: &str, node: &Node, services: &[(Node, Node)], notes: &mut Vec<Note>) -> Node {
    let mut current = node.clone();
    let mut seen = vec![src.to_string()];
    for _ in 0..10 {
        let Some(ext) = current.get("extends") else {
            return current;
        };
        let line = ext.line;
        let base_name = match (ext.as_str(), ext.get("service").and_then(Node::as_str)) {
            (Some(b), _) | (None, Some(b)) => b.to_string(),
            _ => {
                notes.push(note(
                    line,
                    Some(src),
                    "extends without a service name; left out".into(),
                ));
                return current;
            }
        };
        if let Some(f) = ext.get("file") {
            notes.push(note(
                f.line,
                Some(src),
                format!(
                    "extends a service of another file ({}); not carried over",
                    f.as_str().unwrap_or("?")
                ),
            ));
            return current;
        }
        if seen.contains(&base_name) {
            notes.push(note(
                line,
                Some(src),
                format!("extends `{base_name}` in a loop; left out"),
            ));
            return current;
        }
        let Some(base) = services
            .iter()
            .find(|(k, _)| k.as_str() == Some(base_name.as_str()))
            .map(|(_, v)| v)
        else {
            notes.push(note(
                line,
                Some(src),
                format!("extends `{base_name}`, which is not a service of the file; left out"),
            ));
            return current;
        };
        seen.push(base_name.clone());
        let (Value::Map(own), Value::Map(inherited)) = (&current.value, &base.value) else {
            return current;
        };
        let mut merged: Vec<(Node, Node)> = own
            .iter()
            .filter(|(k, _)| k.as_str() != Some("extends"))
            .cloned()
            .collect();
        let mut deep = Vec::new();
        for (k, v) in inherited {
            match merged.iter().find(|(mk, _)| mk.as_str() == k.as_str()) {
                None => merged.push((k.clone(), v.clone())),
                Some(_)
                    if matches!(
                        k.as_str(),
                        Some(
                            "environment"
                                | "ports"
                                | "volumes"
                                | "depends_on"
                                | "env_file"
                                | "labels"
                        )
                    ) =>
                {
                    deep.push(k.as_str().unwrap_or("?").to_string());
                }
                Some(_) => {}
            }
        }
        if !deep.is_empty() {
            notes.push(note(line, Some(src), format!("extends `{base_name}`: its {} replaced by this service's own (compose would merge them)", deep.join(", "))));
        }
        // The base's own `extends` continues the chain.
        if let Some((k, v)) = inherited
            .iter()
            .find(|(k, _)| k.as_str() == Some("extends"))
        {
            merged.push((k.clone(), v.clone()));
        }
        current = Node {
            value: Value::Map(merged),
            ..current
        };
    }
    notes.push(note(
        node.line,
        Some(src),
        "extends more than 10 deep; the rest left out".into(),
    ));
    current
}

/// A docker memory size (`512m`, `1g`, `1536k`, bytes; units are binary, as docker reads them)
/// as gantry writes it (`512MiB`), at least 1MiB.
fn memory(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    // Docker takes a fraction too (`1.5g`) and truncates to whole bytes.
    let n: f64 = t[..digits].parse().ok()?;
    let shift = match t[digits..].trim() {
        "" | "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        "t" | "tb" => 40,
        _ => return None,
    };
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return None;
    }
    let bytes = bytes as u64;
    if bytes < 1 << 20 {
        return None;
    }
    Some(match bytes {
        b if b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => b.to_string(),
    })
}

/// `8080` or `8000-8009` (at most 100 ports) as a list of ports.
fn port_range(text: &str) -> Option<Vec<u16>> {
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
        None => {
            let p = text.trim().parse::<u16>().ok()?;
            (p, p)
        }
    };
    if a == 0 || b < a || b - a >= 100 {
        return None;
    }
    Some((a..=b).collect())
}

#[cfg(test)]
mod tests;

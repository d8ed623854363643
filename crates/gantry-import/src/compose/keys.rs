//! The `Ctx` methods that translate one compose service key each (docker flags, volumes, ports,
//! depends_on, restart, stop_signal, healthcheck), and the docker sizes and port ranges they read.

use super::Ctx;
use crate::common::fmt;
use crate::emit::{Cmd, Dep, Probe, Service};
use crate::yaml::{Node, Value};
use std::time::Duration;

impl Ctx<'_> {
    pub(super) fn docker_flags(&mut self, node: &Node, args: &mut Vec<String>) {
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

    pub(super) fn volumes(&mut self, node: &Node, args: &mut Vec<String>) {
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
    pub(super) fn ports(&mut self, node: &Node, docker: bool, out: &mut Vec<u16>) -> Vec<String> {
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

    pub(super) fn depends_on(
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

    pub(super) fn restart(
        &mut self,
        policy: &str,
        line: usize,
    ) -> (Option<&'static str>, Option<u64>) {
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

    pub(super) fn signal(&mut self, node: &Node) -> Option<&'static str> {
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
    pub(super) fn healthcheck(
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

/// A docker memory size (`512m`, `1g`, `1536k`, bytes; units are binary, as docker reads them)
/// as gantry writes it (`512MiB`), at least 1MiB.
pub(super) fn memory(text: &str) -> Option<String> {
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

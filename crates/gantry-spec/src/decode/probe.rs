//! Decodes the readiness, liveness and startup probes of a service, with their TLS options, schedule and watchdog.

use super::{Decoder, Value, ingress, join};
use crate::diag::Diagnostic;
use crate::keys;
use crate::model::*;
use std::time::Duration;
use toml::de::{DeTable, DeValue};

impl Decoder<'_> {
    pub(super) fn probe(&mut self, v: &Value<'_>, path: &str) -> Option<Probe> {
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
        if present.is_empty() {
            // Only for the error: built for every probe, the list was ~20 allocations each.
            let kinds = keys::PROBE_KINDS
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
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
            let hint = "write the path of a PEM file (relative to this file), or remove the key";
            d.pem_path(t, path, key, hint).map(|v| v.value)
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

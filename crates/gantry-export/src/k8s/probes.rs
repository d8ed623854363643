//! Probes: the host and port a probe targets, store URLs without their password, and a gantry
//! probe as a Kubernetes probe.

use super::{Options, is_local};
use gantry_spec::{ProbeKind, Service};
use serde_json::{Map, Value, json};

/// Host and port a tcp or http probe targets.
pub(super) fn probe_target(kind: &ProbeKind) -> Option<(String, u16)> {
    let hostport = match kind {
        ProbeKind::Tcp(a) => a.clone(),
        ProbeKind::Http { url, .. } => {
            let rest = url.split_once("://")?.1;
            let hp = rest.split('/').next()?;
            if hp.contains(':') {
                hp.to_string()
            } else if url.starts_with("https") {
                format!("{hp}:443")
            } else {
                format!("{hp}:80")
            }
        }
        _ => return None,
    };
    let (h, p) = hostport.rsplit_once(':')?;
    Some((h.to_string(), p.parse().ok()?))
}

/// Host and port a network store probe's URL names (its scheme's port when it names none).
pub(super) fn store_target(kind: &ProbeKind) -> Option<(String, u16)> {
    let (url, default) = match kind {
        ProbeKind::Postgres(sp) => (&sp.url, 5432),
        ProbeKind::Mysql(sp) => (&sp.url, 3306),
        ProbeKind::Redis(sp) => (&sp.url, 6379),
        ProbeKind::Amqp(sp) => (&sp.url, 5672),
        ProbeKind::Nats(sp) => (&sp.url, 4222),
        _ => return None,
    };
    let rest = url.split_once("://")?.1;
    let hp = rest.rsplit_once('@').map_or(rest, |x| x.1);
    let hp = hp.split(['/', '?']).next()?;
    if hp.is_empty() {
        return None;
    }
    match hp.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), p.parse().ok()?)),
        _ => Some((hp.to_string(), default)),
    }
}

/// A store URL without its password (it would be a secret in the manifest).
pub(super) fn without_password(url: &str) -> (String, bool) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), false);
    };
    let (auth, host) = match rest.split_once('@') {
        Some(x) => x,
        None => return (url.to_string(), false),
    };
    match auth.split_once(':') {
        Some((user, _)) => (format!("{scheme}://{user}@{host}"), true),
        None => (url.to_string(), false),
    }
}

pub(super) fn probe(
    s: &Service,
    p: &gantry_spec::Probe,
    key: &str,
    opts: &Options,
    warnings: &mut Vec<String>,
) -> Option<Value> {
    let mut out = Map::new();
    match &p.kind {
        ProbeKind::Http { url, .. } => {
            let rest = url.split_once("://").map_or(url.as_str(), |x| x.1);
            let path = rest.find('/').map_or("/", |i| &rest[i..]);
            let Some((host, port)) = probe_target(&p.kind) else {
                warnings.push(format!(
                    "{}: {key}: no host:port in `{url}`; left out",
                    s.name.value
                ));
                return None;
            };
            let mut get = Map::new();
            get.insert("path".into(), json!(path));
            get.insert("port".into(), json!(port));
            get.insert(
                "scheme".into(),
                json!(if url.starts_with("https") {
                    "HTTPS"
                } else {
                    "HTTP"
                }),
            );
            if !is_local(&host) {
                get.insert("host".into(), json!(host));
            }
            out.insert("httpGet".into(), Value::Object(get));
        }
        ProbeKind::Tcp(addr) => {
            let Some((host, port)) = probe_target(&p.kind) else {
                warnings.push(format!(
                    "{}: {key}: `{addr}` is not host:port; left out",
                    s.name.value
                ));
                return None;
            };
            let mut t = Map::new();
            t.insert("port".into(), json!(port));
            if !is_local(&host) {
                t.insert("host".into(), json!(host));
            }
            out.insert("tcpSocket".into(), Value::Object(t));
        }
        ProbeKind::Exec(argv) => {
            out.insert("exec".into(), json!({ "command": argv }));
        }
        ProbeKind::Log(_) | ProbeKind::Notify => {
            warnings.push(format!(
                "{}: {key}: a {} probe has no Kubernetes equivalent; left out (add an http, tcp or exec probe)",
                s.name.value,
                p.kind.name()
            ));
            return None;
        }
        store => {
            let url = match store {
                ProbeKind::Postgres(sp)
                | ProbeKind::Mysql(sp)
                | ProbeKind::Redis(sp)
                | ProbeKind::Amqp(sp)
                | ProbeKind::Nats(sp)
                | ProbeKind::Sqlite(sp) => sp.url.clone(),
                _ => return None,
            };
            let (url, stripped) = without_password(&url);
            if stripped {
                warnings.push(format!(
                    "{}: {key}: the {} probe's password is not exported; give `gantry probe` a URL with it from a Secret",
                    s.name.value,
                    store.name()
                ));
            }
            warnings.push(format!(
                "{}: {key}: the {} probe runs `gantry probe` in the container: its image needs the gantry binary (or use {})",
                s.name.value,
                store.name(),
                opts.gantry_image
            ));
            out.insert(
                "exec".into(),
                json!({ "command": ["gantry", "probe", store.name(), url] }),
            );
        }
    }
    let secs = |d: std::time::Duration| d.as_secs_f64().ceil().max(1.0) as u64;
    out.insert(
        "initialDelaySeconds".into(),
        json!(p.initial_delay.0.as_secs()),
    );
    out.insert("periodSeconds".into(), json!(secs(p.period.0)));
    out.insert("timeoutSeconds".into(), json!(secs(p.timeout.0)));
    let success = if key == "readinessProbe" {
        p.success_threshold.max(1)
    } else {
        if p.success_threshold > 1 {
            warnings.push(format!(
                "{}: {key}: success_threshold {} becomes 1 (Kubernetes allows only 1 for liveness and startup probes)",
                s.name.value, p.success_threshold
            ));
        }
        1
    };
    out.insert("successThreshold".into(), json!(success));
    out.insert("failureThreshold".into(), json!(p.failure_threshold.max(1)));
    if p.period.0.subsec_millis() != 0 || p.period.0.as_secs() == 0 {
        warnings.push(format!(
            "{}: {key}: period {:?} rounds up to {} s (Kubernetes counts whole seconds)",
            s.name.value,
            p.period.0,
            secs(p.period.0)
        ));
    }
    Some(Value::Object(out))
}

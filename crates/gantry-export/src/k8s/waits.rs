//! Init containers that wait for hard dependencies (their port, their readiness probe or their
//! Job), and the ServiceAccount and Role of pods that wait for Jobs.

use super::probes::{probe_target, store_target, without_password};
use super::{Export, Options, dns_name, is_local, meta, ports};
use gantry_spec::{Condition, Kind, ProbeKind, Service};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The ServiceAccount (and its Role and RoleBinding) of pods that wait for a Job to complete.
pub(super) const JOB_WAITER: &str = "gantry-job-waiter";

/// How long an init container waits for a dependency to start or be ready.
const WAIT_TIMEOUT: &str = "300s";

/// What a pod's init containers need beyond themselves.
#[derive(Default)]
pub(super) struct Waits {
    pub(super) containers: Vec<Value>,
    /// The Jobs one of them waits for (`kubectl wait`): the pod runs as [`JOB_WAITER`].
    pub(super) jobs: Vec<String>,
}

/// One init container per hard dependency, by its condition: `started` waits for the
/// dependency's TCP port (`gantry wait tcp://…`); `ready` runs the dependency's own readiness
/// probe with `gantry probe KIND TARGET --wait …` until it passes (a probe Kubernetes cannot
/// run from another pod — exec, log, notify, sqlite — falls back to the port, with a warning);
/// `completed` waits for the dependency's Job with `kubectl wait --for=condition=complete`.
pub(super) fn init_containers(
    services: &[Service],
    s: &Service,
    names: &BTreeMap<&str, String>,
    opts: &Options,
    warnings: &mut Vec<String>,
) -> Waits {
    let mut out = Waits::default();
    for dep in s.depends_on.iter().filter(|d| d.required) {
        // The dependency as its pods run it (a replicated one's `${PORT}` resolved).
        let Some(target) = services.iter().find(|x| x.name.value == dep.name.value) else {
            continue;
        };
        let dns = &names[target.name.value.as_str()];
        if dep.condition == Condition::Completed && target.kind != Kind::External {
            let timeout = target
                .start_timeout
                .map_or(gantry_spec::keys::START_TIMEOUT_ONESHOT, |d| d.0)
                .as_secs()
                .max(1);
            let mut command = vec![
                "kubectl".to_string(),
                "wait".into(),
                "--for=condition=complete".into(),
                format!("job/{dns}"),
                format!("--timeout={timeout}s"),
            ];
            if let Some(ns) = &opts.namespace {
                command.push(format!("--namespace={ns}"));
            }
            out.containers.push(json!({
                "name": format!("wait-{dns}"),
                "image": opts.kubectl_image,
                "command": command,
            }));
            out.jobs.push(dns.clone());
            warnings.push(format!(
                "{}: waits for {} to complete: an init container runs `kubectl wait --for=condition=complete job/{dns}` ({}), as ServiceAccount `{JOB_WAITER}`, which may only read that Job; a Job that fails keeps it waiting until --timeout={timeout}s, then the pod restarts",
                s.name.value, dep.name.value, opts.kubectl_image
            ));
            continue;
        }
        let ready = dep.condition != Condition::Started;
        if ready
            && let Some(p) = target.readiness.as_ref()
            && let Some(c) = probe_waiter(s, target, p, dns, opts, warnings)
        {
            out.containers.push(c);
            continue;
        }
        let Some((host, port)) = wait_port(target, dns) else {
            warnings.push(format!(
                "{}: depends on {}, which has no probe or port to wait on; not waited for",
                s.name.value, dep.name.value
            ));
            continue;
        };
        if ready && target.readiness.is_some() {
            warnings.push(format!(
                "{}: waits for {} to be ready: its {} readiness probe cannot run from another pod, so the init container waits for its port {port} only",
                s.name.value,
                dep.name.value,
                target.readiness.as_ref().map_or("", |p| p.kind.name()),
            ));
        }
        out.containers.push(json!({
            "name": format!("wait-{dns}"),
            "image": opts.gantry_image,
            "command": ["gantry", "wait", format!("tcp://{host}:{port}"), "--timeout", WAIT_TIMEOUT],
        }));
    }
    out
}

/// The port a `started` dependency is waited on: its readiness (else startup) probe's target,
/// else its first port; a local host becomes the dependency's Service name.
fn wait_port(target: &Service, dns: &str) -> Option<(String, u16)> {
    let local = |host: String| {
        if is_local(&host) {
            dns.to_string()
        } else {
            host
        }
    };
    [&target.readiness, &target.startup]
        .into_iter()
        .flatten()
        .find_map(|p| probe_target(&p.kind).or_else(|| store_target(&p.kind)))
        .map(|(h, p)| (local(h), p))
        .or_else(|| ports(target).first().map(|p| (dns.to_string(), *p)))
}

/// An init container that runs the dependency's readiness probe with `gantry probe … --wait`
/// until it passes; None for a probe that cannot run from another pod.
fn probe_waiter(
    s: &Service,
    target: &Service,
    p: &gantry_spec::Probe,
    dns: &str,
    opts: &Options,
    warnings: &mut Vec<String>,
) -> Option<Value> {
    let mut env = Vec::new();
    let (kind, probe_target) = match &p.kind {
        ProbeKind::Http {
            url,
            expect_status,
            expect_body,
            ..
        } => {
            if expect_status.is_some() || expect_body.is_some() {
                warnings.push(format!(
                    "{}: waits for {} to be ready: `gantry probe http` accepts any 2xx, not the probe's expect_status / expect_body",
                    s.name.value, target.name.value
                ));
            }
            let (scheme, rest) = url.split_once("://")?;
            let (host, port) = probe_target(&p.kind)?;
            let path = rest.find('/').map_or("/", |i| &rest[i..]);
            let host = if is_local(&host) {
                dns.to_string()
            } else {
                host
            };
            ("http", format!("{scheme}://{host}:{port}{path}"))
        }
        ProbeKind::Tcp(_) => {
            let (host, port) = probe_target(&p.kind)?;
            let host = if is_local(&host) {
                dns.to_string()
            } else {
                host
            };
            ("tcp", format!("{host}:{port}"))
        }
        ProbeKind::Postgres(sp)
        | ProbeKind::Mysql(sp)
        | ProbeKind::Redis(sp)
        | ProbeKind::Amqp(sp)
        | ProbeKind::Nats(sp) => {
            let url = retarget(&sp.url, dns);
            let (bare, had_password) = without_password(&url);
            let arg = if had_password {
                // The URL with its password comes from a Secret the user creates; Kubernetes
                // puts it in the argument ($(VAR) in a command is expanded from the env).
                let secret = dns_name(&format!("{}-probe-url", target.name.value));
                env.push(json!({"name": "GANTRY_PROBE_URL", "valueFrom": {"secretKeyRef": {"name": secret, "key": "value"}}}));
                warnings.push(format!(
                    "{}: waits for {} to be ready with its {} probe: the URL holds a password, so it is read from Secret `{secret}` (key `value`: {bare} with the password); create it",
                    s.name.value,
                    target.name.value,
                    p.kind.name()
                ));
                "$(GANTRY_PROBE_URL)".to_string()
            } else {
                url
            };
            (p.kind.name(), arg)
        }
        _ => return None,
    };
    let secs = |d: std::time::Duration| format!("{}ms", d.as_millis().max(1));
    let mut c = Map::new();
    c.insert("name".into(), json!(format!("wait-{dns}")));
    c.insert("image".into(), json!(opts.gantry_image));
    c.insert(
        "command".into(),
        json!([
            "gantry",
            "probe",
            kind,
            probe_target,
            "--timeout",
            secs(p.timeout.0),
            "--period",
            secs(p.period.0),
            "--wait",
            WAIT_TIMEOUT
        ]),
    );
    if !env.is_empty() {
        c.insert("env".into(), Value::Array(env));
    }
    Some(Value::Object(c))
}

/// A store URL with a local host replaced by the dependency's Service name.
pub(super) fn retarget(url: &str, dns: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, hostpart) = match rest.rsplit_once('@') {
        Some((a, h)) => (format!("{a}@"), h),
        None => (String::new(), rest),
    };
    let end = hostpart.find(['/', '?']).unwrap_or(hostpart.len());
    let (hp, tail) = hostpart.split_at(end);
    let (host, port) = match hp.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => (h, Some(p)),
        _ => (hp, None),
    };
    if !is_local(host) {
        return url.to_string();
    }
    let port = port.map_or(String::new(), |p| format!(":{p}"));
    format!("{scheme}://{auth}{dns}{port}{tail}")
}

/// The ServiceAccount of pods that wait for Jobs, a Role that may only get, list and watch those
/// Jobs (`kubectl wait` lists and watches one by its name), and the RoleBinding between them.
pub(super) fn job_waiter_rbac(ex: &mut Export, jobs: Vec<String>, opts: &Options) {
    let namespace = opts.namespace.clone().unwrap_or_else(|| {
        ex.warnings.push(format!(
            "RoleBinding `{JOB_WAITER}`: its ServiceAccount subject needs a namespace; it says `default` (pass --namespace NS)"
        ));
        "default".to_string()
    });
    ex.manifests.push(meta(
        json!({"apiVersion": "v1", "kind": "ServiceAccount"}),
        JOB_WAITER,
        JOB_WAITER,
        opts,
    ));
    ex.manifests.push(meta(
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "rules": [{
                "apiGroups": ["batch"],
                "resources": ["jobs"],
                "resourceNames": jobs,
                "verbs": ["get", "list", "watch"],
            }],
        }),
        JOB_WAITER,
        JOB_WAITER,
        opts,
    ));
    ex.manifests.push(meta(
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": JOB_WAITER },
            "subjects": [{ "kind": "ServiceAccount", "name": JOB_WAITER, "namespace": namespace }],
        }),
        JOB_WAITER,
        JOB_WAITER,
        opts,
    ));
}

//! The translation: each service to a workload (Deployment, a StatefulSet with a volume and a
//! headless Service for one with `data_dir`, or a Job for tasks and migrations),
//! a Service for its ports, a ConfigMap for its environment, Secret references for its secrets,
//! init containers that `gantry wait` for its hard dependencies, its probes, limits, stop signal
//! and priority.

use gantry_spec::{Kind, Priority, ProbeKind, Restart, Service, Spec};
use probes::{probe, probe_target, store_target};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use waits::{JOB_WAITER, init_containers, job_waiter_rbac};

/// What the user passes on the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub namespace: Option<String>,
    /// Service name → container image.
    pub images: BTreeMap<String, String>,
    /// The image of services not in `images`; None: a placeholder and a warning.
    pub default_image: Option<String>,
    /// An image with the gantry binary, for init containers (`gantry wait`, `gantry probe`) and
    /// store probes (`gantry probe`).
    pub gantry_image: String,
    /// An image with kubectl, for init containers that wait for a Job to complete.
    pub kubectl_image: String,
}

/// The manifests and what did not translate.
#[derive(Debug, Clone, Default)]
pub struct Export {
    pub manifests: Vec<Value>,
    pub warnings: Vec<String>,
}

/// The placeholder image of a service the image map does not name.
const NO_IMAGE: &str = "REPLACE-WITH-IMAGE";

/// Translates a validated spec.
pub fn kubernetes(spec: &Spec, opts: &Options) -> Export {
    let mut ex = Export::default();
    let names: BTreeMap<&str, String> = spec
        .services
        .iter()
        .map(|s| (s.name.value.as_str(), dns_name(&s.name.value)))
        .collect();
    for (orig, dns) in &names {
        if orig != dns {
            ex.warnings.push(format!(
                "{orig}: named `{dns}` in Kubernetes (names are lower-case letters, digits and `-`)"
            ));
        }
    }
    if spec.layers.is_some() {
        ex.warnings.push(
            "[layers]: Kubernetes has no layer barrier; only each service's own dependencies are waited for (init containers)".into(),
        );
    }
    if spec.ingress.is_some() {
        ex.warnings.push(
            "[ingress]: not translated; put an Ingress or Gateway in front of the Services".into(),
        );
    }
    if spec.cluster.is_some() {
        ex.warnings.push(
            "[cluster]: not translated; Kubernetes reschedules a failed pod itself (hot standby between gantry instances has no equivalent there)".into(),
        );
    }
    let mut priorities = std::collections::BTreeSet::new();
    let mut waited_jobs = std::collections::BTreeSet::new();
    let pods: Vec<Service> = spec
        .services
        .iter()
        .map(|s| pod_view(s, &mut ex.warnings))
        .collect();
    for s in &pods {
        let name = &names[s.name.value.as_str()];
        match s.kind {
            Kind::External => {
                ex.warnings.push(format!(
                    "{}: external, not deployed (services that depend on it still wait for it)",
                    s.name.value
                ));
                continue;
            }
            Kind::Process | Kind::Task | Kind::Migrate => {}
        }
        priorities.insert(s.priority);
        let image = match opts
            .images
            .get(&s.name.value)
            .or(opts.default_image.as_ref())
        {
            Some(i) => i.clone(),
            None => {
                ex.warnings.push(format!(
                    "{}: no image; pass --image-map {}=IMAGE (the manifest says {NO_IMAGE})",
                    s.name.value, s.name.value
                ));
                NO_IMAGE.to_string()
            }
        };
        let env_name = format!("{name}-env");
        let (config, secret_refs) = environment(spec, s, &mut ex.warnings);
        if !config.is_empty() {
            ex.manifests.push(meta(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "data": config}),
                &env_name,
                name,
                opts,
            ));
        }
        let mut container = Map::new();
        container.insert("name".into(), json!(name));
        container.insert("image".into(), json!(image));
        match s.kind {
            Kind::Migrate => {
                let dir = s.migrate.as_ref().map_or("migrations", |m| m.dir.as_str());
                container.insert("image".into(), json!(opts.gantry_image));
                container.insert(
                    "command".into(),
                    json!([
                        "gantry",
                        "-f",
                        "/etc/gantry/gantry.toml",
                        "migrate",
                        "--service",
                        s.name.value,
                        "up"
                    ]),
                );
                ex.warnings.push(format!(
                    "{}: the migrate Job runs `gantry migrate up` in the gantry image: mount gantry.toml at /etc/gantry/ with `{dir}` beside it, and give it the database's secrets",
                    s.name.value
                ));
            }
            _ => {
                if let Some(cmd) = &s.command {
                    container.insert("command".into(), json!(cmd.value));
                }
            }
        }
        if let Some(wd) = &s.working_dir {
            container.insert("workingDir".into(), json!(wd));
        }
        if !config.is_empty() {
            container.insert(
                "envFrom".into(),
                json!([{"configMapRef": {"name": env_name}}]),
            );
        }
        if !secret_refs.is_empty() {
            container.insert("env".into(), Value::Array(secret_refs));
        }
        let ports = ports(s);
        if !ports.is_empty() {
            container.insert(
                "ports".into(),
                Value::Array(
                    ports
                        .iter()
                        .map(|p| json!({"containerPort": p, "protocol": "TCP"}))
                        .collect(),
                ),
            );
        }
        for (role, key) in [
            (&s.readiness, "readinessProbe"),
            (&s.liveness, "livenessProbe"),
            (&s.startup, "startupProbe"),
        ] {
            if let Some(p) = role
                && let Some(probe) = probe(s, p, key, opts, &mut ex.warnings)
            {
                container.insert(key.into(), probe);
            }
        }
        let mut limits = Map::new();
        if let Some(m) = s.limits.memory_max {
            limits.insert("memory".into(), json!(m.to_string()));
        }
        if let Some(c) = s.limits.cpu_max {
            limits.insert("cpu".into(), json!(format!("{}m", c.0)));
        }
        if !limits.is_empty() {
            container.insert("resources".into(), json!({ "limits": limits }));
        }
        let signal = s
            .stop_signal
            .value
            .trim_start_matches("SIG")
            .to_ascii_uppercase();
        if signal != "TERM" {
            container.insert(
                "lifecycle".into(),
                json!({"preStop": {"exec": {"command": ["/bin/sh", "-c", format!("kill -{signal} 1")]}}}),
            );
            ex.warnings.push(format!(
                "{}: stop_signal {signal} becomes a preStop hook `kill -{signal} 1` (the image needs /bin/sh; Kubernetes then sends SIGTERM)",
                s.name.value
            ));
        }
        let data = s.data_dir.as_ref().map(|d| {
            let path = mount_path(s, &d.value, &mut ex.warnings);
            container.insert(
                "volumeMounts".into(),
                json!([{ "name": DATA_VOLUME, "mountPath": path }]),
            );
            quantity(s.data_size.unwrap_or(gantry_spec::keys::DATA_SIZE))
        });
        let mut pod = Map::new();
        let waits = init_containers(&pods, s, &names, opts, &mut ex.warnings);
        if !waits.containers.is_empty() {
            pod.insert("initContainers".into(), Value::Array(waits.containers));
        }
        if !waits.jobs.is_empty() {
            pod.insert("serviceAccountName".into(), json!(JOB_WAITER));
            waited_jobs.extend(waits.jobs);
        }
        pod.insert("containers".into(), json!([container]));
        pod.insert(
            "terminationGracePeriodSeconds".into(),
            json!(s.stop_timeout.0.as_secs().max(1)),
        );
        pod.insert(
            "priorityClassName".into(),
            json!(priority_class(s.priority)),
        );
        let labels =
            json!({ "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "gantry" });
        match s.kind {
            Kind::Process => {
                pod.insert("restartPolicy".into(), json!("Always"));
                if s.restart != Restart::Always && data.is_none() {
                    ex.warnings.push(format!(
                        "{}: restart = {:?} — a Deployment always restarts its pods",
                        s.name.value, s.restart
                    ));
                }
                let replicas = s.replicas.as_ref().map_or(1, |r| r.count.value);
                if let Some(size) = &data {
                    let headless = format!("{name}-headless");
                    ex.manifests.push(meta(
                        json!({
                            "apiVersion": "apps/v1", "kind": "StatefulSet",
                            "spec": {
                                "serviceName": headless,
                                "replicas": replicas,
                                "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
                                "template": { "metadata": { "labels": labels }, "spec": pod },
                                "volumeClaimTemplates": [{
                                    "metadata": { "name": DATA_VOLUME },
                                    "spec": {
                                        "accessModes": ["ReadWriteOnce"],
                                        "resources": { "requests": { "storage": size } },
                                    },
                                }],
                            }
                        }),
                        name,
                        name,
                        opts,
                    ));
                    // The StatefulSet's governing Service: one DNS name per pod
                    // (NAME-0.NAME-headless), no load balancing.
                    let mut spec = Map::new();
                    spec.insert("clusterIP".into(), json!("None"));
                    spec.insert("selector".into(), json!({ "app.kubernetes.io/name": name }));
                    spec.insert("publishNotReadyAddresses".into(), json!(true));
                    if !ports.is_empty() {
                        spec.insert("ports".into(), service_ports(&ports));
                    }
                    ex.manifests.push(meta(
                        json!({ "apiVersion": "v1", "kind": "Service", "spec": spec }),
                        &headless,
                        name,
                        opts,
                    ));
                    if s.restart != Restart::Always {
                        ex.warnings.push(format!(
                            "{}: restart = {:?} — a StatefulSet always restarts its pods",
                            s.name.value, s.restart
                        ));
                    }
                    ex.warnings.push(format!(
                        "{}: keeps data in {}: a StatefulSet with a {size} volume per pod (PersistentVolumeClaims `{DATA_VOLUME}-{name}-N`, the cluster's default StorageClass); deleting the StatefulSet keeps them",
                        s.name.value,
                        s.data_dir.as_ref().map_or("", |d| d.value.as_str()),
                    ));
                } else {
                    ex.manifests.push(meta(
                        json!({
                            "apiVersion": "apps/v1", "kind": "Deployment",
                            "spec": {
                                "replicas": replicas,
                                "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
                                "template": { "metadata": { "labels": labels }, "spec": pod },
                            }
                        }),
                        name,
                        name,
                        opts,
                    ));
                }
            }
            _ => {
                pod.insert("restartPolicy".into(), json!("Never"));
                ex.manifests.push(meta(
                    json!({
                        "apiVersion": "batch/v1", "kind": "Job",
                        "spec": {
                            "backoffLimit": s.retry.attempts.saturating_sub(1),
                            "template": { "metadata": { "labels": labels }, "spec": pod },
                        }
                    }),
                    name,
                    name,
                    opts,
                ));
            }
        }
        if !ports.is_empty() && s.kind == Kind::Process {
            ex.manifests.push(meta(
                json!({
                    "apiVersion": "v1", "kind": "Service",
                    "spec": {
                        "selector": { "app.kubernetes.io/name": name },
                        "ports": service_ports(&ports),
                    }
                }),
                name,
                name,
                opts,
            ));
        }
        if s.cleanup.is_some() {
            ex.warnings.push(format!(
                "{}: cleanup is not translated (no Kubernetes equivalent after a pod's exit)",
                s.name.value
            ));
        }
        if s.remediate.is_some() {
            ex.warnings
                .push(format!("{}: remediate is not translated", s.name.value));
        }
    }
    if !waited_jobs.is_empty() {
        job_waiter_rbac(&mut ex, waited_jobs.into_iter().collect(), opts);
    }
    for p in priorities {
        let value = match p {
            Priority::Critical => 1_000_000,
            Priority::High => 100_000,
            Priority::Medium => 10_000,
            Priority::Low => 1_000,
        };
        ex.manifests.insert(
            0,
            json!({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": { "name": priority_class(p), "labels": { "app.kubernetes.io/part-of": "gantry" } },
                "value": value,
                "globalDefault": false,
                "description": format!("gantry priority {p:?}"),
            }),
        );
    }
    ex
}

/// The name of a stateful service's volume (its claims are `data-NAME-0`, `data-NAME-1`, …).
const DATA_VOLUME: &str = "data";

/// A Service's `ports` for these TCP ports.
fn service_ports(ports: &[u16]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| json!({"name": format!("tcp-{p}"), "port": p, "targetPort": p, "protocol": "TCP"}))
            .collect(),
    )
}

/// Bytes as a Kubernetes quantity: the largest binary suffix that divides them (`1Gi`, `512Mi`).
fn quantity(bytes: u64) -> String {
    for (shift, suffix) in [(40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Where `data_dir` is mounted: an absolute path as written; a relative one (relative to the
/// file on the host) below an absolute `working_dir`, else below `/`, with a warning.
fn mount_path(s: &Service, dir: &str, warnings: &mut Vec<String>) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.starts_with('/') {
        return dir.to_string();
    }
    let rel = dir.trim_start_matches("./");
    let base = s
        .working_dir
        .as_deref()
        .filter(|w| w.starts_with('/'))
        .map_or(String::new(), |w| w.trim_end_matches('/').to_string());
    let path = if rel.is_empty() || rel == "." {
        if base.is_empty() {
            "/data".to_string()
        } else {
            base
        }
    } else {
        format!("{base}/{rel}")
    };
    warnings.push(format!(
        "{}: data_dir `{dir}` is relative to the file on this host; the volume is mounted at {path} in the pod (write an absolute data_dir to choose)",
        s.name.value
    ));
    path
}

fn priority_class(p: Priority) -> String {
    format!("gantry-{}", format!("{p:?}").to_ascii_lowercase())
}

/// A replicated service as every pod runs it: `${PORT}` is the first instance's port (all pods
/// listen on the same one), `${REPLICA}` has no equivalent (pods are interchangeable).
fn pod_view(s: &Service, warnings: &mut Vec<String>) -> Service {
    let Some(r) = &s.replicas else {
        return s.clone();
    };
    let port = r.ports.as_ref().map(|p| p.first);
    let mut uses_replica = false;
    let mut sub = |text: &str| {
        uses_replica |= text.contains("${REPLICA}");
        gantry_spec::interp::instance_vars(text, port, 1)
    };
    let mut p = s.clone();
    if let Some(c) = &mut p.command {
        c.value = c.value.iter().map(|a| sub(a)).collect();
    }
    for var in &mut p.env {
        var.value.value = sub(&var.value.value);
    }
    if let Some(u) = &mut p.upstream {
        u.value = sub(&u.value);
    }
    if let Some(d) = &mut p.data_dir {
        d.value = sub(&d.value);
    }
    for probe in [&mut p.readiness, &mut p.liveness, &mut p.startup]
        .into_iter()
        .flatten()
    {
        match &mut probe.kind {
            ProbeKind::Exec(argv) => *argv = argv.iter().map(|a| sub(a)).collect(),
            ProbeKind::Http { url, .. } => *url = sub(url),
            ProbeKind::Tcp(a) => *a = sub(a),
            _ => {}
        }
    }
    if uses_replica {
        warnings.push(format!(
            "{}: ${{REPLICA}} has no Kubernetes equivalent (pods are interchangeable); it is 1 in every pod — use $(HOSTNAME) for a per-pod name",
            s.name.value
        ));
    }
    p
}

/// `metadata` with the name, the namespace and gantry's labels.
pub(super) fn meta(mut doc: Value, name: &str, app: &str, opts: &Options) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(ns) = &opts.namespace {
        m.insert("namespace".into(), json!(ns));
    }
    m.insert(
        "labels".into(),
        json!({ "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "gantry", "app.kubernetes.io/managed-by": "gantry-export" }),
    );
    if let Value::Object(o) = &mut doc {
        o.insert("metadata".into(), Value::Object(m));
    }
    doc
}

/// A DNS-1123 label: lower case, `[a-z0-9-]`, at most 63, starting and ending alphanumeric.
pub(super) fn dns_name(name: &str) -> String {
    let mut s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(63);
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "service".into() } else { s }
}

/// Variables whose names say they hold a secret go to a Secret reference even when written
/// as plain env (their value is never exported).
fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "PRIVATE_KEY",
        "API_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The ConfigMap data and the Secret references of a service's environment.
fn environment(
    spec: &Spec,
    s: &Service,
    warnings: &mut Vec<String>,
) -> (Map<String, Value>, Vec<Value>) {
    let mut data = Map::new();
    let mut refs = Vec::new();
    let secret_ref = |var: &str, secret: &str| json!({"name": var, "valueFrom": {"secretKeyRef": {"name": dns_name(secret), "key": "value"}}});
    for var in spec.env.iter().chain(&s.env) {
        let name = &var.name.value;
        if name == "PORT" || name == "REPLICA" {
            continue;
        }
        if looks_secret(name) {
            refs.push(secret_ref(name, &format!("{}-{name}", s.name.value)));
            warnings.push(format!(
                "{}: {name} looks like a secret: referenced from Secret `{}` (key `value`), its value not exported",
                s.name.value,
                dns_name(&format!("{}-{name}", s.name.value))
            ));
        } else {
            data.insert(name.clone(), json!(var.value.value));
        }
    }
    if !spec.env_file.is_empty() || !s.env_file.is_empty() {
        warnings.push(format!(
            "{}: env_file is not read by the export; add its variables to the ConfigMap `{}-env`",
            s.name.value,
            dns_name(&s.name.value)
        ));
    }
    for secret in &spec.secrets {
        if secret.services.iter().any(|x| x.value == s.name.value) {
            let var = secret
                .env
                .clone()
                .unwrap_or_else(|| secret.name.value.clone());
            refs.push(secret_ref(&var, &secret.name.value));
        }
    }
    (data, refs)
}

/// The TCP ports a service listens on: its `ports`, its upstream's, a replicated service's
/// first instance port (every pod uses the same one), and its own loopback probe ports.
pub(super) fn ports(s: &Service) -> Vec<u16> {
    let mut out: Vec<u16> = s.ports.clone();
    if let Some(u) = &s.upstream
        && let Some(p) = u.value.rsplit(':').next().and_then(|p| p.parse().ok())
    {
        out.push(p);
    }
    if let Some(r) = &s.replicas
        && let Some(range) = &r.ports
    {
        out.push(range.first);
    }
    for p in [&s.readiness, &s.liveness, &s.startup]
        .into_iter()
        .flatten()
    {
        if let Some((host, port)) = probe_target(&p.kind).or_else(|| store_target(&p.kind))
            && is_local(&host)
        {
            out.push(port);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

pub(super) fn is_local(host: &str) -> bool {
    matches!(
        host,
        "127.0.0.1" | "localhost" | "::1" | "[::1]" | "0.0.0.0"
    )
}

mod probes;
mod waits;

#[cfg(test)]
mod tests;

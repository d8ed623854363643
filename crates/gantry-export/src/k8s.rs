//! The translation: each service to a workload (Deployment, a StatefulSet with a volume and a
//! headless Service for one with `data_dir`, or a Job for tasks and migrations),
//! a Service for its ports, a ConfigMap for its environment, Secret references for its secrets,
//! init containers that `gantry wait` for its hard dependencies, its probes, limits, stop signal
//! and priority.

use gantry_spec::{Condition, Kind, Priority, ProbeKind, Restart, Service, Spec};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

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

/// The ServiceAccount of pods that wait for Jobs, a Role that may only get, list and watch those
/// Jobs (`kubectl wait` lists and watches one by its name), and the RoleBinding between them.
fn job_waiter_rbac(ex: &mut Export, jobs: Vec<String>, opts: &Options) {
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
fn meta(mut doc: Value, name: &str, app: &str, opts: &Options) -> Value {
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
fn dns_name(name: &str) -> String {
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
fn ports(s: &Service) -> Vec<u16> {
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

fn is_local(host: &str) -> bool {
    matches!(
        host,
        "127.0.0.1" | "localhost" | "::1" | "[::1]" | "0.0.0.0"
    )
}

/// Host and port a tcp or http probe targets.
fn probe_target(kind: &ProbeKind) -> Option<(String, u16)> {
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
fn store_target(kind: &ProbeKind) -> Option<(String, u16)> {
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
fn without_password(url: &str) -> (String, bool) {
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

fn probe(
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

/// The ServiceAccount (and its Role and RoleBinding) of pods that wait for a Job to complete.
const JOB_WAITER: &str = "gantry-job-waiter";

/// How long an init container waits for a dependency to start or be ready.
const WAIT_TIMEOUT: &str = "300s";

/// What a pod's init containers need beyond themselves.
#[derive(Default)]
struct Waits {
    containers: Vec<Value>,
    /// The Jobs one of them waits for (`kubectl wait`): the pod runs as [`JOB_WAITER`].
    jobs: Vec<String>,
}

/// One init container per hard dependency, by its condition: `started` waits for the
/// dependency's TCP port (`gantry wait tcp://…`); `ready` runs the dependency's own readiness
/// probe with `gantry probe KIND TARGET --wait …` until it passes (a probe Kubernetes cannot
/// run from another pod — exec, log, notify, sqlite — falls back to the port, with a warning);
/// `completed` waits for the dependency's Job with `kubectl wait --for=condition=complete`.
fn init_containers(
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
fn retarget(url: &str, dns: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_become_the_largest_binary_quantity_that_divides_them() {
        assert_eq!(quantity(1 << 30), "1Gi");
        assert_eq!(quantity(20 << 30), "20Gi");
        assert_eq!(quantity(1536 << 20), "1536Mi");
        assert_eq!(quantity(2 << 40), "2Ti");
        assert_eq!(quantity((1 << 20) + 1), "1048577");
    }

    #[test]
    fn store_urls_name_their_host_and_port_and_move_to_the_service() {
        let pg = |url: &str| {
            ProbeKind::Postgres(gantry_spec::StoreProbe {
                url: url.into(),
                rw: false,
                queues: Vec::new(),
                require_dlq: false,
                streams: Vec::new(),
                tls: Default::default(),
            })
        };
        assert_eq!(
            store_target(&pg("postgres://u:p@127.0.0.1:5433/app")),
            Some(("127.0.0.1".into(), 5433))
        );
        assert_eq!(
            store_target(&pg("postgres://db.internal/app?sslmode=require")),
            Some(("db.internal".into(), 5432))
        );
        assert_eq!(store_target(&pg("postgres:///app")), None);
        assert_eq!(
            retarget("postgres://u:p@127.0.0.1:5433/app?x=1", "db-main"),
            "postgres://u:p@db-main:5433/app?x=1"
        );
        assert_eq!(retarget("redis://localhost/0", "cache"), "redis://cache/0");
        assert_eq!(
            retarget("redis://redis.internal:6379/0", "cache"),
            "redis://redis.internal:6379/0"
        );
    }
}

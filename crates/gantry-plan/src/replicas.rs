//! Expands a service with `replicas = N` into N units `NAME.1` … `NAME.N`, each with its own `${PORT}` and `${REPLICA}`, and keeps the mapping service → instances.

use gantry_spec::interp::instance_vars;
use gantry_spec::{EnvVar, Instance, ProbeKind, Service, Sp, Spec, instance_name};

/// The instances of one replicated service, in replica order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaGroup {
    /// The service's name in the file (`api`).
    pub service: String,
    /// Indices into `Plan::units`: `api.1`, `api.2`, …
    pub units: Vec<usize>,
}

/// The units' services in file order (an instance per replica in place of a replicated
/// service) and the groups, whose indices point into that list.
pub(crate) fn expand(spec: &Spec) -> (Vec<Service>, Vec<ReplicaGroup>) {
    let mut out = Vec::with_capacity(spec.services.len());
    let mut groups = Vec::new();
    for s in &spec.services {
        let Some(r) = &s.replicas else {
            out.push(s.clone());
            continue;
        };
        let mut units = Vec::with_capacity(r.count.value as usize);
        for replica in 1..=r.count.value {
            units.push(out.len());
            out.push(instance(s, replica, r.port(replica)));
        }
        groups.push(ReplicaGroup {
            service: s.name.value.clone(),
            units,
        });
    }
    (out, groups)
}

/// Instance `replica` of `s`: named `NAME.replica`, `${PORT}` / `${REPLICA}` replaced in
/// every string, `PORT` and `REPLICA` in its environment, its port among `ports` (so the
/// pre-flight checks it is free) and, without an `upstream`, `127.0.0.1:PORT` as its
/// address for the ingress.
fn instance(s: &Service, replica: u32, port: Option<u16>) -> Service {
    let sub = |text: &str| instance_vars(text, port, replica);
    let mut i = s.clone();
    i.name = Sp::new(instance_name(&s.name.value, replica), s.name.span.clone());
    if let Some(c) = &mut i.command {
        c.value = c.value.iter().map(|a| sub(a)).collect();
    }
    for var in &mut i.env {
        var.value.value = sub(&var.value.value);
    }
    let at = s.name.span.clone();
    let mut set = |name: &str, value: String| {
        i.env.retain(|e| e.name.value != name);
        i.env.push(EnvVar {
            name: Sp::new(name.to_string(), at.clone()),
            value: Sp::new(value, at.clone()),
        });
    };
    set("REPLICA", replica.to_string());
    if let Some(p) = port {
        set("PORT", p.to_string());
    }
    for f in &mut i.env_file {
        f.value = sub(&f.value);
    }
    i.working_dir = i.working_dir.as_deref().map(sub);
    for argv in [&mut i.cleanup, &mut i.preflight, &mut i.remediate]
        .into_iter()
        .flatten()
    {
        *argv = argv.iter().map(|a| sub(a)).collect();
    }
    for probe in [&mut i.readiness, &mut i.liveness, &mut i.startup]
        .into_iter()
        .flatten()
    {
        substitute_probe(&mut probe.kind, &sub);
    }
    if let Some(u) = &mut i.upstream {
        u.value = sub(&u.value);
    } else if let Some(p) = port {
        i.upstream = Some(Sp::new(format!("127.0.0.1:{p}"), s.name.span.clone()));
    }
    if let Some(p) = port
        && !i.ports.contains(&p)
    {
        i.ports.push(p);
    }
    i.replicas = None;
    i.instance = Some(Box::new(Instance {
        service: s.name.value.clone(),
        replica,
        port,
    }));
    i
}

/// An extra instance of replicated service `s` named `name` (a blue/green rollout's green
/// instance): like instance `replica`, with its own `port` in every string of the service.
pub fn extra_instance(s: &Service, name: &str, replica: u32, port: u16) -> Service {
    let mut i = instance(s, replica, Some(port));
    i.name = Sp::new(name.to_string(), s.name.span.clone());
    i
}

fn substitute_probe(kind: &mut ProbeKind, sub: &dyn Fn(&str) -> String) {
    match kind {
        ProbeKind::Exec(argv) => *argv = argv.iter().map(|a| sub(a)).collect(),
        ProbeKind::Http {
            url, expect_body, ..
        } => {
            *url = sub(url);
            *expect_body = expect_body.as_deref().map(sub);
        }
        ProbeKind::Tcp(addr) => *addr = sub(addr),
        ProbeKind::Log(pattern) => {
            let text = sub(pattern.as_str());
            if text != pattern.as_str()
                && let Ok(p) = gantry_spec::LogPattern::new(&text)
            {
                *pattern = p;
            }
        }
        ProbeKind::Notify => {}
        ProbeKind::Postgres(s)
        | ProbeKind::Mysql(s)
        | ProbeKind::Redis(s)
        | ProbeKind::Amqp(s)
        | ProbeKind::Nats(s)
        | ProbeKind::Sqlite(s) => s.url = sub(&s.url),
    }
}

//! Builds and validates the plan: resolves names, finds cycles, checks layers and conditions, computes waves and the critical path.

use gantry_spec::diag::did_you_mean;
use gantry_spec::{Condition, Diagnostic, Service, Source, Spec};
use std::collections::HashMap;
use std::time::Duration;

/// Per-service time to ready from the last recorded boot, by name.
pub type Timings = HashMap<String, Duration>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanDep {
    pub unit: usize,
    pub condition: Condition,
    pub required: bool,
    /// One instance of a replicated service: the dependent waits for every instance at the
    /// boot, but one instance going down later (a rolling restart, a crash the ingress
    /// routes around) does not stop or restart it — the engine sees a soft dependency.
    pub instance: bool,
}

#[derive(Debug, Clone)]
pub struct PlanUnit {
    pub service: Service,
    pub deps: Vec<PlanDep>,
    /// Units that depend on this one (hard or soft).
    pub dependents: Vec<usize>,
    /// Index into `Plan::layers`; 0 when no layers are declared.
    pub layer: usize,
    /// 0-based start wave: everything in one wave can start in parallel.
    pub wave: usize,
    /// The weight used for the critical path.
    pub expected: Duration,
}

impl PlanUnit {
    pub fn name(&self) -> &str {
        &self.service.name.value
    }
}

/// The validated graph the engine runs.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub units: Vec<PlanUnit>,
    /// Layer names in order; empty when the file declares none.
    pub layers: Vec<String>,
    pub waves: Vec<Vec<usize>>,
    /// Longest expected chain from a root to a leaf.
    pub critical_path: Vec<usize>,
    pub critical_time: Duration,
    /// Whether the weights came from recorded boots or hints (otherwise every unit weighs 1).
    pub timed: bool,
    /// The instances of each service with `replicas` (file order). Such a service has no
    /// unit of its own: its instances `NAME.1` … `NAME.N` are the units, and a dependent
    /// of `NAME` depends on every one of them (it starts when all meet the condition).
    pub replica_groups: Vec<crate::ReplicaGroup>,
}

impl Plan {
    pub fn index(&self, name: &str) -> Option<usize> {
        self.units.iter().position(|u| u.name() == name)
    }

    /// The units a name in the file stands for: the unit of that name, or every instance
    /// of a replicated service; None when neither exists.
    pub fn units_of(&self, name: &str) -> Option<Vec<usize>> {
        if let Some(i) = self.index(name) {
            return Some(vec![i]);
        }
        self.replica_group(name).map(|g| g.units.clone())
    }

    /// The instances of replicated service `service`.
    pub fn replica_group(&self, service: &str) -> Option<&crate::ReplicaGroup> {
        self.replica_groups.iter().find(|g| g.service == service)
    }

    /// Where the ingress sends `service`'s traffic: each of its units' name and `upstream`
    /// (for a replicated service, its instances `api.1` = `127.0.0.1:9100`, …). Empty when
    /// the service does not exist; an address is None when the service has none.
    pub fn upstreams(&self, service: &str) -> Vec<(&str, Option<&str>)> {
        self.units_of(service)
            .unwrap_or_default()
            .into_iter()
            .map(|i| {
                let u = &self.units[i];
                (
                    u.name(),
                    u.service.upstream.as_ref().map(|a| a.value.as_str()),
                )
            })
            .collect()
    }

    pub fn edge_count(&self) -> usize {
        self.units.iter().map(|u| u.deps.len()).sum()
    }
}

/// Validates `spec` and builds the plan. Diagnostics include every problem found;
/// the plan is only meaningful when none of them is an error.
pub fn build(spec: &Spec, source: &Source, timings: &Timings) -> (Plan, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let (services, replica_groups) = crate::replicas::expand(spec);
    // A name in the file stands for one unit, or for every instance of a replicated service.
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::with_capacity(services.len());
    for (i, s) in services.iter().enumerate() {
        by_name.insert(s.name.value.as_str(), vec![i]);
    }
    for g in &replica_groups {
        by_name.insert(g.service.as_str(), g.units.clone());
    }
    let layers: Vec<String> = spec
        .layers
        .as_ref()
        .map(|l| l.order.iter().map(|n| n.value.clone()).collect())
        .unwrap_or_default();
    if let Some(l) = &spec.layers {
        let mut seen = HashMap::new();
        for name in &l.order {
            if seen.insert(name.value.as_str(), ()).is_some() {
                diags.push(
                    Diagnostic::error(
                        "duplicate-name",
                        format!("layer `{}` appears twice in the order", name.value),
                    )
                    .key("layers.order")
                    .at(name.span.clone())
                    .hint("list each layer once"),
                );
            }
        }
    }

    let mut units: Vec<PlanUnit> = Vec::with_capacity(services.len());
    for s in &services {
        let path = format!("services.{}", s.name.value);
        let mut deps = Vec::with_capacity(s.depends_on.len());
        for d in &s.depends_on {
            let key = format!("{path}.depends_on");
            let Some(targets) = by_name.get(d.name.value.as_str()) else {
                let mut diag = Diagnostic::error(
                    "unknown-dependency",
                    format!("unknown service `{}`", d.name.value),
                )
                .key(key)
                .at(d.name.span.clone());
                diag = match did_you_mean(
                    &d.name.value,
                    spec.services.iter().map(|s| s.name.value.as_str()),
                ) {
                    Some(m) => diag.hint(format!("did you mean `{m}`?")),
                    None => diag.hint("declare it as [services.NAME], or remove the dependency"),
                };
                diags.push(diag);
                continue;
            };
            if deps.iter().any(|x: &PlanDep| targets.contains(&x.unit)) {
                diags.push(
                    Diagnostic::warning(
                        "duplicate-dependency",
                        format!("`{}` is listed twice", d.name.value),
                    )
                    .key(key)
                    .at(d.name.span.clone())
                    .hint("remove the repeated entry"),
                );
                continue;
            }
            let dep = &services[targets[0]];
            match d.condition {
                Condition::Completed if !dep.kind.is_oneshot() => diags.push(
                    Diagnostic::error(
                        "bad-condition",
                        format!("`{}` is not a task, so it never completes", d.name.value),
                    )
                    .key(format!("{key}.{}", d.name.value))
                    .at(d.name.span.clone())
                    .hint(format!("use \"ready\" or \"started\", or set kind = \"task\" on `{}`", d.name.value)),
                ),
                Condition::Ready if dep.readiness.is_none() && !dep.kind.is_oneshot() => diags.push(
                    Diagnostic::warning(
                        "no-readiness-probe",
                        format!("`{}` has no readiness probe, so \"ready\" means only \"started\"", d.name.value),
                    )
                    .key(format!("{key}.{}", d.name.value))
                    .at(d.name.span.clone())
                    .hint(format!("add readiness = {{ tcp = \"host:port\" }} (or http, exec, log, notify) to `{}`", d.name.value)),
                ),
                _ => {}
            }
            let group = targets.len() > 1;
            deps.extend(targets.iter().map(|&unit| PlanDep {
                unit,
                condition: d.condition,
                required: d.required,
                instance: group,
            }));
        }
        let mut layer = 0;
        if let Some(l) = &s.layer {
            match layers.iter().position(|n| *n == l.value) {
                Some(i) => layer = i,
                None if layers.is_empty() => diags.push(
                    Diagnostic::error(
                        "unknown-layer",
                        format!("layer `{}` is used but no layers are declared", l.value),
                    )
                    .key(format!("{path}.layer"))
                    .at(l.span.clone())
                    .hint(format!(
                        "declare the order: [layers] order = [\"{}\"]",
                        l.value
                    )),
                ),
                None => {
                    let d = Diagnostic::error(
                        "unknown-layer",
                        format!("layer `{}` is not in [layers] order", l.value),
                    )
                    .key(format!("{path}.layer"))
                    .at(l.span.clone());
                    diags.push(
                        match did_you_mean(&l.value, layers.iter().map(String::as_str)) {
                            Some(m) => d.hint(format!("did you mean `{m}`?")),
                            None => {
                                d.hint(format!("add it to [layers] order ({})", layers.join(", ")))
                            }
                        },
                    );
                }
            }
        } else if !layers.is_empty() {
            // Unlayered services join the first layer: they may start at once.
            layer = 0;
        }
        let expected = timings
            .get(&s.name.value)
            .or_else(|| timings.get(s.base_name()))
            .copied()
            .or(s.expected_start.map(|d| d.0))
            .unwrap_or(Duration::ZERO);
        units.push(PlanUnit {
            service: s.clone(),
            deps,
            dependents: Vec::new(),
            layer,
            wave: 0,
            expected,
        });
    }
    for i in 0..units.len() {
        for d in 0..units[i].deps.len() {
            let dep = units[i].deps[d];
            units[dep.unit].dependents.push(i);
            if units[dep.unit].layer > units[i].layer {
                let (me, other) = (&units[i], &units[dep.unit]);
                diags.push(
                    Diagnostic::error(
                        "layer-order",
                        format!(
                            "`{}` (layer {}) depends on `{}` in the later layer {}; it would wait forever",
                            me.name(),
                            layers[me.layer],
                            other.name(),
                            layers[other.layer]
                        ),
                    )
                    .key(format!("services.{}.depends_on", me.name()))
                    .at(me.service.depends_on.iter().find(|x| x.name.value == other.name() || x.name.value == other.service.base_name()).map_or(me.service.name.span.clone(), |x| x.name.span.clone()))
                    .hint("move one of them so dependencies point to the same or an earlier layer"),
                );
            }
        }
    }
    check_references(spec, &by_name, &mut diags);
    check_ports(spec, &mut diags);

    let mut plan = Plan {
        units,
        layers,
        replica_groups,
        ..Plan::default()
    };
    let layers_consistent = !diags.iter().any(|d| d.code == "layer-order");
    match topo_order(&plan.units) {
        // Waves assume dependencies never point to a later layer (a barrier there
        // would wait forever), so they are only computed for a consistent file.
        Ok(order) if layers_consistent => compute_waves(&mut plan, &order, timings),
        Ok(_) => {}
        Err(cycles) => {
            for cycle in cycles {
                diags.push(cycle_diagnostic(&plan.units, &cycle, source));
            }
        }
    }
    diags.sort_by_key(|d| (d.span.as_ref().map_or(usize::MAX, |s| s.start), d.severity));
    (plan, diags)
}

fn check_references(spec: &Spec, by_name: &HashMap<&str, Vec<usize>>, diags: &mut Vec<Diagnostic>) {
    let names = || spec.services.iter().map(|s| s.name.value.as_str());
    let unknown = |what: String, name: &gantry_spec::Sp<String>, key: String| {
        let d = Diagnostic::error(
            "unknown-service",
            format!("{what} names unknown service `{}`", name.value),
        )
        .key(key)
        .at(name.span.clone());
        match did_you_mean(&name.value, names()) {
            Some(m) => d.hint(format!("did you mean `{m}`?")),
            None => d.hint("use the name of a [services.NAME] table"),
        }
    };
    for secret in &spec.secrets {
        for s in &secret.services {
            if !by_name.contains_key(s.value.as_str()) {
                diags.push(unknown(
                    format!("secret `{}`", secret.name.value),
                    s,
                    format!("secrets.{}.services", secret.name.value),
                ));
            }
        }
    }
    for profile in &spec.profiles {
        for s in &profile.services {
            if !by_name.contains_key(s.value.as_str()) {
                diags.push(unknown(
                    format!("profile `{}`", profile.name.value),
                    s,
                    format!("profiles.{}.services", profile.name.value),
                ));
            }
        }
    }
}

fn check_ports(spec: &Spec, diags: &mut Vec<Diagnostic>) {
    let mut owner: HashMap<u16, &str> = HashMap::new();
    for s in &spec.services {
        for &port in &s.ports {
            if let Some(first) = owner.insert(port, &s.name.value)
                && first != s.name.value
            {
                diags.push(
                    Diagnostic::error(
                        "port-conflict",
                        format!(
                            "port {port} is declared by `{first}` and `{}`",
                            s.name.value
                        ),
                    )
                    .key(format!("services.{}.ports", s.name.value))
                    .at(s.name.span.clone())
                    .hint("two services cannot listen on the same port; change one of them"),
                );
            }
        }
    }
}

/// Dependencies-first order, or the cycles with their full paths: the engine's one cycle
/// check ([`gantry_engine::dependency_order`]), which the plan turns into diagnostics.
fn topo_order(units: &[PlanUnit]) -> Result<Vec<usize>, Vec<Vec<usize>>> {
    gantry_engine::dependency_order(units.len(), |i| units[i].deps.iter().map(|d| d.unit))
}

fn cycle_diagnostic(units: &[PlanUnit], cycle: &[usize], source: &Source) -> Diagnostic {
    let names: Vec<&str> = cycle.iter().map(|&i| units[i].name()).collect();
    let mut edges = Vec::new();
    for w in cycle.windows(2) {
        let (from, to) = (&units[w[0]], &units[w[1]]);
        let span = from
            .service
            .depends_on
            .iter()
            .find(|d| d.name.value == to.name() || d.name.value == to.service.base_name())
            .map_or(from.service.name.span.clone(), |d| d.name.span.clone());
        let (line, _) = source.line_col(span.start);
        edges.push((
            span,
            format!(
                "{} depends on {} ({}:{line})",
                from.name(),
                to.name(),
                source.path
            ),
        ));
    }
    let first_span = edges[0].0.clone();
    Diagnostic::error(
        "dependency-cycle",
        format!("dependency cycle: {}", names.join(" -> ")),
    )
    .key(format!("services.{}.depends_on", names[0]))
    .at(first_span)
    .hint(format!(
        "break the cycle by removing one of these dependencies: {}",
        edges
            .into_iter()
            .map(|(_, e)| e)
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

fn compute_waves(plan: &mut Plan, order: &[usize], timings: &Timings) {
    let n = plan.units.len();
    let layer_count = plan.layers.len().max(1);
    let timed = !timings.is_empty()
        || plan
            .units
            .iter()
            .any(|u| u.service.expected_start.is_some());
    let weight = |u: &PlanUnit| {
        if timed {
            u.expected
        } else {
            Duration::from_secs(1)
        }
    };
    let mut wave = vec![0usize; n];
    // Longest path ending at each unit: (expected time, steps) so that among
    // equally long chains the one with more services wins.
    let mut dist = vec![(Duration::ZERO, 0usize); n];
    let mut pred: Vec<Option<usize>> = vec![None; n];
    // A layer is a barrier: its units start after every unit of earlier layers.
    let mut base_wave = 0usize;
    let mut base: (Duration, usize, Option<usize>) = (Duration::ZERO, 0, None);
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for &u in order {
        by_layer[plan.units[u].layer].push(u);
    }
    for layer in &by_layer {
        let mut max_wave = base_wave;
        let mut max = base;
        for &u in layer {
            let unit = &plan.units[u];
            let mut w = base_wave;
            let (mut d, mut p) = ((base.0, base.1), base.2);
            for dep in &unit.deps {
                w = w.max(wave[dep.unit] + 1);
                if p.is_none() || dist[dep.unit] > d {
                    d = dist[dep.unit];
                    p = Some(dep.unit);
                }
            }
            wave[u] = w;
            dist[u] = (d.0 + weight(unit), d.1 + 1);
            pred[u] = p;
            max_wave = max_wave.max(w + 1);
            if max.2.is_none() || dist[u] > (max.0, max.1) {
                max = (dist[u].0, dist[u].1, Some(u));
            }
        }
        if !layer.is_empty() {
            base_wave = max_wave;
            base = max;
        }
    }
    let waves_len = wave.iter().copied().max().map_or(0, |m| m + 1);
    let mut waves = vec![Vec::new(); waves_len];
    for (u, &w) in wave.iter().enumerate() {
        plan.units[u].wave = w;
        waves[w].push(u);
    }
    plan.waves = waves;
    if let Some(end) = (0..n).max_by_key(|&u| (dist[u], std::cmp::Reverse(u))) {
        let mut path = vec![end];
        let mut cur = end;
        while let Some(p) = pred[cur] {
            if path.len() > n {
                break; // defensive: predecessors always form a chain in a consistent plan
            }
            path.push(p);
            cur = p;
        }
        path.reverse();
        plan.critical_path = path;
        plan.critical_time = if timed { dist[end].0 } else { Duration::ZERO };
    }
    plan.timed = timed;
}

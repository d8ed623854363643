//! Property tests for plan building: random service graphs (cycles, self-dependencies, unknown names, layers) never panic, cycles are real, and waves respect dependencies.

use gantry_plan::{Timings, build, render_dot, render_json, render_mermaid, render_text};
use gantry_spec::{Source, decode};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Target {
    /// Another service (possibly this one), by index modulo the service count.
    Index(usize),
    /// A name no service has (or one differing only by case).
    Unknown(&'static str),
}

#[derive(Debug, Clone)]
struct Dep {
    target: Target,
    condition: &'static str,
    required: bool,
}

#[derive(Debug, Clone)]
struct Svc {
    kind: &'static str,
    readiness: bool,
    layer: Option<&'static str>,
    table_form: bool,
    deps: Vec<Dep>,
    ports: Vec<u16>,
    expected_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct Graph {
    /// When set, dependencies only point to lower-numbered services: the graph is acyclic.
    dag: bool,
    /// With `dag`: layers follow the service order, so no dependency points to a later layer.
    monotone: bool,
    layers: Option<Vec<&'static str>>,
    services: Vec<Svc>,
    timed: bool,
}

const LAYER_NAMES: &[&str] = &["infra", "data", "app", "edge"];

fn dep() -> impl Strategy<Value = Dep> {
    (
        prop_oneof![
            9 => any::<usize>().prop_map(Target::Index),
            1 => prop::sample::select(vec!["ghost", "S1", "s99", "s-1"]).prop_map(Target::Unknown),
        ],
        prop::sample::select(vec!["ready", "ready", "started", "completed"]),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(target, condition, required)| Dep {
            target,
            condition,
            required,
        })
}

fn svc() -> impl Strategy<Value = Svc> {
    (
        prop::sample::select(vec!["process", "process", "task", "external"]),
        any::<bool>(),
        prop::option::weighted(
            0.5,
            prop::sample::select(vec!["infra", "data", "app", "edge", "nowhere"]),
        ),
        any::<bool>(),
        prop::collection::vec(dep(), 0..4),
        prop::collection::vec(prop_oneof![9 => 1024u16..65535, 1 => Just(8000u16)], 0..2),
        prop::option::weighted(0.3, 1u64..5000),
    )
        .prop_map(
            |(kind, readiness, layer, table_form, deps, ports, expected_ms)| Svc {
                kind,
                readiness,
                layer,
                table_form,
                deps,
                ports,
                expected_ms,
            },
        )
}

fn graph() -> impl Strategy<Value = Graph> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(
            0.4,
            prop::collection::vec(prop::sample::select(LAYER_NAMES.to_vec()), 1..4),
        ),
        prop::collection::vec(svc(), 1..12),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(dag, monotone, layers, services, timed)| Graph {
            dag,
            monotone,
            layers,
            services,
            timed,
        })
}

/// The name a dependency refers to, or None when a DAG graph has nothing below it.
fn target_name(g: &Graph, from: usize, t: &Target) -> Option<String> {
    match t {
        Target::Unknown(name) => Some((*name).to_string()),
        Target::Index(i) if g.dag => (from > 0).then(|| format!("s{}", i % from)),
        Target::Index(i) => Some(format!("s{}", i % g.services.len())),
    }
}

fn render_toml(g: &Graph) -> String {
    let mut out = String::new();
    if let Some(layers) = &g.layers {
        let quoted: Vec<String> = layers.iter().map(|l| format!("\"{l}\"")).collect();
        out.push_str(&format!("[layers]\norder = [{}]\n\n", quoted.join(", ")));
    }
    for (i, s) in g.services.iter().enumerate() {
        out.push_str(&format!("[services.s{i}]\nkind = \"{}\"\n", s.kind));
        if s.kind != "external" {
            out.push_str("command = \"run --flag\"\n");
        }
        if s.readiness {
            out.push_str(&format!(
                "readiness = {{ tcp = \"127.0.0.1:{}\" }}\n",
                1000 + i
            ));
        }
        let layer = match &g.layers {
            Some(order) if g.dag && g.monotone => Some(order[i * order.len() / g.services.len()]),
            _ => s.layer,
        };
        if let Some(l) = layer {
            out.push_str(&format!("layer = \"{l}\"\n"));
        }
        if !s.ports.is_empty() {
            let ports: Vec<String> = s.ports.iter().map(u16::to_string).collect();
            out.push_str(&format!("ports = [{}]\n", ports.join(", ")));
        }
        if let Some(ms) = s.expected_ms {
            out.push_str(&format!("expected_start = \"{ms}ms\"\n"));
        }
        let deps: Vec<(String, &Dep)> = s
            .deps
            .iter()
            .filter_map(|d| Some((target_name(g, i, &d.target)?, d)))
            .collect();
        if s.table_form {
            // Table keys must be unique in TOML: keep the first entry per name.
            let mut seen = BTreeSet::new();
            let entries: Vec<String> = deps
                .iter()
                .filter(|(n, _)| seen.insert(n.clone()))
                .map(|(n, d)| {
                    if d.required {
                        format!("\"{n}\" = \"{}\"", d.condition)
                    } else {
                        format!(
                            "\"{n}\" = {{ condition = \"{}\", required = false }}",
                            d.condition
                        )
                    }
                })
                .collect();
            out.push_str(&format!("depends_on = {{ {} }}\n", entries.join(", ")));
        } else {
            let names: Vec<String> = deps.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            out.push_str(&format!("depends_on = [{}]\n", names.join(", ")));
        }
        out.push('\n');
    }
    out
}

/// Whether the resolved dependency graph (edges as the plan sees them) has a cycle.
fn has_cycle(edges: &[Vec<usize>]) -> bool {
    // 0 = unvisited, 1 = on the stack, 2 = done.
    fn visit(u: usize, edges: &[Vec<usize>], state: &mut [u8]) -> bool {
        state[u] = 1;
        for &v in &edges[u] {
            if state[v] == 1 || (state[v] == 0 && visit(v, edges, state)) {
                return true;
            }
        }
        state[u] = 2;
        false
    }
    let mut state = vec![0u8; edges.len()];
    (0..edges.len()).any(|u| state[u] == 0 && visit(u, edges, &mut state))
}

fn check(g: &Graph) -> Result<(), TestCaseError> {
    let text = render_toml(g);
    let source = Source::new("f.toml", text.as_str());
    let loaded = decode(&source, &|_| None);
    prop_assert!(
        !loaded.diagnostics.iter().any(|d| d.code == "syntax"),
        "generator wrote invalid TOML:\n{text}\n{:?}",
        loaded.diagnostics
    );
    let mut timings = Timings::new();
    if g.timed {
        for (i, s) in loaded.spec.services.iter().enumerate() {
            timings.insert(
                s.name.value.clone(),
                Duration::from_millis(10 * i as u64 + 1),
            );
        }
    }
    let (plan, diags) = build(&loaded.spec, &source, &timings);
    for d in &diags {
        if let Some(span) = &d.span {
            prop_assert!(
                span.end <= text.len(),
                "span {span:?} outside the text: {d:?}"
            );
        }
        let _ = d.render(&source);
    }
    prop_assert_eq!(plan.units.len(), loaded.spec.services.len());

    let index = |name: &str| plan.units.iter().position(|u| u.name() == name);
    let edges: Vec<Vec<usize>> = plan
        .units
        .iter()
        .map(|u| u.deps.iter().map(|d| d.unit).collect())
        .collect();
    let cycles: Vec<&str> = diags
        .iter()
        .filter(|d| d.code == "dependency-cycle")
        .map(|d| d.message.as_str())
        .collect();
    prop_assert_eq!(
        has_cycle(&edges),
        !cycles.is_empty(),
        "cycle detection disagrees for:\n{}",
        text
    );
    if g.dag {
        prop_assert!(cycles.is_empty(), "cycle reported in a DAG:\n{text}");
    }
    for message in &cycles {
        let path = message
            .strip_prefix("dependency cycle: ")
            .expect("cycle message starts with its prefix");
        let names: Vec<&str> = path.split(" -> ").collect();
        prop_assert!(names.len() >= 2, "{message}");
        prop_assert_eq!(names[0], names[names.len() - 1], "{}", message);
        for w in names.windows(2) {
            let (from, to) = (index(w[0]), index(w[1]));
            prop_assert!(from.is_some() && to.is_some(), "{message}");
            prop_assert!(
                edges[from.unwrap()].contains(&to.unwrap()),
                "{} does not depend on {} in {message}",
                w[0],
                w[1]
            );
        }
    }

    // Waves are computed for every acyclic plan whose dependencies never point to a
    // later layer (such a dependency is the error "layer-order").
    let layer_order = diags.iter().any(|d| d.code == "layer-order");
    if cycles.is_empty() && !layer_order {
        // Every unit sits in exactly the wave it names.
        let in_waves: usize = plan.waves.iter().map(Vec::len).sum();
        prop_assert_eq!(in_waves, plan.units.len());
        for (w, wave) in plan.waves.iter().enumerate() {
            for &u in wave {
                prop_assert_eq!(plan.units[u].wave, w);
            }
        }
        // A dependency starts in a strictly earlier wave than its dependent.
        for u in &plan.units {
            for d in &u.deps {
                let dep = &plan.units[d.unit];
                prop_assert!(
                    dep.wave < u.wave,
                    "`{}` (wave {}) depends on `{}` (wave {})\n{}",
                    u.name(),
                    u.wave,
                    dep.name(),
                    dep.wave,
                    text
                );
            }
        }
        // Layers are barriers: an earlier layer's units all start in earlier waves.
        for a in &plan.units {
            for b in &plan.units {
                if a.layer < b.layer {
                    prop_assert!(a.wave < b.wave, "{} / {}\n{}", a.name(), b.name(), text);
                }
            }
        }
        if !plan.units.is_empty() {
            prop_assert!(!plan.critical_path.is_empty());
        }
        let _ = (
            render_text(&plan),
            render_json(&plan),
            render_dot(&plan),
            render_mermaid(&plan),
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_never_panic_and_keep_their_invariants(g in graph()) {
        check(&g)?;
    }
}

/// The generator must produce both cyclic and acyclic graphs, and layered ones.
#[test]
fn generator_covers_cycles_dags_and_layers() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = graph();
    let (mut cyclic, mut acyclic_with_edges, mut layered) = (0, 0, 0);
    for _ in 0..300 {
        let g = strategy.new_tree(&mut runner).unwrap().current();
        let text = render_toml(&g);
        let source = Source::new("f.toml", text.as_str());
        let loaded = decode(&source, &|_| None);
        let (plan, diags) = build(&loaded.spec, &source, &Timings::new());
        if diags.iter().any(|d| d.code == "dependency-cycle") {
            cyclic += 1;
        } else if plan.edge_count() > 0 {
            acyclic_with_edges += 1;
        }
        let used: BTreeSet<usize> = plan.units.iter().map(|u| u.layer).collect();
        if used.len() > 1 && !plan.waves.is_empty() {
            layered += 1;
        }
    }
    assert!(cyclic >= 30, "only {cyclic} cyclic graphs");
    assert!(
        acyclic_with_edges >= 30,
        "only {acyclic_with_edges} acyclic graphs with edges"
    );
    assert!(layered >= 10, "only {layered} layered graphs with waves");
}

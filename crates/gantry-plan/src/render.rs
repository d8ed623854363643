//! Renders a plan as text (waves and critical path), Graphviz dot, Mermaid and JSON.

use crate::Plan;
use gantry_spec::duration::format_duration;
use gantry_spec::{Condition, Kind, Priority};
use std::fmt::Write as _;

fn condition(c: Condition) -> &'static str {
    match c {
        Condition::Started => "started",
        Condition::Ready => "ready",
        Condition::Completed => "completed",
    }
}

fn priority(p: Priority) -> &'static str {
    match p {
        Priority::Critical => "critical",
        Priority::High => "high",
        Priority::Medium => "medium",
        Priority::Low => "low",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn critical_line(plan: &Plan) -> String {
    let names: Vec<&str> = plan
        .critical_path
        .iter()
        .map(|&u| plan.units[u].name())
        .collect();
    if plan.timed {
        format!(
            "critical path ({}): {}",
            format_duration(plan.critical_time),
            names.join(" → ")
        )
    } else {
        format!(
            "critical path ({} steps): {}",
            names.len(),
            names.join(" → ")
        )
    }
}

/// `3 services`, or with replicas `2 services (3 units with instances)`: a replicated
/// service counts once, its instances `NAME.1` … are the units shown below.
fn services_text(plan: &Plan) -> String {
    let extra: usize = plan
        .replica_groups
        .iter()
        .map(|g| g.units.len().saturating_sub(1))
        .sum();
    let units = plan.units.len();
    let services = plural(units - extra.min(units), "service", "services");
    if extra == 0 {
        services
    } else {
        format!(
            "{services} ({} with instances)",
            plural(units, "unit", "units")
        )
    }
}

/// The human view: counts, one line per wave, the critical path.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}, {}, {}{}",
        services_text(plan),
        plural(plan.edge_count(), "dependency", "dependencies"),
        plural(plan.waves.len(), "wave", "waves"),
        if plan.layers.is_empty() {
            String::new()
        } else {
            format!(", layers: {}", plan.layers.join(" → "))
        }
    );
    for (i, wave) in plan.waves.iter().enumerate() {
        let names: Vec<String> = wave
            .iter()
            .map(|&u| {
                let unit = &plan.units[u];
                let mut s = unit.name().to_string();
                if unit.service.priority == Priority::Critical {
                    s.push('*');
                }
                s
            })
            .collect();
        let _ = writeln!(out, "wave {}: {}", i + 1, names.join(", "));
    }
    if !plan.critical_path.is_empty() {
        let _ = writeln!(out, "{}", critical_line(plan));
    }
    if plan
        .units
        .iter()
        .any(|u| u.service.priority == Priority::Critical)
    {
        let _ = writeln!(out, "(* = critical)");
    }
    out
}

fn dot_id(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz: an edge points from a service to what it needs; soft dependencies are
/// dashed, critical services bold, layers are clusters, the critical path is red.
pub fn render_dot(plan: &Plan) -> String {
    let mut out = String::from(
        "digraph gantry {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    let on_path = |u: usize| plan.critical_path.contains(&u);
    let node = |out: &mut String, u: usize, indent: &str| {
        let unit = &plan.units[u];
        let mut attrs = vec![format!(
            "label=\"{}\\n{}\"",
            unit.name().replace('"', "\\\""),
            kind_label(unit.service.kind)
        )];
        if unit.service.priority == Priority::Critical {
            attrs.push("penwidth=2".into());
        }
        if on_path(u) {
            attrs.push("color=red".into());
        }
        let _ = writeln!(
            out,
            "{indent}{} [{}];",
            dot_id(unit.name()),
            attrs.join(", ")
        );
    };
    if plan.layers.is_empty() {
        for u in 0..plan.units.len() {
            node(&mut out, u, "  ");
        }
    } else {
        for (i, layer) in plan.layers.iter().enumerate() {
            let _ = writeln!(
                out,
                "  subgraph \"cluster_{i}\" {{\n    label={};\n    style=dashed;",
                dot_id(layer)
            );
            for u in (0..plan.units.len()).filter(|&u| plan.units[u].layer == i) {
                node(&mut out, u, "    ");
            }
            out.push_str("  }\n");
        }
    }
    for (u, unit) in plan.units.iter().enumerate() {
        for d in &unit.deps {
            let mut attrs = vec![format!("label=\"{}\"", condition(d.condition))];
            if !d.required {
                attrs.push("style=dashed".into());
            }
            let pos = plan.critical_path.iter().position(|&x| x == u);
            if pos.is_some_and(|p| p > 0 && plan.critical_path[p - 1] == d.unit) {
                attrs.push("color=red".into());
            }
            let _ = writeln!(
                out,
                "  {} -> {} [{}];",
                dot_id(unit.name()),
                dot_id(plan.units[d.unit].name()),
                attrs.join(", ")
            );
        }
    }
    out.push_str("}\n");
    out
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Process => "process",
        Kind::Task => "task",
        Kind::External => "external",
        Kind::Migrate => "migrate",
    }
}

fn mermaid_id(u: usize) -> String {
    format!("s{u}")
}

/// Mermaid flowchart: arrows point from a dependency to what it unblocks (boot order).
pub fn render_mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart LR\n");
    let node = |out: &mut String, u: usize, indent: &str| {
        let unit = &plan.units[u];
        let label = unit.name().replace('"', "#quot;");
        let _ = match unit.service.kind {
            Kind::Task | Kind::Migrate => writeln!(out, "{indent}{}[/\"{label}\"/]", mermaid_id(u)),
            Kind::External => writeln!(out, "{indent}{}[(\"{label}\")]", mermaid_id(u)),
            Kind::Process => writeln!(out, "{indent}{}[\"{label}\"]", mermaid_id(u)),
        };
    };
    if plan.layers.is_empty() {
        for u in 0..plan.units.len() {
            node(&mut out, u, "  ");
        }
    } else {
        for (i, layer) in plan.layers.iter().enumerate() {
            let _ = writeln!(out, "  subgraph L{i}[\"{}\"]", layer.replace('"', "#quot;"));
            for u in (0..plan.units.len()).filter(|&u| plan.units[u].layer == i) {
                node(&mut out, u, "    ");
            }
            out.push_str("  end\n");
        }
    }
    for (u, unit) in plan.units.iter().enumerate() {
        for d in &unit.deps {
            let arrow = if d.required { "-->" } else { "-.->" };
            let _ = writeln!(
                out,
                "  {} {arrow}|{}| {}",
                mermaid_id(d.unit),
                condition(d.condition),
                mermaid_id(u)
            );
        }
    }
    for &u in &plan.critical_path {
        let _ = writeln!(
            out,
            "  style {} stroke:#d00,stroke-width:2px",
            mermaid_id(u)
        );
    }
    out
}

/// One service (or embedded component) of the machine-readable graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode<'a> {
    pub name: &'a str,
    /// `process`, `task`, `external`, `migrate`, or `component` (the embeddable library).
    pub kind: &'a str,
    pub priority: &'a str,
    pub layer: Option<&'a str>,
    /// 0-based start wave (printed 1-based).
    pub wave: usize,
    pub depends_on: Vec<GraphEdge<'a>>,
    /// The critical-path weight, when one is known.
    pub expected_ms: Option<u64>,
}

/// A dependency of a [`GraphNode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphEdge<'a> {
    pub name: &'a str,
    pub condition: &'a str,
    pub required: bool,
}

/// The one builder of the graph JSON, for `gantry graph --format json` and the API's
/// `/api/v1/graph`, from the process plan ([`render_json`]) and from the embeddable
/// library's components alike. `waves` and `critical_path` hold node indexes.
pub fn graph_json(
    nodes: &[GraphNode<'_>],
    layers: &[String],
    waves: &[Vec<usize>],
    critical_path: &[usize],
    critical_ms: Option<u64>,
) -> serde_json::Value {
    let names = |list: &[usize]| list.iter().map(|&u| nodes[u].name).collect::<Vec<_>>();
    let services: Vec<_> = nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "name": n.name,
                "kind": n.kind,
                "priority": n.priority,
                "layer": n.layer,
                "wave": n.wave + 1,
                "depends_on": n.depends_on.iter().map(|d| serde_json::json!({
                    "name": d.name,
                    "condition": d.condition,
                    "required": d.required,
                })).collect::<Vec<_>>(),
                "expected_ms": n.expected_ms,
            })
        })
        .collect();
    serde_json::json!({
        "services": services,
        "layers": layers,
        "waves": waves.iter().map(|w| names(w)).collect::<Vec<_>>(),
        "critical_path": names(critical_path),
        "critical_ms": critical_ms,
    })
}

/// Machine-readable plan (`gantry graph --format json`).
pub fn render_json(plan: &Plan) -> serde_json::Value {
    let nodes: Vec<GraphNode<'_>> = plan
        .units
        .iter()
        .map(|u| GraphNode {
            name: u.name(),
            kind: kind_label(u.service.kind),
            priority: priority(u.service.priority),
            layer: plan.layers.get(u.layer).map(String::as_str),
            wave: u.wave,
            depends_on: u
                .deps
                .iter()
                .map(|d| GraphEdge {
                    name: plan.units[d.unit].name(),
                    condition: condition(d.condition),
                    required: d.required,
                })
                .collect(),
            expected_ms: Some(u.expected.as_millis() as u64),
        })
        .collect();
    graph_json(
        &nodes,
        &plan.layers,
        &plan.waves,
        &plan.critical_path,
        plan.timed.then_some(plan.critical_time.as_millis() as u64),
    )
}

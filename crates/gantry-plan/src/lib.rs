//! Spec → validated boot plan: the dependency DAG, cycle paths, layers as barriers, start waves, the critical path and its renderings.
//!
//! Pure: given the decoded spec (and optionally the last boot's timings) it computes;
//! it never reads files, the clock or the environment.

mod build;
mod config;
mod render;
mod select;

pub use build::{Plan, PlanDep, PlanUnit, Timings, build};
pub use render::{
    GraphEdge, GraphNode, graph_json, render_dot, render_json, render_mermaid, render_text,
};
pub use select::{Selection, select};

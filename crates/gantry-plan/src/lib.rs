//! Spec → validated boot plan: the dependency DAG, cycle paths, layers as barriers, start waves, the critical path and its renderings, the critical chain of a boot that happened.
//!
//! Pure: given the decoded spec (and optionally the last boot's timings) it computes;
//! it never reads files, the clock or the environment.

mod build;
mod chain;
mod config;
mod grow;
mod render;
mod replicas;
mod select;

pub use build::{Plan, PlanDep, PlanUnit, Timings, build};
pub use chain::{NamedGraph, UnitTimes, critical_chain, critical_chain_by_name};
pub use render::{
    GraphEdge, GraphNode, graph_json, render_dot, render_json, render_mermaid, render_text,
};
pub use replicas::{ReplicaGroup, extra_instance};
pub use select::{Selection, select};

//! `gantry export kubernetes`: a validated [`gantry_spec::Spec`] as Kubernetes manifests. Pure:
//! text in, manifests and warnings out. Everything that cannot be translated is a warning, never
//! dropped silently; secret values never appear (a Secret is referenced, never written).

mod k8s;
mod yaml;

pub use k8s::{Export, Options, kubernetes};
pub use yaml::to_yaml;

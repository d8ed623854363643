//! `[services.NAME.rollout]`: the strategy and analysis a service's rollouts use by default
//! (`gantry rollout NAME` flags override each key).

use crate::Dur;

/// How the new release takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RolloutStrategy {
    /// The last instance is redefined and takes weighted steps of the traffic.
    #[default]
    Canary,
    /// A full-size green set beside the running (blue) one, one switch of all traffic.
    BlueGreen,
}

/// A service's rollout defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutConf {
    pub strategy: RolloutStrategy,
    pub steps: Option<Vec<u8>>,
    pub interval: Option<Dur>,
    /// A share, 0 to 1 (the file says it as a percentage).
    pub max_error_ratio: Option<f64>,
    pub max_p99: Option<Dur>,
    pub min_requests: Option<u64>,
    /// Blue/green: an http URL every green instance must answer with a 2xx before the switch
    /// (`${PORT}` is each green instance's port).
    pub check: Option<String>,
}

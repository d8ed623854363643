//! What gantry keeps in its state dir, in one place: the file names, the SQLite store, missions, the log-line format, and the analysis of recorded boots.
//!
//! - [`StateDir`]: every file under the state dir, named once (`state.db`, `api.token`,
//!   `api.addr`, `logs/NAME.log`, …).
//! - [`store`]: the SQLite state store: schema and its migrations, boots and each
//!   service's record in them.
//! - [`missions`]: failures a person can act on, kept in the store (depends on [`store`],
//!   never the other way round).
//! - [`switches`]: per-service switches (`gantry disable`, `gantry quarantine`) kept across
//!   runs: who, why and since (depends on [`store`]).
//! - [`retention`]: pruning the store's boots and resolved missions by
//!   `[settings] retention`, in small batches (builds on [`store`] too).
//! - [`logfmt`]: the per-service log-line format, written by `gantry up` ([`logfmt::LogFile`])
//!   and read back, merged and followed by `gantry logs`.
//! - [`time`]: RFC 3339 timestamps (the `gantry-time` crate, shared with the HTTP API).
//! - [`bounded`]: reading a file a user named (config, env file, secret file): regular
//!   files only, under a cap.
//! - [`analyze`]: the pure logic of `gantry analyze`: boots read from the store, critical
//!   chain, blame, comparison, JSON and the SVG waterfall.

pub mod alerts;
pub mod analyze;
pub mod audit;
pub mod bounded;
mod dir;
pub mod flag_overrides;
pub mod incidents;
pub mod logfmt;
pub mod missions;
pub mod releases;
pub mod retention;
pub mod secure;
pub mod store;
pub mod switches;

pub use dir::StateDir;
/// RFC 3339 timestamps: the workspace's one implementation lives in `gantry-time` so that the
/// HTTP API (and the embeddable library through it) uses it without pulling in SQLite.
pub use gantry_time as time;

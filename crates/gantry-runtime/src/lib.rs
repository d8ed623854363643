//! I/O building blocks of gantry's tokio shell: the pieces the driver glues to the sans-IO engine.
//!
//! - [`nsinit`]: orphan-proofing for the whole supervisor (PID namespace init + stub), to be
//!   called first thing in `main()`, before tokio starts.
//! - [`reaper`]: the single owner of `waitpid` in the process; routes exit statuses by pid.
//! - [`process`]: spawning services on the cheap `posix_spawn` path, line streams, signalling.
//! - [`resource`]: per-service memory and CPU limits (cgroup v2, cgroup v1 or rlimits).
//! - [`probe`]: TCP / HTTP(S) / exec / log readiness and liveness probes.
//! - [`tls`]: rustls (ring) client configs for https and TLS store probes, and the
//!   pre-flight's certificate inspection.
//! - [`notify`]: per-service `sd_notify` sockets.
//! - [`logs`], [`store`], [`missions`]: re-exports of `gantry-state` (log files, the SQLite
//!   state store, missions), kept until the driver uses that crate directly.
//! - [`interrupt`]: stop signals honoured on a thread of their own before the event loop runs.
//! - [`driver`]: the event loop of `gantry up` that feeds the engine and carries out its actions.
//! - [`output`]: what `gantry up` prints.
//!
//! Facts and measurements behind the design choices are in
//! `shared/notes/LINUX-SUPERVISION.md`; comments refer to its sections (A–D).

pub mod alert_rules;
pub mod driver;
pub mod env;
pub mod envset;
pub mod instance;
pub mod interrupt;
mod launch;
pub mod limits;
mod lines;
pub mod listen;
pub mod notify;
pub mod nsinit;
pub mod output;
pub mod preflight;
pub mod probe;
pub mod process;
pub mod procstat;
pub mod reaper;
pub mod redact;
pub mod resource;
pub mod stores;
pub mod tick;
pub mod tls;
pub mod trim;

pub use nix::sys::signal::Signal;

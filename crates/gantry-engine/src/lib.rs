//! Sans-IO lifecycle engine for gantry: boot ordering, readiness gates, retries, restarts and shutdown as one deterministic state machine.
//!
//! The engine is fed `(now, Event)` and answers with `Action`s and its next
//! deadline, in the style of quinn-proto: it contains no process, socket or
//! clock code, so every boot, crash loop and shutdown can be replayed in a
//! test with virtual time.
//!
//! ```
//! use gantry_engine::*;
//!
//! let db = UnitConfig::new("db", UnitKind::Process);
//! let mut api = UnitConfig::new("api", UnitKind::Process);
//! api.deps.push(Dep::hard(UnitId(0), Condition::Ready));
//! let mut engine = Engine::new(vec![db, api], EngineOptions::default()).unwrap();
//!
//! engine.start(Time::ZERO);
//! // Only db can start: api waits for it to be ready.
//! let spawns: Vec<_> = std::iter::from_fn(|| engine.poll_action())
//!     .filter_map(|a| match a {
//!         Action::Spawn { unit, r#gen, .. } => Some((unit, r#gen)),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(spawns, [(UnitId(0), 1)]);
//!
//! // db has no readiness probe: it is running as soon as it is spawned,
//! // which releases api.
//! engine.handle(Time::from_millis(3), Event::Spawned { unit: UnitId(0), r#gen: 1, pid: 100 });
//! assert_eq!(engine.unit(UnitId(0)).state, State::Running);
//! assert!(std::iter::from_fn(|| engine.poll_action())
//!     .any(|a| matches!(a, Action::Spawn { unit: UnitId(1), .. })));
//! ```
#![forbid(unsafe_code)]

mod breaker;
pub mod chain;
mod config;
mod engine;
mod error;
mod graph;
mod io;
pub mod names;
mod probe;
mod rng;
mod size;
mod time;
mod timers;
mod unit;
mod view;

pub use breaker::BreakerState;
pub use config::{
    BreakerConfig, Condition, Dep, EngineOptions, Priority, ProbeConfig, ProbeMode, ProbeRole,
    RestartPolicy, RetryPolicy, StartLimit, UnitConfig, UnitId, UnitKind,
};
pub use engine::Engine;
pub use error::EngineError;
pub use graph::dependency_order;
pub use io::{Action, Command, Event, ExitStatus, Gen, Notice, Outcome, State, StopSignal};
pub use probe::adaptive_interval;
pub use rng::SplitMix64;
pub use size::{SIZE_UNITS, format_size};
pub use time::{HumanDuration, Time};
pub use view::UnitView;

//! Rollouts of a new release of a service next to the running one, as a sans-IO state machine fed
//! `(now, input)`: canary steps with an analysis per step, blue/green with a switch-back, manual
//! promote / pause / resume / abort, and the outputs the driver carries out (start the new
//! release, set the ingress weight, promote, roll back). Time is the caller's (milliseconds on any
//! monotonic clock), so tests need no sleeps; the state serialises so a restarted gantry resumes.

mod analysis;
mod machine;

pub use analysis::{Breach, Thresholds, Verdict, Window, analyze};
pub use machine::{Input, OnMaxHold, Output, Phase, Plan, Rollout, Strategy};

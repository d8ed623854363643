//! The rollout state machine: phases, inputs, outputs and deadlines.

use crate::analysis::{Breach, Thresholds, Verdict, Window, analyze};
use serde::{Deserialize, Serialize};

/// How the new release takes traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Strategy {
    /// Weighted steps (percent of requests to the new release), each analysed before the next.
    Canary { steps: Vec<u8> },
    /// The new release at full size beside the old, one switch of all traffic, analysis after it,
    /// a switch back on breach.
    BlueGreen,
}

/// What a step that stays "not verified" for `max_hold` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnMaxHold {
    Pause,
    Rollback,
}

/// A rollout's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub strategy: Strategy,
    /// How long each step (and blue/green's post-switch analysis) is analysed, in milliseconds.
    pub interval_ms: u64,
    pub thresholds: Thresholds,
    /// How long a step may stay "not verified" past its interval, in milliseconds.
    pub max_hold_ms: u64,
    pub on_max_hold: OnMaxHold,
}

impl Plan {
    /// The canary defaults: 1, 10, 50, 100 %.
    pub fn canary() -> Plan {
        Plan {
            strategy: Strategy::Canary {
                steps: vec![1, 10, 50, 100],
            },
            interval_ms: 60_000,
            thresholds: Thresholds::default(),
            max_hold_ms: 600_000,
            on_max_hold: OnMaxHold::Pause,
        }
    }

    /// Problems with the plan, each said so a user can fix it.
    pub fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Strategy::Canary { steps } = &self.strategy {
            if steps.is_empty() {
                out.push("steps: give at least one step, e.g. [1, 10, 50, 100]".into());
            }
            if steps.windows(2).any(|w| w[0] >= w[1]) {
                out.push("steps: each step must be larger than the one before".into());
            }
            if steps.iter().any(|&s| s == 0 || s > 100) {
                out.push("steps: each step is a percentage from 1 to 100".into());
            }
        }
        if self.interval_ms == 0 {
            out.push("interval: must be longer than 0".into());
        }
        if !(0.0..=1.0).contains(&self.thresholds.max_error_ratio) {
            out.push("max_error_ratio: a share from 0 to 1 (0.01 = 1 %)".into());
        }
        out
    }

    fn steps(&self) -> &[u8] {
        match &self.strategy {
            Strategy::Canary { steps } => steps,
            Strategy::BlueGreen => &[100],
        }
    }
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    /// The new release is starting; it takes no traffic until ready.
    Deploying,
    /// Step `index` of the plan: `percent` of requests go to the new release since `since_ms`.
    Step {
        index: usize,
        percent: u8,
        since_ms: u64,
    },
    /// Stopped by an operator or by `max_hold`: weights stay, nothing advances.
    Paused {
        step: usize,
        percent: u8,
        why: String,
    },
    /// Done: the new release is the stable one.
    Promoted,
    /// Traffic went back to the stable release.
    RolledBack { why: String, breach: Option<Breach> },
}

impl Phase {
    pub fn is_done(&self) -> bool {
        matches!(self, Phase::Promoted | Phase::RolledBack { .. })
    }
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Deploying => "deploying",
            Phase::Step { .. } => "analysing",
            Phase::Paused { .. } => "paused",
            Phase::Promoted => "promoted",
            Phase::RolledBack { .. } => "rolled_back",
        }
    }
}

/// What happened, fed to the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Every instance of the new release passed its readiness gate.
    Ready,
    /// The new release could not start (or crashed before ready).
    Failed(String),
    /// The new release's traffic since the current step began (the driver reads it when the
    /// machine's deadline comes, or whenever it likes: a breach acts at once).
    Analysis(Window),
    Promote,
    Pause,
    Resume,
    Abort(String),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Start the new release's instances (they take no traffic yet).
    StartNew,
    /// Send this percentage of requests to the new release (0 = all to the stable one).
    Weight(u8),
    /// The new release becomes the stable one: stop the old release's instances.
    Promote,
    /// All traffic back to the stable release at once, then drain and stop the new release's
    /// instances; open a mission and audit it with the numbers.
    Rollback { why: String, breach: Option<Breach> },
    /// The phase changed (for the event stream, the store and `gantry rollout status`).
    Phase(Phase),
}

/// One rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub plan: Plan,
    pub phase: Phase,
    /// When the current step became "not verified" after its interval, if it has.
    held_since_ms: Option<u64>,
    /// The latest verdict, for status.
    pub last_verdict: Option<Verdict>,
    /// When the driver should feed the next `Analysis` (milliseconds).
    next_check_ms: Option<u64>,
    /// The step a resumed rollout re-enters once its new release is ready again.
    #[serde(default)]
    resume_step: Option<usize>,
}

impl Rollout {
    /// A rollout that starts deploying the new release now.
    pub fn start(plan: Plan) -> (Rollout, Vec<Output>) {
        let r = Rollout {
            plan,
            phase: Phase::Deploying,
            held_since_ms: None,
            last_verdict: None,
            next_check_ms: None,
            resume_step: None,
        };
        (r, vec![Output::StartNew, Output::Phase(Phase::Deploying)])
    }

    /// After a restart of gantry: the in-memory tallies and the new release's processes are
    /// gone, so an unfinished rollout starts its new release again with no traffic and repeats
    /// its current step's analysis from the beginning; a paused one stays paused at weight 0
    /// until resumed. Returns what to do and a sentence saying which and why.
    pub fn resume(mut self) -> (Rollout, Vec<Output>, String) {
        match self.phase.clone() {
            Phase::Promoted | Phase::RolledBack { .. } => {
                (self, Vec::new(), "the rollout had finished".into())
            }
            Phase::Deploying => {
                let out = vec![Output::Weight(0), Output::StartNew];
                (
                    self,
                    out,
                    "resuming: the new release was still starting; starting it again".into(),
                )
            }
            Phase::Step { index, percent, .. }
            | Phase::Paused {
                step: index,
                percent,
                ..
            } => {
                let paused = matches!(self.phase, Phase::Paused { .. });
                self.held_since_ms = None;
                // Back to deploying; `Ready` re-enters the same step with a fresh window.
                self.phase = Phase::Deploying;
                self.next_check_ms = None;
                self.resume_step = Some(index);
                let why = if paused {
                    format!(
                        "resuming at step {} ({percent} %), paused: the new release is started again and the step re-analysed from the beginning once it is ready",
                        index + 1
                    )
                } else {
                    format!(
                        "resuming at step {} ({percent} %): traffic is held on the stable release until the new release is ready again, then the step's analysis starts over (the old window died with the old gantry)",
                        index + 1
                    )
                };
                (
                    self,
                    vec![
                        Output::Weight(0),
                        Output::StartNew,
                        Output::Phase(Phase::Deploying),
                    ],
                    why,
                )
            }
        }
    }
}

impl Rollout {
    /// When the driver must feed the next `Analysis` (a quarter of the interval apart, so a
    /// breach is acted on well within one interval); None when nothing is being analysed.
    pub fn deadline(&self) -> Option<u64> {
        match self.phase {
            Phase::Step { .. } => self.next_check_ms,
            _ => None,
        }
    }

    /// Feeds one input. A manual command the phase does not allow (promote while deploying,
    /// resume of a running step, anything after the end) is refused with why.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Result<Vec<Output>, String> {
        if self.phase.is_done() {
            return match input {
                // Late reports about a finished rollout change nothing.
                Input::Ready | Input::Failed(_) | Input::Analysis(_) => Ok(Vec::new()),
                _ => Err(format!("the rollout has finished ({})", self.phase.name())),
            };
        }
        match input {
            Input::Ready => match self.phase {
                Phase::Deploying => {
                    let step = self.resume_step.take().unwrap_or(0);
                    Ok(self.enter_step(step, now_ms))
                }
                _ => Ok(Vec::new()),
            },
            Input::Failed(why) => Ok(self.rollback(
                format!("the new release failed: {why}"),
                None,
            )),
            Input::Abort(why) => Ok(self.rollback(why, None)),
            Input::Analysis(window) => Ok(self.analysis(now_ms, &window)),
            Input::Promote => match self.phase {
                Phase::Step { .. } | Phase::Paused { .. } => Ok(self.promote()),
                _ => Err("the new release is not ready yet: promote once it takes traffic (`gantry rollout status`)".into()),
            },
            Input::Pause => match self.phase.clone() {
                Phase::Step { index, percent, .. } => {
                    self.phase = Phase::Paused {
                        step: index,
                        percent,
                        why: "paused by an operator".into(),
                    };
                    Ok(vec![Output::Phase(self.phase.clone())])
                }
                Phase::Paused { .. } => Err("the rollout is paused already".into()),
                _ => Err("only a rollout that takes traffic can be paused".into()),
            },
            Input::Resume => match self.phase.clone() {
                Phase::Paused { step, .. } => Ok(self.enter_step(step, now_ms)),
                _ => Err("the rollout is not paused".into()),
            },
        }
    }

    fn steps(&self) -> &[u8] {
        self.plan.steps()
    }

    fn check_every(&self) -> u64 {
        (self.plan.interval_ms / 4).max(1)
    }

    fn enter_step(&mut self, index: usize, now_ms: u64) -> Vec<Output> {
        let Some(&percent) = self.steps().get(index) else {
            return self.promote();
        };
        self.held_since_ms = None;
        self.next_check_ms = Some(now_ms + self.check_every().min(self.plan.interval_ms));
        self.phase = Phase::Step {
            index,
            percent,
            since_ms: now_ms,
        };
        vec![Output::Weight(percent), Output::Phase(self.phase.clone())]
    }

    fn analysis(&mut self, now_ms: u64, window: &Window) -> Vec<Output> {
        let verdict = analyze(window, &self.plan.thresholds);
        self.last_verdict = Some(verdict.clone());
        let (index, since) = match self.phase {
            Phase::Step {
                index, since_ms, ..
            } => (index, since_ms),
            // Paused: weights stay, nothing advances, but a breach still rolls back.
            Phase::Paused { .. } => {
                return match verdict {
                    Verdict::Breach(b) => {
                        self.rollback(format!("breach while paused: {b}"), Some(b))
                    }
                    _ => Vec::new(),
                };
            }
            _ => return Vec::new(),
        };
        if let Verdict::Breach(b) = verdict {
            return self.rollback(format!("step {} breached: {b}", index + 1), Some(b));
        }
        let end = since + self.plan.interval_ms;
        self.next_check_ms = Some(now_ms + self.check_every());
        if now_ms < end {
            self.next_check_ms = Some((now_ms + self.check_every()).min(end));
            return Vec::new();
        }
        match verdict {
            Verdict::Pass => {
                if index + 1 < self.steps().len() {
                    self.enter_step(index + 1, now_ms)
                } else {
                    self.promote()
                }
            }
            Verdict::NotVerified { requests, needed } => {
                let held = *self.held_since_ms.get_or_insert(now_ms);
                if now_ms.saturating_sub(held) < self.plan.max_hold_ms {
                    return Vec::new();
                }
                let why = format!(
                    "not verified for {} s after its interval: {requests} of the {needed} requests a verdict needs",
                    self.plan.max_hold_ms / 1000
                );
                match self.plan.on_max_hold {
                    OnMaxHold::Rollback => self.rollback(why, None),
                    OnMaxHold::Pause => {
                        let Phase::Step { percent, .. } = self.phase else {
                            return Vec::new();
                        };
                        self.phase = Phase::Paused {
                            step: index,
                            percent,
                            why,
                        };
                        vec![Output::Phase(self.phase.clone())]
                    }
                }
            }
            Verdict::Breach(_) => Vec::new(),
        }
    }

    fn promote(&mut self) -> Vec<Output> {
        self.phase = Phase::Promoted;
        self.next_check_ms = None;
        vec![
            Output::Weight(100),
            Output::Promote,
            Output::Phase(Phase::Promoted),
        ]
    }

    fn rollback(&mut self, why: String, breach: Option<Breach>) -> Vec<Output> {
        self.phase = Phase::RolledBack {
            why: why.clone(),
            breach: breach.clone(),
        };
        self.next_check_ms = None;
        vec![
            Output::Weight(0),
            Output::Rollback { why, breach },
            Output::Phase(self.phase.clone()),
        ]
    }
}

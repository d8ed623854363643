//! `gantry rollout NAME`: an in-place canary of a replicated, routed service. One instance (the
//! last) gets the new release and takes the machine's weights through the ingress split; the
//! canary's own traffic since the step began is analysed at the machine's deadlines; a promote
//! replaces the other instances one at a time (the rolling machinery), a rollback sends all
//! traffic to the stable release at once and gives the canary its stable definition back.
//! The same machine drives a blue/green rollout, whose instances bluegreen.rs handles; the
//! status JSON and the release records are rollout_status.rs; starting one is rollout_start.rs.

use std::collections::BTreeMap;

use gantry_engine as eng;
use gantry_engine::UnitId;
use gantry_ingress::{Split, Sticky, Tally};
use gantry_rollout::{Input, Output, Phase, Rollout};
use tokio::time::Instant;

use super::rollout_status::release_status;
use super::{Driver, Msg};
use crate::process::SpawnSpec;

/// A release read from gantry.toml: each instance's definition as the file has it now.
#[derive(Debug, Clone, Default)]
pub(super) struct FileRelease {
    /// Instance name → what spawning it takes.
    pub(super) specs: BTreeMap<String, SpawnSpec>,
    /// Instance name → its service as the file defines it (the running plan takes it at the
    /// promote, so a later reload finds nothing changed).
    pub(super) services: BTreeMap<String, gantry_spec::Service>,
    /// The service as the file defines it, before its expansion per instance (blue/green
    /// builds its green instances from it).
    pub(super) base: Option<gantry_spec::Service>,
}

/// What the new release changes in the running definition.
#[derive(Debug, Clone, Default)]
pub(super) struct Changes {
    pub(super) set_env: BTreeMap<String, String>,
    /// The new argv (`${VAR}` expanded per instance from its environment).
    pub(super) command: Option<Vec<String>>,
    /// The release is the file's definition (`gantry rollout NAME` after editing gantry.toml).
    pub(super) file: Option<FileRelease>,
}

impl Changes {
    /// Instance `unit`'s running definition with the changes.
    pub(super) fn apply(&self, unit: &str, spec: &SpawnSpec) -> SpawnSpec {
        if let Some(s) = self.file.as_ref().and_then(|f| f.specs.get(unit)) {
            return s.clone();
        }
        let mut s = spec.clone();
        for (k, v) in &self.set_env {
            s.env.set(k, v.clone());
        }
        if let Some(argv) = &self.command {
            let expanded: Vec<String> = argv.iter().map(|a| s.env.expand(a)).collect();
            if let Some((program, args)) = expanded.split_first() {
                s.program = program.clone();
                s.args = args.to_vec();
            }
        }
        s
    }
}

/// What the driver is doing with the instances for the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Task {
    /// Nothing: the machine drives the weights.
    Idle,
    /// The canary is being drained before it restarts with the new (or the stable) definition.
    Draining { to_new: bool },
    /// The canary was restarted; done when an incarnation after `gen` is up.
    Restarting { r#gen: eng::Gen, to_new: bool },
    /// The migrate services the release needs run first (each done when an incarnation after
    /// the one recorded completes); the canary waits.
    Migrating,
    /// A canary a killed gantry left: its outputs wait in `held` for the boot to be decided
    /// and the canary instance to be up (rollout_resume.rs).
    Resuming,
    /// The other instances are replaced one at a time (rolling.rs).
    Promoting,
    /// Finished: the split is cleared.
    Done,
}

/// A rollout in progress (or the last one, for status).
pub(super) struct Active {
    /// A blue/green rollout's green set (None: a canary).
    pub(super) green: Option<super::bluegreen::Green>,
    /// The migrate services this release ran first, and the incarnation each had then.
    pub(super) migrations: Vec<(UnitId, eng::Gen)>,
    /// The machine's first outputs, held while the migrations run.
    pub(super) held: Vec<Output>,
    pub(super) service: String,
    pub(super) rollout: Rollout,
    /// The machine's clock starts here.
    pub(super) epoch: Instant,
    pub(super) canary: UnitId,
    pub(super) canary_name: String,
    /// The canary's definition before the rollout (a rollback puts it back).
    pub(super) stable: SpawnSpec,
    pub(super) changes: Changes,
    pub(super) sticky: Option<Sticky>,
    /// The canary's tally when the current step began.
    pub(super) step_tally: Tally,
    pub(super) task: Task,
    /// The split percent last set.
    pub(super) weight: u8,
    /// An operator abort in progress (no mission for it).
    pub(super) aborting: bool,
    /// How many analyses the machine was fed.
    pub(super) analyses: u64,
    /// The release numbers (store): the stable one and the new one.
    pub(super) stable_release: Option<i64>,
    pub(super) new_release: Option<i64>,
}

impl Active {
    /// A canary rollout a killed gantry left, its machine resumed (`held`: what to do once the
    /// boot is decided).
    pub(super) fn resumed(
        saved: super::rollout_resume::Saved,
        canary: UnitId,
        canary_name: String,
        stable: SpawnSpec,
        new_release: i64,
        held: Vec<Output>,
    ) -> Active {
        Active {
            green: None,
            migrations: Vec::new(),
            held,
            service: saved.service,
            rollout: saved.rollout,
            epoch: Instant::now(),
            canary,
            canary_name,
            stable,
            changes: Changes {
                set_env: saved.set_env,
                command: saved.command,
                file: None,
            },
            sticky: match (saved.sticky_cookie, saved.sticky_header) {
                (Some(c), _) => Some(Sticky::Cookie(c)),
                (None, Some(h)) => Some(Sticky::Header(h)),
                (None, None) => None,
            },
            step_tally: Tally::default(),
            task: Task::Resuming,
            weight: 0,
            aborting: false,
            analyses: 0,
            stable_release: saved.stable_release,
            new_release: Some(new_release),
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Driver {
    /// `promote`, `pause`, `resume` or `abort` from an operator.
    pub(super) fn rollout_control(
        &mut self,
        service: &str,
        action: &str,
    ) -> Result<String, String> {
        let Some(a) = self.rollout.as_mut().filter(|a| a.service == service) else {
            return Err(format!(
                "no rollout of {service}: start one with `gantry rollout {service} --set-env K=V --reason TEXT`"
            ));
        };
        let input = match action {
            "promote" => Input::Promote,
            "pause" => Input::Pause,
            "resume" => Input::Resume,
            _ => {
                a.aborting = true;
                Input::Abort("aborted by an operator".into())
            }
        };
        let now = a.now_ms();
        let outputs = a.rollout.handle(now, input).inspect_err(|_| {
            a.aborting = false;
        })?;
        self.rollout_outputs(outputs);
        let phase = self
            .rollout
            .as_ref()
            .map(|a| a.rollout.phase.name())
            .unwrap_or("?");
        Ok(format!("rollout of {service}: {action}: now {phase}"))
    }

    /// When the machine wants the next analysis.
    pub(super) fn rollout_due(&self) -> Option<Instant> {
        let a = self.rollout.as_ref()?;
        if a.task != Task::Idle {
            return None;
        }
        let ms = a.rollout.deadline()?;
        Some(a.epoch + std::time::Duration::from_millis(ms))
    }

    /// The deadline came: the canary's traffic since the step began, to the machine.
    pub(super) fn rollout_analyse(&mut self) {
        let Some(ing) = &self.ingress else { return };
        let Some(a) = &mut self.rollout else { return };
        let w = ing.handle.tally(&a.service).canary.since(&a.step_tally);
        let window = gantry_rollout::Window {
            requests: w.requests,
            failures: w.failures,
            p99_ms: w.p99_ms,
        };
        let now = a.now_ms();
        a.analyses += 1;
        match a.rollout.handle(now, Input::Analysis(window)) {
            Ok(outputs) => self.rollout_outputs(outputs),
            Err(e) => self.out.gantry_line(&format!("rollout: {e}")),
        }
    }

    /// Carries out what the machine said.
    pub(super) fn rollout_outputs(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::StartNew if self.rollout.as_ref().is_some_and(|a| a.green.is_some()) => {
                    self.green_start();
                }
                Output::StartNew => self.canary_replace(true),
                Output::Weight(p) => {
                    self.rollout_weight(p);
                    self.green_weighed(p);
                }
                Output::Promote => self.rollout_promote(),
                Output::Rollback { why, breach } => {
                    self.rollout_rollback(&why, breach.as_ref());
                }
                Output::Phase(phase) => self.rollout_phase(&phase),
            }
        }
    }

    pub(super) fn rollout_weight(&mut self, percent: u8) {
        let (Some(ing), Some(a)) = (&self.ingress, &mut self.rollout) else {
            return;
        };
        ing.handle.set_split(
            &a.service,
            Split {
                canary: a
                    .green
                    .as_ref()
                    .map_or_else(|| vec![a.canary_name.clone()], |g| g.names.clone()),
                percent,
                sticky: a.sticky.clone(),
            },
        );
        a.weight = percent;
        a.step_tally = ing.handle.tally(&a.service).canary;
    }

    pub(super) fn clear_split(&mut self) {
        if let (Some(ing), Some(a)) = (&self.ingress, &self.rollout) {
            ing.handle.set_split(&a.service, Split::default());
        }
    }

    fn rollout_phase(&mut self, phase: &Phase) {
        let Some(a) = &self.rollout else { return };
        let green = a.green.is_some();
        let text = match phase {
            Phase::Deploying if green => {
                "starting the green set beside the blue instances (no traffic until ready)".into()
            }
            Phase::Step { .. } if green => format!(
                "analysing the green set's own traffic for {} ms",
                a.rollout.plan.interval_ms
            ),
            Phase::Promoted if green => {
                "promoted: the blue instances get the new release one at a time while green serves, then green stops".into()
            }
            Phase::RolledBack { why, .. } if green => {
                format!("rolled back: {why}; all traffic is back on the blue instances")
            }
            Phase::Deploying => format!("canary {} starting with the new release", a.canary_name),
            Phase::Step { index, percent, .. } => {
                format!("step {} : {percent} % of requests to the canary", index + 1)
            }
            Phase::Paused { why, percent, .. } => format!("paused at {percent} %: {why}"),
            Phase::Promoted => {
                "promoted: the other instances get the new release one at a time".into()
            }
            Phase::RolledBack { why, .. } => format!("rolled back: {why}"),
        };
        let line = format!("{}: rollout: {text}", a.service);
        let mut event = self.rollout_json(a);
        if let Some(o) = event.as_object_mut() {
            o.insert("event".into(), "rollout".into());
            o.insert("message".into(), text.into());
            if green && *phase == Phase::Deploying {
                o.insert("phase".into(), "starting_green".into());
            }
        }
        // Kept before it is said: a gantry killed right after the event resumes this phase.
        self.rollout_save();
        self.out.gantry_line(&line);
        self.event(event);
    }

    /// Drains the canary, then restarts it with the new release (`to_new`) or the stable one.
    fn canary_replace(&mut self, to_new: bool) {
        let Some(a) = &mut self.rollout else { return };
        a.task = Task::Draining { to_new };
        let unit = a.canary;
        match &self.ingress {
            Some(ing) => {
                let drained = ing.handle.drain_instance(&a.service, &a.canary_name);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    drained.await;
                    let _ = tx.send(Msg::CanaryDrained { unit });
                });
            }
            None => self.canary_drained(unit),
        }
    }

    /// The ingress sent the canary its last response: restart it with its next definition.
    pub(super) fn canary_drained(&mut self, unit: UnitId) {
        let Some(a) = &mut self.rollout else { return };
        let Task::Draining { to_new } = a.task else {
            return;
        };
        if a.canary != unit {
            return;
        }
        let spec = if to_new {
            a.changes.apply(&a.canary_name, &a.stable)
        } else {
            a.stable.clone()
        };
        self.svcs[unit.0].spawn = Ok(spec);
        let r#gen = self.host.engine().unit(unit).r#gen;
        a.task = Task::Restarting { r#gen, to_new };
        self.host.command(eng::Command::Restart(unit));
    }

    /// Moves the rollout on after every engine batch: the canary came up (or failed), the
    /// promote's rolling replacement ended.
    pub(super) fn rollout_tick(&mut self) {
        let Some(a) = &mut self.rollout else { return };
        if a.green.is_some() && a.task != Task::Migrating {
            return self.green_tick();
        }
        match a.task {
            Task::Resuming => self.rollout_resume_tick(),
            Task::Migrating => {
                let engine = self.host.engine();
                let mut failed = None;
                let mut done = true;
                for (u, r#gen) in &a.migrations {
                    let v = engine.unit(*u);
                    if v.r#gen <= *r#gen {
                        done = false;
                    } else if v.state == eng::State::Failed {
                        failed = Some(format!(
                            "{} failed: {}",
                            v.name,
                            v.last_error.unwrap_or("see its output")
                        ));
                    } else if v.state != eng::State::Completed {
                        done = false;
                    }
                }
                if let Some(why) = failed {
                    a.task = Task::Done;
                    release_status(self.store.as_ref(), a, "rolled_back", "stable");
                    let line = format!(
                        "{}: rollout stopped before any canary: {why}; the stable release keeps every instance",
                        a.service
                    );
                    self.out.gantry_line(&line);
                    self.rollout_phase_done(&line);
                } else if done {
                    a.task = Task::Idle;
                    let outputs = std::mem::take(&mut a.held);
                    self.rollout_outputs(outputs);
                }
            }
            Task::Restarting { r#gen, to_new } => {
                let v = self.host.engine().unit(a.canary);
                let input = if v.r#gen > r#gen && gantry_host::is_up(v.state) && v.pid.is_some() {
                    Some(Input::Ready)
                } else if v.r#gen > r#gen && v.state == eng::State::Failed {
                    Some(Input::Failed(
                        v.last_error.unwrap_or("it failed before ready").to_string(),
                    ))
                } else {
                    None
                };
                let Some(input) = input else { return };
                if to_new {
                    a.task = Task::Idle;
                    let now = a.now_ms();
                    match a.rollout.handle(now, input) {
                        Ok(outputs) => self.rollout_outputs(outputs),
                        Err(e) => self.out.gantry_line(&format!("rollout: {e}")),
                    }
                } else {
                    a.task = Task::Done;
                    release_status(self.store.as_ref(), a, "rolled_back", "stable");
                    let line = format!(
                        "{}: rollout: {} is back on the stable release",
                        a.service, a.canary_name
                    );
                    self.clear_split();
                    self.out.gantry_line(&line);
                    self.rollout_phase_done("the canary is back on the stable release");
                }
            }
            Task::Promoting if self.rolling.is_none() => {
                a.task = Task::Done;
                release_status(self.store.as_ref(), a, "stable", "superseded");
                let line = format!(
                    "{}: rollout: every instance runs the new release; split cleared",
                    a.service
                );
                self.clear_split();
                self.out.gantry_line(&line);
                self.rollout_phase_done("every instance runs the new release");
            }
            _ => {}
        }
    }

    /// The end of a promote or a rollback, on the event stream (`phase` is `done`).
    pub(super) fn rollout_phase_done(&mut self, message: &str) {
        let Some(a) = &self.rollout else { return };
        let mut event = self.rollout_json(a);
        if let Some(o) = event.as_object_mut() {
            o.insert("event".into(), "rollout".into());
            o.insert("phase".into(), "done".into());
            o.insert("outcome".into(), a.rollout.phase.name().into());
            o.insert("message".into(), message.into());
        }
        self.event(event);
    }

    /// Every other instance gets the new release, one at a time, drained first.
    fn rollout_promote(&mut self) {
        let Some(a) = &mut self.rollout else { return };
        let Some(group) = self.plan.replica_group(&a.service) else {
            return;
        };
        let others: Vec<UnitId> = group
            .units
            .iter()
            .map(|&i| UnitId(i))
            // Blue/green: every blue unit, while green serves all traffic.
            .filter(|u| *u != a.canary || a.green.is_some())
            .collect();
        for u in &others {
            if let Ok(spec) = &self.svcs[u.0].spawn {
                let new = a.changes.apply(self.plan.units[u.0].name(), spec);
                self.svcs[u.0].spawn = Ok(new);
            }
        }
        // A release from the file: the running plan holds the file's definition from now on.
        if let Some(file) = &a.changes.file {
            for i in group.units.clone() {
                if let Some(s) = file.services.get(self.plan.units[i].name()) {
                    self.plan.units[i].service = s.clone();
                }
            }
        }
        a.task = Task::Promoting;
        let service = a.service.clone();
        self.green_hand_over();
        if let Err(e) = self.rolling_units(&service, others) {
            self.out
                .gantry_line(&format!("{service}: rollout: promote: {e}"));
        }
    }

    /// Traffic back to the stable release (the weight is 0 already), a mission and an audit
    /// row with the numbers, and the canary restarted with its stable definition.
    fn rollout_rollback(&mut self, why: &str, breach: Option<&gantry_rollout::Breach>) {
        let Some(a) = &self.rollout else { return };
        let service = a.service.clone();
        let aborting = a.aborting;
        let (stable_release, new_release) = (a.stable_release, a.new_release);
        let why = self.redactor.redact_owned(why.to_string());
        if !aborting {
            self.open_mission(&gantry_state::missions::NewMission {
                service: Some(service.clone()),
                layer: None,
                check: "rollout".into(),
                error: format!("the rollout of {service} was rolled back: {why}"),
                output: breach
                    .map(|b| {
                        vec![format!(
                            "{}: observed {:.4}, threshold {:.4}, {} requests, {} failures",
                            b.signal, b.observed, b.threshold, b.requests, b.failures
                        )]
                    })
                    .unwrap_or_default(),
                fix_criteria: "a later rollout of the service is promoted".into(),
                next_step: format!(
                    "look at the new release's output (`gantry logs {}`) and the ingress figures (`gantry ingress`), fix the release and roll it out again",
                    a.green.as_ref().map_or_else(|| a.canary_name.clone(), |g| g.names.join("`, `gantry logs ")),
                ),
            });
            let id = self.audit_begin(&gantry_state::audit::AuditEntry {
                actor: "gantry".into(),
                action: "rollout.rollback".into(),
                target: Some(service.clone()),
                reason: Some(why.clone()),
                before: super::audit::release_text(new_release),
                after: super::audit::release_text(stable_release),
            });
            if let Some(id) = id {
                self.audit_end(id, &Ok("traffic back on the stable release".into()));
            }
        }
        if self.rollout.as_ref().is_some_and(|a| a.green.is_some()) {
            self.green_retire(false);
        } else {
            self.canary_replace(false);
        }
        if let Some(a) = &self.rollout
            && !a.migrations.is_empty()
        {
            let names: Vec<String> = a
                .migrations
                .iter()
                .map(|(u, _)| self.plan.units[u.0].name().to_string())
                .collect();
            self.out.gantry_line(&format!(
                "{service}: rollout: the migrations {} ran for the new release stay applied (gantry never runs a down-migration by itself); if the stable release needs the old schema, revert them with `gantry migrate --service NAME down N`",
                names.join(", ")
            ));
        }
    }
}

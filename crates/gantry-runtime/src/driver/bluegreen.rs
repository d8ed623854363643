//! Blue/green rollouts (`strategy = "blue_green"`): the new release starts beside the running
//! (blue) instances at full size — one green instance per replica, `NAME.green.K`, a unit added
//! at run time (`Host::add_units`) with a port of its own, reused by the next blue/green
//! rollout — takes no traffic until every green instance passed its readiness gate (and the
//! `check` URL, if any), then all traffic switches to green in one step (the ingress split at
//! 100 %), and green's own traffic is analysed while blue keeps running. A breach switches back
//! to blue at once (split 0 %), then green is drained and stopped. A promote gives the blue
//! units the new release one at a time while green serves everything (the rolling machinery),
//! then switches back to them and drains and stops green: the service's own instances run the
//! new release under its name, so a later reload finds nothing changed.

use std::net::SocketAddr;
use std::time::Duration;

use gantry_engine as eng;
use gantry_engine::UnitId;
use gantry_plan::PlanUnit;
use gantry_rollout::Input;

use super::rollout::Task;
use super::rollout_status::release_status;
use super::{Driver, Msg};

/// What the loop tells a blue/green rollout.
#[derive(Debug)]
pub(super) enum Note {
    /// The pre-promotion check of every green instance passed, or why not.
    Checked(Result<(), String>),
    /// The ingress drained every green instance.
    Drained,
}

/// Where the green set stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stage {
    /// Starting; each green instance is up once an incarnation after `gens[k]` is.
    Starting {
        gens: Vec<eng::Gen>,
    },
    /// Every green instance is ready; the `check` URL runs against each.
    Checking,
    /// All traffic on green, analysed (or paused).
    Live,
    /// Promoted: the blue units get the new release one at a time while green serves.
    HandingOver,
    /// Green is being drained (after a rollback, or after the hand-over).
    Retiring {
        promoted: bool,
    },
    /// Green was told to stop; done once none of its processes runs.
    Stopping {
        promoted: bool,
    },
    Done,
}

impl Stage {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Stage::Starting { .. } => "starting_green",
            Stage::Checking => "checking",
            Stage::Live => "switched",
            Stage::HandingOver => "handing_over",
            Stage::Retiring { .. } | Stage::Stopping { .. } => "stopping_green",
            Stage::Done => "done",
        }
    }
}

/// A blue/green rollout's green set.
#[derive(Debug)]
pub(super) struct Green {
    pub(super) units: Vec<UnitId>,
    pub(super) names: Vec<String>,
    pub(super) ports: Vec<u16>,
    /// An http URL (`${PORT}`: each green instance's port) that must answer 2xx/3xx first.
    pub(super) check: Option<String>,
    pub(super) stage: Stage,
}

impl Green {
    pub(super) fn new(check: Option<String>) -> Green {
        Green {
            units: Vec::new(),
            names: Vec::new(),
            ports: Vec::new(),
            check,
            stage: Stage::Starting { gens: Vec::new() },
        }
    }
}

/// A port nothing listens on now (the kernel's choice).
fn fresh_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port for a green instance: {e}"))
}

impl Driver {
    /// The machine said StartNew: the green set is defined, added (or redefined) and started.
    pub(super) fn green_start(&mut self) {
        if let Err(e) = self.green_add() {
            let e = self.redactor.redact_owned(e);
            self.green_feed(Input::Failed(e));
        }
    }

    fn green_feed(&mut self, input: Input) {
        let Some(a) = &mut self.rollout else { return };
        let now = a.now_ms();
        match a.rollout.handle(now, input) {
            Ok(outputs) => self.rollout_outputs(outputs),
            Err(e) => self.out.gantry_line(&format!("rollout: {e}")),
        }
    }

    fn green_add(&mut self) -> Result<(), String> {
        let Some(a) = &self.rollout else {
            return Ok(());
        };
        let service = a.service.clone();
        let blues = self
            .plan
            .replica_group(&service)
            .map(|g| g.units.clone())
            .ok_or_else(|| format!("{service} is not a replicated service"))?;
        let file = a.changes.file.as_ref();
        let base = match file.and_then(|f| f.base.clone()) {
            Some(b) => b,
            None => self
                .spec
                .services
                .iter()
                .find(|s| s.name.value == service)
                .cloned()
                .ok_or_else(|| format!("{service} is not in the running file"))?,
        };
        let mut made = Vec::with_capacity(blues.len());
        for (k, &b) in blues.iter().enumerate() {
            let replica = u32::try_from(k + 1).unwrap_or(u32::MAX);
            let name = format!("{service}.green.{replica}");
            let port = fresh_port()?;
            let bu = &self.plan.units[b];
            let blue_name = bu.name().to_string();
            let blue_def = file
                .and_then(|f| f.services.get(&blue_name))
                .unwrap_or(&bu.service);
            let blue_spec = match file.and_then(|f| f.specs.get(&blue_name)) {
                Some(s) => s.clone(),
                None => self.svcs[b]
                    .spawn
                    .clone()
                    .map_err(|e| format!("{blue_name}: its definition cannot be spawned: {e}"))?,
            };
            let def = gantry_plan::extra_instance(&base, &name, replica, port);
            // The resolved environment of the blue instance, with what differs per instance
            // (`PORT`, anything written with `${PORT}`) taken from the green one.
            let mut env = blue_spec.env.clone();
            for var in &def.env {
                let blue = blue_def
                    .env
                    .iter()
                    .find(|e| e.name.value == var.name.value)
                    .map(|e| &e.value.value);
                if blue != Some(&var.value.value) {
                    env.set(&var.name.value, var.value.value.clone());
                }
            }
            let unit = PlanUnit {
                service: def,
                deps: bu.deps.clone(),
                dependents: Vec::new(),
                layer: bu.layer,
                wave: bu.wave,
                expected: bu.expected,
            };
            let mut svc = super::svc::make_svc(
                &unit,
                Ok(env),
                &self.base_dir,
                &self.state_dir,
                &self.api_file(),
            )?;
            svc.spawn = svc.spawn.map(|s| a.changes.apply(&name, &s));
            made.push((name, port, unit, svc));
        }
        // Added once, redefined by every later blue/green rollout of the service.
        let mut fresh = Vec::new();
        let mut green = Vec::with_capacity(made.len());
        for (name, port, unit, svc) in made {
            match self
                .plan
                .index(&name)
                .filter(|&i| self.greens.contains(&UnitId(i)))
            {
                Some(i) => {
                    let config = unit.engine_config();
                    self.plan.units[i] = unit;
                    if self.svcs[i].take_definition(svc, false) {
                        self.start_notify_listener(UnitId(i));
                    }
                    self.host.replace_config(UnitId(i), config)?;
                    green.push((UnitId(i), name, port));
                }
                None => fresh.push((name, port, unit, svc)),
            }
        }
        if !fresh.is_empty() {
            let configs = fresh.iter().map(|(_, _, u, _)| u.engine_config()).collect();
            let ids = self
                .host
                .add_units(configs, "a green instance of a blue/green rollout")?;
            for (id, (name, port, unit, svc)) in ids.into_iter().zip(fresh) {
                self.plan.units.push(unit);
                self.svcs.push(svc);
                self.usage.push(None);
                self.remediated.push(false);
                self.greens.push(id);
                self.start_notify_listener(id);
                green.push((id, name, port));
            }
        }
        green.sort_by(|x, y| x.1.cmp(&y.1));
        let extra = green
            .iter()
            .map(|(id, name, port)| {
                (
                    *id,
                    name.clone(),
                    Some(SocketAddr::from(([127, 0, 0, 1], *port))),
                )
            })
            .collect();
        if let Some(ing) = &mut self.ingress {
            ing.set_extra(&self.plan, &service, extra);
        }
        let mut gens = Vec::with_capacity(green.len());
        for (id, _, _) in &green {
            gens.push(self.host.engine().unit(*id).r#gen);
            self.host.command(eng::Command::Start(*id));
        }
        let names: Vec<String> = green.iter().map(|g| g.1.clone()).collect();
        self.out.gantry_line(&format!(
            "{service}: rollout: starting the green set {} beside the running instances (no traffic until every one is ready)",
            names.join(", ")
        ));
        if let Some(Green {
            units,
            names: n,
            ports,
            stage,
            ..
        }) = self.rollout.as_mut().and_then(|a| a.green.as_mut())
        {
            *units = green.iter().map(|g| g.0).collect();
            *ports = green.iter().map(|g| g.2).collect();
            *n = names;
            *stage = Stage::Starting { gens };
        }
        self.host.mark_dirty();
        Ok(())
    }

    /// After every engine batch: green came up (or failed), the hand-over ended, green stopped.
    pub(super) fn green_tick(&mut self) {
        let Some(a) = &mut self.rollout else { return };
        let Some(g) = &mut a.green else { return };
        match g.stage.clone() {
            Stage::Starting { gens } => {
                let engine = self.host.engine();
                let mut ready = true;
                for (u, r#gen) in g.units.iter().zip(&gens) {
                    let v = engine.unit(*u);
                    if v.r#gen > *r#gen && v.state == eng::State::Failed {
                        let why = format!(
                            "{} failed: {}",
                            v.name,
                            v.last_error.unwrap_or("it failed before ready")
                        );
                        return self.green_feed(Input::Failed(why));
                    }
                    if !(v.r#gen > *r#gen && gantry_host::is_up(v.state) && v.pid.is_some()) {
                        ready = false;
                    }
                }
                if !ready {
                    return;
                }
                match g.check.clone() {
                    Some(check) => {
                        g.stage = Stage::Checking;
                        let urls: Vec<String> = g
                            .ports
                            .iter()
                            .map(|p| check.replace("${PORT}", &p.to_string()))
                            .collect();
                        let base = self.base_dir.clone();
                        let tx = self.tx.clone();
                        let line = format!(
                            "{}: rollout: every green instance is ready; checking {check} on each",
                            a.service
                        );
                        self.out.gantry_line(&line);
                        tokio::spawn(async move {
                            let tls = gantry_spec::TlsOptions::default();
                            for url in urls {
                                let o = crate::probe::http(
                                    &url,
                                    None,
                                    None,
                                    &tls,
                                    &base,
                                    Duration::from_secs(10),
                                )
                                .await;
                                if !o.ok {
                                    let e = format!("GET {url}: {}", o.message);
                                    let _ = tx.send(Msg::BlueGreen(Note::Checked(Err(e))));
                                    return;
                                }
                            }
                            let _ = tx.send(Msg::BlueGreen(Note::Checked(Ok(()))));
                        });
                    }
                    None => {
                        g.stage = Stage::Live;
                        self.green_feed(Input::Ready);
                    }
                }
            }
            Stage::HandingOver if self.rolling.is_none() => {
                // Every blue unit runs the new release: traffic back to them, green retires.
                self.rollout_weight(0);
                self.green_retire(true);
            }
            Stage::Stopping { promoted } => {
                let engine = self.host.engine();
                if g.units.iter().any(|u| engine.unit(*u).pid.is_some()) {
                    return;
                }
                g.stage = Stage::Done;
                a.task = Task::Done;
                let (new, old) = if promoted {
                    ("stable", "superseded")
                } else {
                    ("rolled_back", "stable")
                };
                release_status(self.store.as_ref(), a, new, old);
                let service = a.service.clone();
                self.clear_split();
                if let Some(ing) = &mut self.ingress {
                    ing.set_extra(&self.plan, &service, Vec::new());
                }
                let text = if promoted {
                    "every instance runs the new release; the green set is stopped"
                } else {
                    "all traffic is on the blue instances (the stable release); the green set is stopped"
                };
                self.out.gantry_line(&format!("{service}: rollout: {text}"));
                self.rollout_phase_done(text);
            }
            _ => {}
        }
    }

    /// The check passed (the machine switches traffic) or failed (a rollback).
    pub(super) fn green_note(&mut self, note: Note) {
        let Some(g) = self.rollout.as_mut().and_then(|a| a.green.as_mut()) else {
            return;
        };
        match note {
            Note::Checked(result) => {
                if g.stage != Stage::Checking {
                    return;
                }
                match result {
                    Ok(()) => {
                        g.stage = Stage::Live;
                        self.green_feed(Input::Ready);
                    }
                    Err(e) => {
                        let e = self.redactor.redact_owned(e);
                        self.green_feed(Input::Failed(format!(
                            "the pre-promotion check failed: {e}"
                        )));
                    }
                }
            }
            Note::Drained => {
                let Stage::Retiring { promoted } = g.stage else {
                    return;
                };
                g.stage = Stage::Stopping { promoted };
                for u in g.units.clone() {
                    self.host.command(eng::Command::Stop(u));
                }
                self.host.mark_dirty();
            }
        }
    }

    /// Green leaves: drained (traffic is on blue already), then stopped.
    pub(super) fn green_retire(&mut self, promoted: bool) {
        let Some(a) = &mut self.rollout else { return };
        let Some(g) = &mut a.green else { return };
        a.task = Task::Draining { to_new: false };
        g.stage = Stage::Retiring { promoted };
        let drains: Vec<_> = match &self.ingress {
            Some(ing) => g
                .names
                .iter()
                .map(|n| ing.handle.drain_instance(&a.service, n))
                .collect(),
            None => Vec::new(),
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            for d in drains {
                d.await;
            }
            let _ = tx.send(Msg::BlueGreen(Note::Drained));
        });
    }

    /// The promote of a blue/green rollout: the blue units get the new release, one at a time.
    pub(super) fn green_hand_over(&mut self) {
        if let Some(g) = self.rollout.as_mut().and_then(|a| a.green.as_mut()) {
            g.stage = Stage::HandingOver;
        }
    }

    /// After the weight changed: the switch to green is an event of its own.
    pub(super) fn green_weighed(&mut self, percent: u8) {
        let Some(a) = &self.rollout else { return };
        let Some(g) = &a.green else { return };
        let switching = matches!(a.rollout.phase, gantry_rollout::Phase::Step { .. });
        if percent != 100 || g.stage != Stage::Live || !switching {
            return;
        }
        let text = format!(
            "switched: all traffic on the green set ({}); the blue instances keep running during the analysis",
            g.names.join(", ")
        );
        let mut event = self.rollout_json(a);
        if let Some(o) = event.as_object_mut() {
            o.insert("event".into(), "rollout".into());
            o.insert("phase".into(), "switched".into());
            o.insert("message".into(), text.clone().into());
        }
        let line = format!("{}: rollout: {text}", a.service);
        self.out.gantry_line(&line);
        self.event(event);
    }
}

//! The driver as an executor of the engine's actions: spawns, signals, probes, cleanups, remediation.

use super::{Driver, Msg};
use crate::probe;
use crate::process;
use gantry_engine as eng;
use gantry_engine::{Action, Event, ProbeRole, UnitId};
use gantry_host::{Executor, Host};
use gantry_spec::ProbeKind;
use std::time::Duration;
use tokio::time::Instant;

/// How long a probe or spawn that failed for want of descriptors waits before it runs again.
const DESCRIPTOR_BACKOFF: Duration = Duration::from_millis(250);

/// How many times a spawn that failed for want of descriptors is tried again (2 s).
const SPAWN_FD_RETRIES: u32 = 8;

/// EMFILE / ENFILE in an error's text: the process (gantry) or the system is out of
/// descriptors, which says nothing about the service.
pub(super) fn out_of_descriptors(message: &str) -> bool {
    message.contains("(os error 24)") || message.contains("(os error 23)")
}

impl Executor for Driver {
    fn host(&mut self) -> &mut Host {
        &mut self.host
    }

    /// Counts the spawns of the batch: the last one runs inline (see `spawn`).
    fn begin_batch(&mut self, batch: &[Action]) {
        self.spawns_left = batch
            .iter()
            .filter(|a| matches!(a, Action::Spawn { .. }))
            .count();
    }

    /// Carries out one action; returns the exit code when the engine is finished.
    fn act(&mut self, action: Action) -> Option<i32> {
        match action {
            Action::Spawn {
                unit,
                r#gen,
                attempt,
            } => self.spawn(unit, r#gen, attempt),
            Action::RunProbe {
                unit,
                role,
                seq,
                timeout,
            } => self.probe(unit, role, seq, timeout),
            Action::Signal {
                unit,
                r#gen,
                signal,
            } => {
                let svc = &self.svcs[unit.0];
                if let Some((g, pid)) = svc.live
                    && g == r#gen
                {
                    let sig = match signal {
                        eng::StopSignal::Graceful => svc.stop_signal,
                        eng::StopSignal::Kill => nix::sys::signal::Signal::SIGKILL,
                    };
                    // A quarantined (frozen) process is thawed first so that it can stop.
                    let _ = self.limiter.thaw_unit(unit.0);
                    let _ = process::signal_group(pid, sig);
                    // A stopped (SIGSTOPped, hung) process would sit on its stop signal
                    // until the stop timeout: wake it so it can act on it (as systemd does).
                    if sig != nix::sys::signal::Signal::SIGKILL {
                        let _ = process::signal_group(pid, nix::sys::signal::Signal::SIGCONT);
                    }
                }
            }
            Action::RunCleanup { unit } => self.cleanup(unit),
            Action::Transition(n) => {
                self.transition(n);
                if self.board_live() {
                    self.redraw_board();
                }
            }
            Action::BootDecided(outcome) => self.boot_decided(outcome),
            Action::Finished { exit_code } => {
                // A stack that booted but lost a critical service exits 1 too: say which.
                let engine = self.host.engine();
                let failed: Vec<String> = if engine.boot_outcome().is_some_and(|o| o.is_up()) {
                    engine
                        .critical_failed()
                        .map(|u| {
                            let v = engine.unit(u);
                            match v.last_error.or(v.reason) {
                                Some(e) => format!("{} ({e})", v.name),
                                None => v.name.to_string(),
                            }
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let why = if failed.is_empty() {
                    String::new()
                } else {
                    format!(
                        " — critical service failed at runtime: {}",
                        failed.join("; ")
                    )
                };
                self.out
                    .gantry_line(&format!("all services stopped (exit {exit_code}){why}"));
                self.event(serde_json::json!({ "event": "finished", "exit_code": exit_code, "critical_failed": failed }));
                self.publish();
                return Some(exit_code);
            }
        }
        None
    }
}

impl Driver {
    pub(super) fn spawn(&mut self, unit: UnitId, r#gen: eng::Gen, attempt: u32) {
        self.spawns_left = self.spawns_left.saturating_sub(1);
        let svc = &mut self.svcs[unit.0];
        svc.spawned_at = Some(Instant::now());
        let spec = match &svc.spawn {
            Ok(s) => s.clone(),
            Err(e) => {
                let error = self.redactor.redact_owned(e.clone());
                self.host.handle(Event::SpawnFailed { unit, r#gen, error });
                return;
            }
        };
        let mut spec = spec;
        if let Some(n) = &svc.notify {
            spec.notify_socket = Some(n.env_value());
        }
        // Its cgroups (made at the first spawn), which the child joins before exec.
        match self.limiter.prepare(unit.0) {
            Ok(confine) => spec.confine = confine,
            // gantry's shortage of descriptors, as for the spawn itself (spawn_done).
            Err(e) if out_of_descriptors(&e) && svc.fd_retries < SPAWN_FD_RETRIES => {
                svc.fd_retries += 1;
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(DESCRIPTOR_BACKOFF).await;
                    let _ = tx.send(Msg::RetrySpawn { unit, r#gen });
                });
                return;
            }
            Err(e) => {
                let error = format!(
                    "cannot apply its limits: {e} (remove memory_max and cpu_max from [services.{}] to run it without)",
                    svc.name
                );
                self.host.handle(Event::SpawnFailed { unit, r#gen, error });
                return;
            }
        }
        if attempt > 1 {
            self.out
                .gantry_line(&format!("{}: attempt {attempt}", svc.name));
        }
        // posix_spawn blocks its thread until the child has exec'd, and on this machine
        // most of that wait is the scheduler waking an idle CPU for the child (~0.45 ms):
        // a wave of spawns runs on a few blocking-pool threads at once (the runtime caps
        // them; up.rs), so the waits overlap instead of adding up. The engine already
        // treats a spawn as pending until `Spawned` arrives.
        // The last spawn of a batch runs right here (for a lone spawn — a chain's next
        // link — a pool thread's wake-up would only add latency); the others go to the
        // pool first, so they run alongside it.
        if self.spawns_left == 0 {
            let result = process::spawn_fds(&spec, &self.reaper);
            self.spawn_done(unit, r#gen, result);
            return;
        }
        self.pool_spawns += 1;
        let reaper = self.reaper.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = process::spawn_fds(&spec, &reaper);
            let _ = tx.send(Msg::SpawnDone {
                unit,
                r#gen,
                result,
            });
        });
    }

    pub(super) fn spawn_done(
        &mut self,
        unit: UnitId,
        r#gen: eng::Gen,
        result: Result<process::SpawnedFds, process::SpawnError>,
    ) {
        let svc = &mut self.svcs[unit.0];
        match result {
            Ok(spawned) => {
                svc.fd_retries = 0;
                svc.live = Some((r#gen, spawned.pid));
                let pid = spawned.pid;
                self.hub.add(unit, r#gen, spawned, svc.budget.clone());
                self.host.handle(Event::Spawned { unit, r#gen, pid });
            }
            Err(e) if out_of_descriptors(&e.to_string()) && svc.fd_retries < SPAWN_FD_RETRIES => {
                // gantry's shortage, not the service's failure: spawn it again shortly (a
                // few times: a limit that is simply too low fails the spawn, named).
                svc.fd_retries += 1;
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(DESCRIPTOR_BACKOFF).await;
                    let _ = tx.send(Msg::RetrySpawn { unit, r#gen });
                });
            }
            Err(e) => {
                // No incarnation runs in its groups: release them.
                if self.limiter.exited(unit.0).removal_pending {
                    self.remove_groups_later(unit, 1);
                }
                let error = self.redactor.redact_owned(e.to_string());
                self.host.handle(Event::SpawnFailed { unit, r#gen, error });
            }
        }
    }

    pub(super) fn run_probe(&mut self, unit: UnitId, role: ProbeRole, seq: u64, timeout: Duration) {
        let svc = &self.svcs[unit.0];
        let Some(p) = svc.role(role).map(|r| r.probe.clone()) else {
            return;
        };
        let tx = self.tx.clone();
        let reaper = self.reaper.clone();
        // Only exec probes need the service's environment; copying it for every tcp or
        // http probe run was a measurable share of the boot's allocations.
        let (env, cwd) = match (&p.kind, &svc.spawn) {
            (ProbeKind::Exec(_), Ok(s)) => (s.env.clone(), s.cwd.clone()),
            (ProbeKind::Exec(_), Err(_)) => (crate::envset::Env::inherited(), None),
            _ => (crate::envset::Env::default(), None),
        };
        let base_dir = self.base_dir.clone();
        tokio::spawn(async move {
            let outcome = probe::run(&p.kind, env, cwd, timeout, &reaper, &base_dir).await;
            // gantry itself out of descriptors is not the service's failure: the same
            // probe runs again once gantry has room (the engine still waits for it).
            if out_of_descriptors(&outcome.message) {
                tokio::time::sleep(DESCRIPTOR_BACKOFF).await;
                let _ = tx.send(Msg::RetryProbe {
                    unit,
                    role,
                    seq,
                    timeout,
                });
                return;
            }
            let _ = tx.send(Msg::Probe {
                unit,
                role,
                seq,
                outcome,
            });
        });
    }

    pub(super) fn cleanup(&mut self, unit: UnitId) {
        let svc = &self.svcs[unit.0];
        let tx = self.tx.clone();
        let Some(argv) = svc.cleanup.clone() else {
            let _ = tx.send(Msg::Cleanup {
                unit,
                ok: true,
                message: String::new(),
            });
            return;
        };
        let (env, cwd) = match &svc.spawn {
            Ok(s) => (s.env.clone(), s.cwd.clone()),
            Err(_) => (crate::envset::Env::inherited(), None),
        };
        let timeout = self
            .host
            .unit(unit)
            .config
            .stop_timeout
            .max(Duration::from_secs(1));
        let reaper = self.reaper.clone();
        self.out
            .gantry_line(&format!("{}: running cleanup", svc.name));
        tokio::spawn(async move {
            let outcome = probe::exec(argv, env, cwd, timeout, &reaper).await;
            let _ = tx.send(Msg::Cleanup {
                unit,
                ok: outcome.ok,
                message: outcome.message,
            });
        });
    }

    /// Runs a failed service's `remediate` command, once.
    pub(super) fn remediate(&mut self, unit: UnitId) {
        let u = &self.plan.units[unit.0].service;
        let Some(argv) = u.remediate.clone() else {
            return;
        };
        if std::mem::replace(&mut self.remediated[unit.0], true)
            || self.host.engine().is_shutting_down()
        {
            return;
        }
        let svc = &self.svcs[unit.0];
        let (env, cwd) = match &svc.spawn {
            Ok(s) => (s.env.clone(), s.cwd.clone()),
            Err(_) => (crate::envset::Env::inherited(), None),
        };
        self.out.gantry_line(&format!(
            "{}: running remediate `{}`",
            svc.name,
            argv.join(" ")
        ));
        let (tx, reaper) = (self.tx.clone(), self.reaper.clone());
        tokio::spawn(async move {
            let outcome = probe::exec(argv, env, cwd, Duration::from_secs(60), &reaper).await;
            let _ = tx.send(Msg::Remediated { unit, outcome });
        });
    }

    /// Records what the remediation did and, when it succeeded, checks the service again
    /// by starting it: reaching ready resolves its mission.
    pub(super) fn remediated(&mut self, unit: UnitId, outcome: probe::ProbeOutcome) {
        let name = self.svcs[unit.0].name.clone();
        let message = self.redactor.redact_owned(outcome.message);
        let text = if outcome.ok {
            format!("remediation succeeded ({message})")
        } else {
            format!("remediation failed ({message})")
        };
        self.out.gantry_line(&format!("{name}: {text}"));
        if let Some(store) = &self.store {
            store.note_remediation("boot", &name, &text);
        }
        self.event(serde_json::json!({ "event": "remediated", "service": name, "ok": outcome.ok, "message": message }));
        if outcome.ok && !self.host.engine().is_shutting_down() {
            self.host.command(eng::Command::Start(unit));
        }
    }
}

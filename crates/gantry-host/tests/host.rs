//! The host under tokio's paused clock with a fake executor: time mapping, the pump, commands, snapshots, the critical chain.

use gantry_api::model::ApiCommand;
use gantry_engine::{
    Action, Condition, Dep, Engine, EngineOptions, Event, ProbeConfig, ProbeMode, UnitConfig,
    UnitId, UnitKind,
};
use gantry_host::{Executor, Extra, Host, Request, drain};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

fn pushed() -> ProbeConfig {
    ProbeConfig {
        mode: ProbeMode::Pushed,
        initial_delay: Duration::ZERO,
        period: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        success_threshold: 1,
        failure_threshold: 3,
    }
}

fn unit(name: &str, deps: &[usize], layer: usize) -> UnitConfig {
    let mut c = UnitConfig::new(name.to_string(), UnitKind::Process);
    c.readiness = Some(pushed());
    c.layer = layer;
    c.deps = deps
        .iter()
        .map(|&d| Dep {
            unit: UnitId(d),
            condition: Condition::Ready,
            required: true,
        })
        .collect();
    c
}

fn host(units: Vec<UnitConfig>) -> Host {
    let engine = Engine::new(
        units,
        EngineOptions {
            allow_degraded: true,
            seed: 7,
        },
    )
    .expect("valid units");
    Host::new(engine)
}

/// Answers every spawn at once with a fake pid and remembers the order of spawns; the
/// test pushes readiness passes itself.
struct Fake {
    host: Host,
    spawned: VecDeque<UnitId>,
    transitions: Vec<(String, String)>,
    finished: Option<i32>,
    batches: usize,
    /// Polled probe runs not answered yet: (unit, role, seq).
    probes: Vec<(UnitId, gantry_engine::ProbeRole, u64)>,
}

impl Fake {
    fn new(host: Host) -> Fake {
        Fake {
            host,
            spawned: VecDeque::new(),
            transitions: Vec::new(),
            finished: None,
            batches: 0,
            probes: Vec::new(),
        }
    }
}

impl Executor for Fake {
    fn host(&mut self) -> &mut Host {
        &mut self.host
    }

    fn begin_batch(&mut self, _batch: &[Action]) {
        self.batches += 1;
    }

    fn act(&mut self, action: Action) -> Option<i32> {
        match action {
            Action::Spawn { unit, r#gen, .. } => {
                let host = &mut self.host;
                self.spawned.push_back(unit);
                host.handle(Event::Spawned {
                    unit,
                    r#gen,
                    pid: 100 + unit.0 as u32,
                });
            }
            Action::Signal { unit, r#gen, .. } => self.host.handle(Event::Exited {
                unit,
                r#gen,
                status: gantry_engine::ExitStatus::code(0),
            }),
            Action::RunCleanup { unit } => self.host.handle(Event::CleanupDone {
                unit,
                ok: true,
                message: String::new(),
            }),
            Action::Transition(n) => {
                let name = self.host.unit(n.unit).name.to_string();
                self.transitions.push((name, n.to.to_string()));
            }
            Action::Finished { exit_code } => {
                self.finished = Some(exit_code);
                return Some(exit_code);
            }
            Action::RunProbe {
                unit, role, seq, ..
            } => self.probes.push((unit, role, seq)),
            Action::BootDecided(_) => {}
        }
        None
    }
}

fn snapshot(host: &mut Host) -> gantry_api::model::Snapshot {
    let graph = gantry_api::model::JsonText::default();
    host.snapshot("gantry.toml", &graph, 0, false, |v| Extra {
        pid: v.pid,
        ..Extra::default()
    })
}

#[tokio::test(start_paused = true)]
async fn a_timeout_of_duration_max_maps_to_the_far_future_without_panicking() {
    let mut c = unit("db", &[], 0);
    c.start_timeout = Some(Duration::MAX);
    let mut fake = Fake::new(host(vec![c]));
    fake.host.start();
    assert_eq!(drain(&mut fake), None);
    let deadline = fake
        .host
        .deadline()
        .expect("the start timeout is a deadline");
    assert!(deadline > Instant::now() + Duration::from_secs(86_400 * 365));
    assert!(fake.host.instant(gantry_engine::Time::MAX) > Instant::now());
}

#[tokio::test(start_paused = true)]
async fn time_to_ready_after_a_restart_counts_from_the_restart_and_uptime_from_ready() {
    let mut fake = Fake::new(host(vec![unit("db", &[], 0)]));
    fake.host.start();
    drain(&mut fake);
    tokio::time::sleep(Duration::from_millis(12)).await;
    fake.host
        .pushed_pass(UnitId(0), gantry_engine::ProbeRole::Readiness, "up".into());
    drain(&mut fake);
    let s = snapshot(&mut fake.host);
    assert_eq!(s.services[0].state, "ready");
    assert_eq!(s.services[0].time_to_ready_ms, Some(12));
    assert_eq!(s.services[0].pid, Some(100));
    let last = s.services[0].last_probe.as_ref().expect("the pushed pass");
    assert_eq!(
        (last.role.as_str(), last.ok, last.duration_ms),
        ("readiness", true, 0.0)
    );

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(snapshot(&mut fake.host).services[0].uptime_ms, Some(5000));

    let request = fake
        .host
        .request(&ApiCommand::Restart("db".into()))
        .expect("known unit");
    assert_eq!(
        fake.host.apply(&request),
        "restarting db; its dependents restart after it is ready"
    );
    drain(&mut fake);
    assert_eq!(fake.spawned.len(), 2, "respawned");
    let s = snapshot(&mut fake.host);
    assert_eq!(s.services[0].uptime_ms, None, "not up while starting");
    tokio::time::sleep(Duration::from_millis(30)).await;
    fake.host
        .pushed_pass(UnitId(0), gantry_engine::ProbeRole::Readiness, "up".into());
    drain(&mut fake);
    let s = snapshot(&mut fake.host);
    assert_eq!(s.services[0].time_to_ready_ms, Some(30), "{s:?}");
    assert_eq!(s.services[0].started_ms, Some(0), "first spawn of the boot");
    assert_eq!(s.services[0].restarts, 1);
}

/// Answers the one outstanding polled probe run.
fn answer(fake: &mut Fake, ok: bool) {
    let (unit, role, seq) = fake.probes.pop().expect("a probe run is outstanding");
    assert!(fake.probes.is_empty());
    let message = if ok { "ok" } else { "connection refused" };
    fake.host.probe_result(
        unit,
        role,
        seq,
        ok,
        message.into(),
        Duration::from_millis(1),
    );
    drain(fake);
}

/// Sleeps until the engine's next deadline and fires it.
async fn next_deadline(fake: &mut Fake) {
    let at = fake.host.deadline().expect("a deadline");
    tokio::time::sleep_until(at).await;
    fake.host.timeout();
    drain(fake);
}

#[tokio::test(start_paused = true)]
async fn a_unit_whose_readiness_is_lost_shows_unready_up_and_counted() {
    let mut c = unit("db", &[], 0);
    c.readiness = Some(ProbeConfig {
        failure_threshold: 2,
        ..ProbeConfig::polled(Duration::from_secs(1))
    });
    let mut fake = Fake::new(host(vec![c]));
    fake.host.start();
    drain(&mut fake);
    answer(&mut fake, true);
    assert_eq!(snapshot(&mut fake.host).services[0].state, "ready");
    for _ in 0..2 {
        next_deadline(&mut fake).await;
        answer(&mut fake, false);
    }
    let s = &snapshot(&mut fake.host).services[0];
    assert_eq!((s.state.as_str(), s.ready), ("unready", false));
    assert_eq!(s.readiness_lost_total, 1);
    assert_eq!(s.uptime_ms, Some(2000), "still up, same incarnation");
    assert_eq!(s.pid, Some(100));
    assert_eq!(
        s.last_error.as_deref(),
        Some("readiness failed 2 times: connection refused")
    );
    next_deadline(&mut fake).await;
    answer(&mut fake, true);
    let s = &snapshot(&mut fake.host).services[0];
    assert_eq!((s.state.as_str(), s.ready), ("ready", true));
    assert_eq!(fake.spawned.len(), 1, "never restarted");
}

#[tokio::test(start_paused = true)]
async fn an_error_answered_by_a_start_is_not_shown_once_the_unit_is_up() {
    let mut db = unit("db", &[], 0);
    db.retry.attempts = 1;
    let mut fake = Fake::new(host(vec![db]));
    fake.host.start();
    drain(&mut fake);
    fake.host.handle(Event::Exited {
        unit: UnitId(0),
        r#gen: 1,
        status: gantry_engine::ExitStatus::code(3),
    });
    drain(&mut fake);
    let s = snapshot(&mut fake.host);
    assert_eq!(s.services[0].state, "failed");
    let error = s.services[0].last_error.clone();
    assert!(error.is_some(), "the crash is the last error");
    let start = fake
        .host
        .request(&ApiCommand::Start("db".into()))
        .expect("known");
    fake.host.apply(&start);
    drain(&mut fake);
    assert_eq!(
        snapshot(&mut fake.host).services[0].last_error,
        error,
        "still starting"
    );
    fake.host
        .pushed_pass(UnitId(0), gantry_engine::ProbeRole::Readiness, "up".into());
    drain(&mut fake);
    let s = snapshot(&mut fake.host);
    assert_eq!(
        (
            s.services[0].state.as_str(),
            s.services[0].last_error.as_deref()
        ),
        ("ready", None)
    );
}

#[tokio::test(start_paused = true)]
async fn a_start_names_the_dependents_its_stop_left_stopped() {
    let mut fake = Fake::new(host(vec![unit("db", &[], 0), unit("api", &[0], 0)]));
    fake.host.start();
    drain(&mut fake);
    for u in [0, 1] {
        fake.host
            .pushed_pass(UnitId(u), gantry_engine::ProbeRole::Readiness, "up".into());
        drain(&mut fake);
    }
    let stop = fake.host.request(&ApiCommand::Stop("db".into())).unwrap();
    fake.host.apply(&stop);
    drain(&mut fake);
    assert_eq!(fake.host.unit(UnitId(1)).state.to_string(), "stopped");
    let start = fake.host.request(&ApiCommand::Start("db".into())).unwrap();
    assert_eq!(
        fake.host.apply(&start),
        "starting db; api stay stopped (start them with `gantry start api`)"
    );
}

#[tokio::test(start_paused = true)]
async fn requests_are_resolved_once_for_every_driver() {
    let mut fake = Fake::new(host(vec![unit("db", &[], 0)]));
    fake.host.start();
    assert_eq!(
        fake.host.request(&ApiCommand::Stop("dbb".into())),
        Err("unknown service `dbb`".to_string())
    );
    assert_eq!(
        fake.host.request(&ApiCommand::Shutdown),
        Ok(Request::Shutdown)
    );
    fake.host.command(gantry_engine::Command::Shutdown);
    let refused = fake
        .host
        .request(&ApiCommand::Start("db".into()))
        .unwrap_err();
    assert!(refused.contains("shutting down"), "{refused}");
}

#[tokio::test(start_paused = true)]
async fn the_pump_runs_the_boot_and_the_shutdown_to_the_exit_code() {
    let mut fake = Fake::new(host(vec![
        unit("db", &[], 0),
        unit("cache", &[], 0),
        unit("api", &[0, 1], 1),
        unit("ui", &[2], 2),
    ]));
    fake.host.start();
    assert_eq!(drain(&mut fake), None);
    assert_eq!(fake.spawned.len(), 2, "db and cache in the first wave");
    for (unit, after_ms) in [(1, 5), (0, 40)] {
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        fake.host.pushed_pass(
            UnitId(unit),
            gantry_engine::ProbeRole::Readiness,
            "up".into(),
        );
        drain(&mut fake);
    }
    assert_eq!(fake.spawned.back(), Some(&UnitId(2)), "api after the layer");
    for unit in [2, 3] {
        tokio::time::sleep(Duration::from_millis(10)).await;
        fake.host.pushed_pass(
            UnitId(unit),
            gantry_engine::ProbeRole::Readiness,
            "up".into(),
        );
        drain(&mut fake);
    }
    assert!(fake.host.engine().boot_outcome().is_some());
    assert_eq!(fake.host.critical_chain_text(), "db → api → ui");
    fake.host.command(gantry_engine::Command::Shutdown);
    let mut code = drain(&mut fake);
    let deadline = Instant::now() + Duration::from_secs(60);
    while code.is_none() && Instant::now() < deadline {
        gantry_host::sleep_until_opt(fake.host.deadline()).await;
        fake.host.timeout();
        code = drain(&mut fake);
    }
    assert_eq!(code, Some(0));
    let stopped: Vec<_> = fake
        .transitions
        .iter()
        .filter(|(_, to)| to == "stopped")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(stopped.first(), Some(&"ui"));
    assert!(fake.batches >= 4);
}

/// `db` with no readiness probe (running once spawned) and a 1 s watchdog liveness.
fn watched(failure_threshold: u32) -> Fake {
    let mut c = UnitConfig::new("db".to_string(), UnitKind::Process);
    c.liveness = Some(ProbeConfig {
        mode: ProbeMode::Watchdog,
        failure_threshold,
        ..pushed()
    });
    c.restart = gantry_engine::RestartPolicy::Always;
    let mut fake = Fake::new(host(vec![c]));
    fake.host.start();
    drain(&mut fake);
    fake
}

/// Sleeps until the host's next deadline and fires it, as the drivers' loops do.
async fn fire_deadline(fake: &mut Fake) {
    let deadline = fake.host.deadline().expect("a deadline is armed");
    tokio::time::sleep_until(deadline).await;
    fake.host.timeout();
    drain(fake);
}

#[tokio::test(start_paused = true)]
async fn a_watchdog_deadline_is_the_hosts_deadline_and_keep_alives_move_it() {
    let mut fake = watched(1);
    let started = Instant::now();
    assert_eq!(fake.host.deadline(), Some(started + Duration::from_secs(1)));
    // Keep-alives every 600 ms for 6 s: the deadline follows each one.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        fake.host.pushed_pass(
            UnitId(0),
            gantry_engine::ProbeRole::Liveness,
            "sd_notify WATCHDOG=1".into(),
        );
        drain(&mut fake);
        assert_eq!(
            fake.host.deadline(),
            Some(Instant::now() + Duration::from_secs(1))
        );
    }
    assert_eq!(fake.spawned.len(), 1);
    // Silence: the deadline fires, the failure restarts it (threshold 1).
    fire_deadline(&mut fake).await;
    assert_eq!(Instant::now() - started, Duration::from_millis(7_000));
    assert_eq!(
        fake.spawned.len(),
        2,
        "restarted after the missed keep-alive"
    );
    assert_eq!(
        fake.host.unit(UnitId(0)).last_error,
        Some("liveness failed 1 times: watchdog: no keep-alive within 1s")
    );
}

#[tokio::test(start_paused = true)]
async fn missed_keep_alives_show_as_degraded_until_the_threshold_restarts() {
    let mut fake = watched(2);
    fire_deadline(&mut fake).await;
    let s = snapshot(&mut fake.host);
    assert_eq!(s.services[0].state, "degraded");
    assert_eq!(fake.spawned.len(), 1);
    fire_deadline(&mut fake).await;
    assert_eq!(fake.spawned.len(), 2);
    assert_eq!(fake.host.unit(UnitId(0)).restarts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_reported_hang_restarts_at_once_and_is_the_last_probe() {
    let mut fake = watched(3);
    tokio::time::sleep(Duration::from_millis(250)).await;
    fake.host
        .reported_hung(UnitId(0), "sd_notify WATCHDOG=trigger".into());
    drain(&mut fake);
    assert_eq!(fake.spawned.len(), 2, "restarted at once");
    let s = snapshot(&mut fake.host);
    let last = s.services[0].last_probe.as_ref().expect("the hang");
    assert_eq!(
        (last.role.as_str(), last.ok, last.message.as_str()),
        ("liveness", false, "sd_notify WATCHDOG=trigger")
    );
}

#[tokio::test(start_paused = true)]
async fn critical_and_high_units_are_required_for_readiness_medium_and_low_are_optional() {
    use gantry_engine::Priority;
    let units = [
        ("db", Priority::Critical),
        ("api", Priority::High),
        ("search", Priority::Medium),
        ("stats", Priority::Low),
    ]
    .map(|(name, p)| {
        let mut c = unit(name, &[], 0);
        c.priority = p;
        c
    });
    let mut fake = Fake::new(host(units.to_vec()));
    let snap = snapshot(&mut fake.host);
    let required: Vec<(&str, bool)> = snap
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.required))
        .collect();
    assert_eq!(
        required,
        [
            ("db", true),
            ("api", true),
            ("search", false),
            ("stats", false)
        ]
    );
    // The default is high: required.
    assert_eq!(
        UnitConfig::new("x", UnitKind::Process).priority,
        Priority::High
    );
}

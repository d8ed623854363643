//! After the boot: reinitialize one component (dependents follow in order), shutdown in reverse order with each cleanup, and the edges around them.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gantry::{Boot, BootError, BootOutcome, BoxError, Component, ComponentStatus, State};
use support::*;

/// config → db → api → worker, plus an unrelated cache.
fn chain(t: &Timeline) -> Boot {
    Boot::builder()
        .component(timed(t, "config", ms(5)))
        .component(timed(t, "db", ms(20)).depends_on(["config"]))
        .component(timed(t, "api", ms(10)).depends_on(["db"]))
        .component(timed(t, "worker", ms(10)).depends_on(["api"]))
        .component(timed(t, "cache", ms(10)))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn reinitialize_cleans_up_then_restarts_the_dependents_after_it() {
    let t = Timeline::new();
    let boot = chain(&t);
    assert!(boot.start().await.success);
    let booted = t.events().len();

    let report = boot.reinitialize("db").await.unwrap();
    assert_eq!(
        (report.name.as_str(), report.status, report.retries),
        ("db", ComponentStatus::Success, 0)
    );
    assert_eq!(report.duration, ms(20));
    // Dependents are cleaned up first (reverse order), then db goes down and up, then the
    // dependents come back in dependency order. config and cache are not touched.
    assert_eq!(
        t.events()[booted..],
        [
            "cleanup:worker",
            "cleanup:api",
            "cleanup:db",
            "start:db",
            "end:db",
            "start:api",
            "end:api",
            "start:worker",
            "end:worker",
        ]
    );
    // The call returned once the dependents were back too.
    let status = boot.status();
    assert!(status.is_ready());
    assert_eq!(status.component("db").unwrap().restarts, 1);
    assert_eq!(status.component("cache").unwrap().restarts, 0);
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_reinitialization_is_an_error_with_the_report() {
    let t = Timeline::new();
    let broken = Arc::new(AtomicBool::new(false));
    let b = broken.clone();
    let boot = Boot::builder()
        .component(
            Component::new("redis")
                .retries(1)
                .backoff(ms(10), ms(10))
                .init(move || {
                    let b = b.clone();
                    async move {
                        if b.load(Ordering::SeqCst) {
                            return Err::<(), BoxError>("READONLY replica".into());
                        }
                        Ok(())
                    }
                }),
        )
        .component(timed(&t, "sessions", ms(5)).depends_on(["redis"]))
        .build()
        .unwrap();
    assert_eq!(boot.start().await.outcome, BootOutcome::Go);
    broken.store(true, Ordering::SeqCst);
    let err = boot.reinitialize("redis").await.unwrap_err();
    let BootError::ReinitializeFailed(report) = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(report.status, ComponentStatus::Degraded);
    assert_eq!(report.retries, 1);
    assert_eq!(report.error.as_deref(), Some("READONLY replica"));
    assert_eq!(
        err.to_string(),
        "reinitializing `redis` failed: READONLY replica (DEGRADED)"
    );
    let status = boot.status();
    assert_eq!(status.component("redis").unwrap().state, State::Failed);
    assert_eq!(status.component("sessions").unwrap().state, State::Skipped);

    // Fixed: reinitializing the failed component brings it and its dependent back.
    broken.store(false, Ordering::SeqCst);
    assert!(boot.reinitialize("redis").await.is_ok());
    assert!(boot.status().is_ready());
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn reinitialize_checks_the_name_and_needs_a_started_boot() {
    let t = Timeline::new();
    let boot = chain(&t);
    assert_eq!(
        boot.reinitialize("db").await.unwrap_err(),
        BootError::NotStarted
    );
    let unknown = boot.reinitialize("dbb").await.unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "unknown component `dbb` (known: config, db, api, worker, cache)"
    );
    boot.start().await;
    boot.shutdown().await;
    assert_eq!(
        boot.reinitialize("db").await.unwrap_err(),
        BootError::ShuttingDown
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_cleans_up_dependents_before_their_dependencies() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "config", ms(5)))
        .component(timed(&t, "db", ms(5)).depends_on(["config"]))
        .component(timed(&t, "cache", ms(5)).depends_on(["config"]))
        .component(timed(&t, "api", ms(5)).depends_on(["db", "cache"]))
        .build()
        .unwrap();
    boot.start().await;
    let report = boot.shutdown().await;
    let order: Vec<&str> = report.cleanups.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order.len(), 4);
    assert_eq!(order[0], "api");
    assert_eq!(order[3], "config");
    assert_eq!(t.with_prefix("cleanup:"), order);
    assert!(report.cleanups.iter().all(|c| c.ok));
    let status = boot.status();
    assert!(status.finished && status.shutting_down);
    assert!(status.components.iter().all(|c| c.state == State::Stopped));
    // Idempotent.
    assert_eq!(boot.shutdown().await, report);
}

#[tokio::test(start_paused = true)]
async fn a_failing_or_hung_cleanup_is_reported_and_does_not_stop_the_shutdown() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "db", ms(5)))
        .component(
            Component::new("broker")
                .depends_on(["db"])
                .cleanup(|| async { Err::<(), BoxError>("channel already closed".into()) }),
        )
        .component(
            Component::new("worker")
                .depends_on(["broker"])
                .cleanup_timeout(ms(500))
                .cleanup(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }),
        )
        .build()
        .unwrap();
    boot.start().await;
    let report = boot.shutdown().await;
    let summary: Vec<_> = report
        .cleanups
        .iter()
        .map(|c| (c.name.as_str(), c.error.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("worker", Some("did not finish within 500ms; cancelled")),
            ("broker", Some("channel already closed")),
            ("db", None),
        ]
    );
    assert_eq!(report.cleanups[0].duration, ms(500));
    assert_eq!(report.duration, ms(500));
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_the_boot_cancels_what_is_initializing() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "config", ms(10)))
        .component(timed(&t, "db", Duration::from_secs(3600)).depends_on(["config"]))
        .component(timed(&t, "api", ms(10)).depends_on(["db"]))
        .build()
        .unwrap();
    let starter = boot.clone();
    let start = tokio::spawn(async move { starter.start().await });
    tokio::time::sleep(ms(100)).await;
    assert_eq!(
        boot.status().component("db").unwrap().state,
        State::Starting
    );
    let shutdown = boot.shutdown().await;
    let report = start.await.unwrap();
    assert_eq!(
        report.outcome,
        BootOutcome::NoGo {
            component: None,
            reason: "shut down before the boot was decided".into()
        }
    );
    let statuses: Vec<_> = report.components.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            ComponentStatus::Success,
            ComponentStatus::Skipped,
            ComponentStatus::Skipped
        ]
    );
    // Only config had finished its init, so only config is cleaned up.
    assert_eq!(t.with_prefix("cleanup:"), ["config"]);
    assert_eq!(shutdown.cleanups.len(), 1);
    assert_eq!(t.count("end:db"), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_before_start_runs_nothing() {
    let t = Timeline::new();
    let boot = chain(&t);
    assert_eq!(boot.shutdown().await.cleanups, []);
    let report = boot.start().await;
    assert!(!report.success);
    assert!(
        report
            .components
            .iter()
            .all(|c| c.status == ComponentStatus::Skipped)
    );
    assert!(t.events().is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_still_cleans_up() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
    let boot = Boot::builder()
        .component(Component::new("pool").cleanup(move || {
            let tx = tx.clone();
            async move {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            }
        }))
        .build()
        .unwrap();
    assert!(boot.start().await.success);
    drop(boot);
    tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("the cleanup ran")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn start_is_idempotent_and_shared_between_clones() {
    let t = Timeline::new();
    let boot = chain(&t);
    let other = boot.clone();
    let (a, b) = tokio::join!(boot.start(), other.start());
    assert_eq!(a, b);
    assert_eq!(boot.start().await, a);
    // Each init ran exactly once.
    assert_eq!(t.count("start:db"), 1);
    boot.shutdown().await;
}

//! Retries, backoff, timeouts, the start breaker and readiness checks, on paused (virtual) time.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gantry::{Boot, BootOutcome, BoxError, Component, ComponentStatus, Priority};
use support::*;

/// A component whose init fails `failures` times, then succeeds; logs `attempt:N`.
fn flaky(t: &Timeline, name: &str, failures: u32) -> Component {
    let calls = Arc::new(AtomicU32::new(0));
    let t = t.clone();
    Component::new(name).jitter(false).init(move || {
        let (t, calls) = (t.clone(), calls.clone());
        async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            t.log(format!("attempt:{n}"));
            if n <= failures {
                Err::<(), BoxError>(format!("connection refused (attempt {n})").into())
            } else {
                Ok(())
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_then_succeed() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(
            flaky(&t, "db", 2)
                .priority(Priority::Critical)
                .retries(3)
                .backoff(ms(100), Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    assert_eq!(report.outcome, BootOutcome::Go);
    // Attempts at 0, then after 100 ms, then after 200 ms more (doubling, no jitter).
    assert_eq!(t.events(), ["attempt:1", "attempt:2", "attempt:3"]);
    assert_eq!(t.at("attempt:2"), ms(100));
    assert_eq!(t.at("attempt:3"), ms(300));
    let db = report.component("db").unwrap();
    assert_eq!(
        (db.status, db.retries, db.duration, db.error.as_deref()),
        (ComponentStatus::Success, 2, ms(300), None)
    );
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn jittered_backoff_stays_within_the_cap() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .seed(7)
        .component(
            flaky(&t, "db", 3)
                .retries(3)
                .jitter(true)
                .backoff(ms(100), Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    assert!(boot.start().await.success);
    // Full jitter: each delay is uniform in [0, cap] with caps 100, 200, 400 ms.
    let gaps = [
        t.at("attempt:2"),
        t.at("attempt:3") - t.at("attempt:2"),
        t.at("attempt:4") - t.at("attempt:3"),
    ];
    for (gap, cap) in gaps.iter().zip([ms(100), ms(200), ms(400)]) {
        assert!(*gap <= cap, "{gaps:?}");
    }
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_timeout_cancels_the_attempt_retries_then_fails() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(
            timed(&t, "db", Duration::from_secs(3600))
                .priority(Priority::Critical)
                .timeout(ms(100))
                .retries(1)
                .backoff(ms(50), ms(50)),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    // Attempt 1 at 0, cut at 100 ms; attempt 2 after 50 ms backoff, cut at 250 ms.
    assert_eq!(t.events(), ["start:db", "start:db"]);
    let db = report.component("db").unwrap();
    assert_eq!(db.status, ComponentStatus::Failed);
    assert_eq!(db.retries, 1);
    assert_eq!(db.duration, ms(250));
    assert_eq!(
        db.error.as_deref(),
        Some("did not become ready within 100ms")
    );
    assert_eq!(
        report.outcome,
        BootOutcome::NoGo {
            component: Some("db".into()),
            reason: "did not become ready within 100ms (gave up after 2 attempts)".into(),
        }
    );
    // The cancelled init never finished, so nothing is cleaned up.
    assert_eq!(t.count("end:db"), 0);
    assert_eq!(t.count("cleanup:db"), 0);
    assert!(!db.cleaned_up);
}

#[tokio::test(start_paused = true)]
async fn the_init_error_is_reported_in_the_users_words() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(flaky(&t, "cache", 9).retries(2).backoff(ms(10), ms(10)))
        .build()
        .unwrap();
    let report = boot.start().await;
    let cache = report.component("cache").unwrap();
    assert_eq!(cache.status, ComponentStatus::Degraded);
    assert_eq!(cache.retries, 2);
    assert_eq!(
        cache.error.as_deref(),
        Some("connection refused (attempt 3)")
    );
    assert_eq!(
        report.metrics()["cache"],
        serde_json::json!({"status": "DEGRADED", "duration": 0.02, "retries": 2,
                           "priority": "HIGH", "error": "connection refused (attempt 3)"})
    );
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_start_breaker_holds_retries_for_its_cooldown() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(
            flaky(&t, "payments", 2)
                .retries(3)
                .backoff(ms(10), ms(10))
                .breaker(2, Duration::from_secs(5)),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    assert!(report.success);
    // Two failures open the breaker: the third attempt waits out the cooldown, not the backoff.
    assert_eq!(t.at("attempt:2"), ms(10));
    assert_eq!(t.at("attempt:3"), ms(10) + Duration::from_secs(5));
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_init_is_a_failed_attempt() {
    let boot = Boot::builder()
        .component(Component::new("worker").retries(0).init(|| async {
            if true {
                panic!("queue name missing");
            }
            Ok(())
        }))
        .build()
        .unwrap();
    let report = boot.start().await;
    let worker = report.component("worker").unwrap();
    assert_eq!(worker.status, ComponentStatus::Degraded);
    assert_eq!(
        worker.error.as_deref(),
        Some("init panicked: queue name missing")
    );
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn readiness_is_polled_only_after_init_succeeded() {
    let t = Timeline::new();
    let checks = Arc::new(AtomicU32::new(0));
    let (tc, c) = (t.clone(), checks.clone());
    let boot = Boot::builder()
        .component(
            timed(&t, "search", ms(50))
                .readiness_interval(ms(100))
                .readiness(move || {
                    let (t, c) = (tc.clone(), c.clone());
                    async move {
                        t.log("check");
                        // Ready from the third check on.
                        c.fetch_add(1, Ordering::SeqCst) >= 2
                    }
                }),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    assert!(report.success);
    assert_eq!(
        t.events(),
        ["start:search", "end:search", "check", "check", "check"]
    );
    assert_eq!(t.at("check"), ms(50));
    assert_eq!(checks.load(Ordering::SeqCst), 3);
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn readiness_that_never_passes_times_out_and_cleans_up_before_the_retry() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(
            timed(&t, "db", ms(10))
                .timeout(ms(200))
                .retries(1)
                .backoff(ms(10), ms(10))
                .readiness(|| async { Err::<(), BoxError>("replica lagging".into()) }),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    let db = report.component("db").unwrap();
    assert_eq!(db.status, ComponentStatus::Degraded);
    assert_eq!(
        db.error.as_deref(),
        Some("did not become ready within 200ms (last readiness probe: replica lagging)")
    );
    // Init succeeded each time, so each attempt's resources were released before going on.
    assert_eq!(
        t.events(),
        [
            "start:db",
            "end:db",
            "cleanup:db",
            "start:db",
            "end:db",
            "cleanup:db"
        ]
    );
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_readiness_check_is_cut_at_its_timeout() {
    let boot = Boot::builder()
        .component(
            Component::new("db")
                .retries(0)
                .timeout(Duration::from_secs(10))
                .readiness_timeout(ms(100))
                .readiness(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    true
                }),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    let db = report.component("db").unwrap();
    assert_eq!(db.status, ComponentStatus::Degraded);
    assert_eq!(
        db.error.as_deref(),
        Some("did not become ready within 10s (last readiness probe: timed out after 100ms)")
    );
    boot.shutdown().await;
}

//! GO / DEGRADED / NO-GO: critical failures abort and clean up in reverse order, non-critical ones degrade and skip their dependents; and what `build` refuses.

mod support;

use std::time::Duration;

use gantry::{Boot, BootError, BootOutcome, Component, ComponentStatus, Priority, State};
use support::*;

#[tokio::test(start_paused = true)]
async fn a_critical_failure_is_no_go_and_cleans_up_in_reverse_order() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "config", ms(10)).priority(Priority::Critical))
        .component(timed(&t, "db", ms(10)).depends_on(["config"]))
        .component(timed(&t, "cache", ms(20)).depends_on(["config"]))
        .component(timed(&t, "queue", ms(10)).depends_on(["db"]))
        .component(
            failing(&t, "payments", ms(50), "gateway credentials rejected")
                .priority(Priority::Critical)
                .depends_on(["db"]),
        )
        // Still initializing when payments fails: cancelled, never cleaned up.
        .component(timed(&t, "reports", Duration::from_secs(60)))
        // Never started: it needs payments.
        .component(timed(&t, "api", ms(10)).depends_on(["payments", "queue"]))
        .build()
        .unwrap();
    let report = boot.start().await;

    assert!(!report.success);
    assert_eq!(
        report.outcome,
        BootOutcome::NoGo {
            component: Some("payments".into()),
            reason: "gateway credentials rejected".into(),
        }
    );
    // Everything initialized was cleaned up before start() returned, dependents first.
    let cleanups = t.with_prefix("cleanup:");
    assert_eq!(cleanups.len(), 4, "{cleanups:?}");
    let pos = |name: &str| t.index(&format!("cleanup:{name}"));
    assert!(pos("queue") < pos("db"));
    assert!(pos("db") < pos("config"));
    assert!(pos("cache") < pos("config"));
    assert!(t.index("fail:payments") < pos("queue"));
    assert_eq!(t.count("cleanup:reports") + t.count("end:reports"), 0);

    let status = |name: &str| {
        let c = report.component(name).unwrap();
        (c.status, c.cleaned_up)
    };
    assert_eq!(status("config"), (ComponentStatus::Success, true));
    assert_eq!(status("db"), (ComponentStatus::Success, true));
    assert_eq!(status("cache"), (ComponentStatus::Success, true));
    assert_eq!(status("queue"), (ComponentStatus::Success, true));
    assert_eq!(status("payments"), (ComponentStatus::Failed, false));
    assert_eq!(status("reports"), (ComponentStatus::Skipped, false));
    assert_eq!(status("api"), (ComponentStatus::Skipped, false));
    assert_eq!(
        report.component("api").unwrap().error.as_deref(),
        Some("boot aborted: payments failed")
    );
    assert_eq!(
        report.component("payments").unwrap().error.as_deref(),
        Some("gateway credentials rejected")
    );

    // The boot is over: no more requests, and the status says so.
    let s = boot.status();
    assert!(s.finished && !s.is_ready());
    assert_eq!(
        boot.reinitialize("db").await.unwrap_err(),
        BootError::ShuttingDown
    );
    // A late start() or shutdown() gets the same answers.
    assert_eq!(boot.start().await, report);
    let shutdown = boot.shutdown().await;
    assert_eq!(shutdown.cleanups.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_non_critical_failure_degrades_and_skips_its_dependents() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "db", ms(10)).priority(Priority::Critical))
        .component(
            failing(&t, "search", ms(30), "cluster unreachable")
                .priority(Priority::High)
                .depends_on(["db"]),
        )
        .component(timed(&t, "indexer", ms(10)).depends_on(["search"]))
        .component(timed(&t, "api", ms(10)).depends_on(["db"]))
        .allow_degraded(true)
        .build()
        .unwrap();
    let report = boot.start().await;
    assert!(report.success);
    assert_eq!(
        report.outcome,
        BootOutcome::Degraded {
            failed: vec!["search".into()]
        }
    );
    let entry = |name: &str| report.component(name).unwrap().clone();
    assert_eq!(entry("db").status, ComponentStatus::Success);
    assert_eq!(entry("api").status, ComponentStatus::Success);
    assert_eq!(entry("search").status, ComponentStatus::Degraded);
    assert_eq!(
        entry("search").error.as_deref(),
        Some("cluster unreachable")
    );
    assert_eq!(entry("search").priority, Priority::High);
    assert_eq!(entry("indexer").status, ComponentStatus::Skipped);
    assert_eq!(
        entry("indexer").error.as_deref(),
        Some("dependency search failed")
    );
    assert_eq!(t.count("start:indexer"), 0);
    // Nothing is cleaned up in a degraded boot: it runs.
    assert!(t.with_prefix("cleanup:").is_empty());
    assert_eq!(boot.status().component("api").unwrap().state, State::Ready);
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn without_degraded_mode_any_failure_is_no_go() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "db", ms(10)))
        .component(failing(&t, "metrics", ms(20), "no exporter").priority(Priority::Low))
        .allow_degraded(false)
        .build()
        .unwrap();
    let report = boot.start().await;
    assert_eq!(
        report.outcome,
        BootOutcome::NoGo {
            component: Some("metrics".into()),
            reason: "no exporter".into()
        }
    );
    assert_eq!(
        report.component("metrics").unwrap().status,
        ComponentStatus::Failed
    );
    assert_eq!(t.with_prefix("cleanup:"), ["db"]);
}

#[tokio::test(start_paused = true)]
async fn a_critical_component_skipped_by_a_failed_dependency_is_no_go() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(failing(&t, "secrets", ms(10), "vault sealed").priority(Priority::High))
        .component(
            timed(&t, "db", ms(10))
                .priority(Priority::Critical)
                .depends_on(["secrets"]),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    assert_eq!(
        report.outcome,
        BootOutcome::NoGo {
            component: Some("db".into()),
            reason: "skipped: dependency secrets failed".into()
        }
    );
    assert_eq!(
        report.component("secrets").unwrap().status,
        ComponentStatus::Degraded
    );
}

#[tokio::test(start_paused = true)]
async fn the_report_serializes_in_the_seeds_shape() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "database", ms(2340)).priority(Priority::Critical))
        .component(
            failing(&t, "redis", ms(10), "Connection timeout")
                .priority(Priority::High)
                .retries(2)
                .backoff(ms(10), ms(10)),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    assert_eq!(
        report.metrics(),
        serde_json::json!({
            "database": {"status": "SUCCESS", "duration": 2.34, "retries": 0, "priority": "CRITICAL"},
            "redis": {"status": "DEGRADED", "duration": 0.05, "retries": 2, "priority": "HIGH",
                      "error": "Connection timeout"},
        })
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["outcome"], "degraded");
    assert_eq!(json["success"], true);
    assert_eq!(json["duration_ms"], 2340);
    assert_eq!(json["components"][1]["name"], "redis");
    let text = report.to_string();
    assert!(
        text.starts_with("DEGRADED (redis failed) in 2.34s\n"),
        "{text}"
    );
    assert!(text.contains("DEGRADED redis (HIGH, 50ms, 2 retries): Connection timeout"));
    boot.shutdown().await;
}

#[test]
fn build_refuses_unknown_dependencies_cycles_and_duplicates() {
    let unknown = Boot::builder()
        .component(Component::new("db"))
        .component(Component::new("api").depends_on(["bd"]))
        .build()
        .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "component `api` depends on `bd`, which is not registered (did you mean `db`?)"
    );

    let cycle = Boot::builder()
        .component(Component::new("config"))
        .component(Component::new("api").depends_on(["config", "worker"]))
        .component(Component::new("worker").depends_on(["queue"]))
        .component(Component::new("queue").depends_on_soft(["api"]))
        .build()
        .unwrap_err();
    assert_eq!(
        cycle,
        BootError::Cycle {
            path: vec!["api".into(), "worker".into(), "queue".into(), "api".into()]
        }
    );
    assert_eq!(
        cycle.to_string(),
        "dependency cycle: api -> worker -> queue -> api"
    );

    let own = Boot::builder()
        .component(Component::new("db").depends_on(["db"]))
        .build()
        .unwrap_err();
    assert_eq!(own.to_string(), "dependency cycle: db -> db");

    let twice = Boot::builder()
        .component(Component::new("db"))
        .component(Component::new("db"))
        .build()
        .unwrap_err();
    assert_eq!(twice, BootError::DuplicateComponent { name: "db".into() });
    assert_eq!(
        Boot::builder()
            .component(Component::new(""))
            .build()
            .unwrap_err(),
        BootError::EmptyName
    );
}

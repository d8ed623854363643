//! Start order on the engine: dependencies first, independent components in parallel, soft dependencies as ordering only.

mod support;

use gantry::{Boot, BootOutcome, ComponentStatus, Priority};
use support::*;

#[tokio::test(start_paused = true)]
async fn a_dependent_never_starts_before_its_dependency_finished() {
    let t = Timeline::new();
    let boot = Boot::builder()
        // Registered in reverse: the order comes from the graph, not from registration.
        .component(timed(&t, "api", ms(10)).depends_on(["db"]))
        .component(timed(&t, "db", ms(30)).depends_on(["config"]))
        .component(timed(&t, "config", ms(50)))
        .build()
        .unwrap();
    let report = boot.start().await;
    assert_eq!(report.outcome, BootOutcome::Go);
    assert_eq!(
        t.events(),
        [
            "start:config",
            "end:config",
            "start:db",
            "end:db",
            "start:api",
            "end:api"
        ]
    );
    assert!(t.at("start:db") >= t.at("end:config"));
    assert!(t.at("start:api") >= t.at("end:db"));
    // Each component's duration is its own init, not the wait for its dependencies.
    let durations: Vec<_> = report.components.iter().map(|c| c.duration).collect();
    assert_eq!(durations, [ms(10), ms(30), ms(50)]);
    assert_eq!(report.duration, ms(90));
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn independent_components_initialize_in_parallel() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "db", ms(100)))
        .component(timed(&t, "cache", ms(100)))
        .component(timed(&t, "api", ms(10)).depends_on(["db", "cache"]))
        .build()
        .unwrap();
    let report = boot.start().await;
    assert!(report.success);
    // The two inits overlap: each started before the other ended.
    assert!(t.at("start:cache") < t.at("end:db"));
    assert!(t.at("start:db") < t.at("end:cache"));
    // So the boot takes max(db, cache) + api, not the sum.
    assert_eq!(report.duration, ms(110));
    assert!(t.at("start:api") >= t.at("end:db").max(t.at("end:cache")));
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn soft_dependencies_order_the_start_but_do_not_block_it() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "tracing", ms(20)).priority(Priority::Low))
        .component(failing(&t, "metrics", ms(40), "collector unreachable").priority(Priority::Low))
        .component(
            timed(&t, "api", ms(10))
                .priority(Priority::Critical)
                .depends_on_soft(["tracing", "metrics"]),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    // api waited for both soft dependencies to settle (one ready, one failed), then started.
    assert!(t.at("start:api") >= t.at("end:tracing"));
    assert!(t.at("start:api") >= t.at("fail:metrics"));
    assert_eq!(
        report.outcome,
        BootOutcome::Degraded {
            failed: vec!["metrics".into()]
        }
    );
    assert_eq!(
        report.component("api").unwrap().status,
        ComponentStatus::Success
    );
    assert_eq!(
        report.component("metrics").unwrap().status,
        ComponentStatus::Degraded
    );
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_hard_dependency_on_a_soft_one_is_still_hard() {
    // The same name under depends_on and depends_on_soft keeps the stronger, required edge.
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(failing(&t, "db", ms(5), "refused"))
        .component(
            timed(&t, "api", ms(5))
                .depends_on_soft(["db"])
                .depends_on(["db"]),
        )
        .build()
        .unwrap();
    let report = boot.start().await;
    assert_eq!(
        report.component("api").unwrap().status,
        ComponentStatus::Skipped
    );
    assert_eq!(t.count("start:api"), 0);
    boot.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn no_components_is_an_immediate_go() {
    let boot = Boot::builder().build().unwrap();
    let report = boot.start().await;
    assert_eq!(report.outcome, BootOutcome::Go);
    assert!(report.components.is_empty());
    assert_eq!(boot.shutdown().await.cleanups, []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_order_holds_on_a_multi_threaded_runtime_in_real_time() {
    let t = Timeline::new();
    let boot = Boot::builder()
        .component(timed(&t, "config", ms(5)))
        .component(timed(&t, "db", ms(20)).depends_on(["config"]))
        .component(timed(&t, "cache", ms(20)).depends_on(["config"]))
        .component(timed(&t, "api", ms(5)).depends_on(["db", "cache"]))
        .build()
        .unwrap();
    let report = tokio::time::timeout(std::time::Duration::from_secs(10), boot.start())
        .await
        .expect("boot decided within 10s");
    assert_eq!(report.outcome, BootOutcome::Go);
    assert!(t.index("start:db") > t.index("end:config"));
    assert!(t.index("start:cache") > t.index("end:config"));
    assert!(t.index("start:api") > t.index("end:db").max(t.index("end:cache")));
    // db and cache overlapped.
    assert!(t.index("start:cache") < t.index("end:db"));
    let cleanups = boot.shutdown().await.cleanups;
    assert_eq!(cleanups.first().map(|c| c.name.as_str()), Some("api"));
    assert_eq!(cleanups.last().map(|c| c.name.as_str()), Some("config"));
}

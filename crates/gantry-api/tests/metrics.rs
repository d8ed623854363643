//! `/metrics` parsed with a real Prometheus text parser: every family, with the values of a sample snapshot.

mod support;

use std::collections::HashMap;

use axum::http::StatusCode;
use prometheus_parse::{Sample, Scrape, Value};
use support::*;

/// A snapshot with every optional field set, so every family has series.
fn sample() -> gantry_api::model::Snapshot {
    let mut snap = degraded();
    let db = &mut snap.services[0];
    db.restarts = 2;
    db.attempts = 3;
    db.time_to_ready_ms = Some(1250);
    db.probes = gantry_api::model::ProbeHistogram::of(&[0.0004, 0.003, 0.003, 0.2, 7.5, 42.0]);
    db.probe_failures_total = 5;
    db.breaker = Some("half-open".to_string());
    db.cpu_seconds = Some(12.5);
    db.rss_bytes = Some(104_857_600);
    snap
}

async fn scrape(snap: gantry_api::model::Snapshot) -> (String, Scrape) {
    let r = get(Harness::new(snap).router(), "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let ct = r.content_type().to_string();
    let parsed = Scrape::parse(r.body.lines().map(|l| Ok(l.to_string()))).expect("parses");
    (ct, parsed)
}

fn find<'a>(s: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    s.samples
        .iter()
        .find(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
}

fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(s, metric, labels).map(|x| &x.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{metric}{labels:?}: {other:?}"),
    }
}

#[tokio::test]
async fn every_family_is_present_with_its_final_name() {
    let (ct, s) = scrape(sample()).await;
    assert!(
        ct == gantry_api::METRICS_CONTENT_TYPE && ct.starts_with("application/openmetrics-text"),
        "{ct}"
    );
    let names: std::collections::HashSet<&str> =
        s.samples.iter().map(|x| x.metric.as_str()).collect();
    for family in [
        "gantry_service_state",
        "gantry_service_ready",
        "gantry_service_restarts_total",
        "gantry_service_start_attempts_total",
        "gantry_service_time_to_ready_seconds",
        "gantry_probe_duration_seconds",
        "gantry_probe_duration_seconds_sum",
        "gantry_probe_duration_seconds_count",
        "gantry_probe_failures_total",
        "gantry_service_readiness_lost_total",
        "gantry_breaker_state",
        "gantry_boot_duration_seconds",
        "gantry_boot_outcome",
        "gantry_process_cpu_seconds_total",
        "gantry_process_resident_memory_bytes",
    ] {
        assert!(names.contains(family), "missing {family}; have {names:?}");
    }
    // No doubled suffix from the client appending `_total` itself.
    assert!(
        !names.iter().any(|n| n.contains("_total_total")),
        "{names:?}"
    );
}

#[tokio::test]
async fn values_match_the_snapshot() {
    let (_, s) = scrape(sample()).await;
    // State set: exactly one 1 per service.
    assert_eq!(
        value(
            &s,
            "gantry_service_state",
            &[("service", "db"), ("state", "ready")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "gantry_service_state",
            &[("service", "db"), ("state", "failed")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &s,
            "gantry_service_state",
            &[("service", "search"), ("state", "failed")]
        ),
        1.0
    );
    for svc in ["db", "migrate", "api", "search"] {
        let ones: f64 = s
            .samples
            .iter()
            .filter(|x| x.metric == "gantry_service_state" && x.labels.get("service") == Some(svc))
            .map(|x| match x.value {
                Value::Gauge(v) => v,
                _ => panic!("state set is a gauge"),
            })
            .sum();
        assert_eq!(ones, 1.0, "{svc}");
    }
    assert_eq!(value(&s, "gantry_service_ready", &[("service", "db")]), 1.0);
    assert_eq!(
        value(&s, "gantry_service_ready", &[("service", "search")]),
        0.0
    );
    assert_eq!(
        value(&s, "gantry_service_restarts_total", &[("service", "db")]),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "gantry_service_start_attempts_total",
            &[("service", "db")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "gantry_service_time_to_ready_seconds",
            &[("service", "db")]
        ),
        1.25
    );
    assert_eq!(
        value(&s, "gantry_probe_failures_total", &[("service", "db")]),
        5.0
    );
    assert_eq!(
        value(
            &s,
            "gantry_breaker_state",
            &[("service", "db"), ("state", "half-open")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "gantry_breaker_state",
            &[("service", "db"), ("state", "closed")]
        ),
        0.0
    );
    assert!(
        find(&s, "gantry_breaker_state", &[("service", "api")]).is_none(),
        "no breaker configured for api"
    );
    assert_eq!(value(&s, "gantry_boot_duration_seconds", &[]), 1.5);
    assert_eq!(
        value(&s, "gantry_boot_outcome", &[("outcome", "degraded")]),
        1.0
    );
    assert_eq!(value(&s, "gantry_boot_outcome", &[("outcome", "go")]), 0.0);
    assert_eq!(
        value(&s, "gantry_boot_outcome", &[("outcome", "no-go")]),
        0.0
    );
    assert_eq!(
        value(&s, "gantry_process_cpu_seconds_total", &[("service", "db")]),
        12.5
    );
    assert_eq!(
        value(
            &s,
            "gantry_process_resident_memory_bytes",
            &[("service", "db")]
        ),
        104_857_600.0
    );
    assert!(
        find(
            &s,
            "gantry_process_cpu_seconds_total",
            &[("service", "api")]
        )
        .is_none()
    );
}

#[tokio::test]
async fn an_unready_service_shows_in_the_state_set_and_counts_its_losses() {
    let mut snap = go();
    snap.services[0] = service("db", "unready", "critical");
    snap.services[0].readiness_lost_total = 2;
    let (_, s) = scrape(snap).await;
    let db_state = |st: &str| {
        value(
            &s,
            "gantry_service_state",
            &[("service", "db"), ("state", st)],
        )
    };
    assert_eq!((db_state("unready"), db_state("ready")), (1.0, 0.0));
    assert_eq!(value(&s, "gantry_service_ready", &[("service", "db")]), 0.0);
    assert_eq!(
        value(
            &s,
            "gantry_service_readiness_lost_total",
            &[("service", "db")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "gantry_service_readiness_lost_total",
            &[("service", "api")]
        ),
        0.0
    );
}

#[tokio::test]
async fn probe_histogram_observes_every_duration() {
    let (_, s) = scrape(sample()).await;
    let Some(Value::Histogram(buckets)) =
        find(&s, "gantry_probe_duration_seconds", &[("service", "db")]).map(|x| &x.value)
    else {
        panic!("no histogram for db");
    };
    let cumulative: HashMap<String, f64> = buckets
        .iter()
        .map(|b| (b.less_than.to_string(), b.count))
        .collect();
    assert_eq!(
        buckets.len(),
        gantry_api::PROBE_BUCKETS.len() + 1,
        "14 bounds and +Inf"
    );
    assert_eq!(cumulative["0.0005"], 1.0);
    assert_eq!(cumulative["0.005"], 3.0);
    assert_eq!(cumulative["0.25"], 4.0);
    assert_eq!(cumulative["10"], 5.0);
    assert_eq!(cumulative["inf"], 6.0);
    assert_eq!(
        value(
            &s,
            "gantry_probe_duration_seconds_count",
            &[("service", "db")]
        ),
        6.0
    );
    let sum = value(
        &s,
        "gantry_probe_duration_seconds_sum",
        &[("service", "db")],
    );
    assert!((sum - 49.7064).abs() < 1e-9, "{sum}");
    // A service without probes still has an (empty) histogram.
    assert_eq!(
        value(
            &s,
            "gantry_probe_duration_seconds_count",
            &[("service", "api")]
        ),
        0.0
    );
}

#[tokio::test]
async fn booting_has_no_outcome_and_a_growing_duration() {
    let (_, s) = scrape(booting()).await;
    for o in ["go", "degraded", "no-go"] {
        assert_eq!(
            value(&s, "gantry_boot_outcome", &[("outcome", o)]),
            0.0,
            "{o}"
        );
    }
    // Started at 2026-01-01 in the fixture: the time so far is positive.
    assert!(value(&s, "gantry_boot_duration_seconds", &[]) > 0.0);
    assert_eq!(
        value(
            &s,
            "gantry_service_state",
            &[("service", "db"), ("state", "starting")]
        ),
        1.0
    );
}

#[tokio::test]
async fn odd_names_and_values_are_escaped_not_fatal() {
    let mut snap = go();
    snap.services[0].name = "we\"ird\\name\nx".to_string();
    snap.services[0].probes =
        gantry_api::model::ProbeHistogram::of(&[f64::NAN, f64::INFINITY, 0.01]);
    snap.services[0].cpu_seconds = Some(f64::NAN);
    snap.services[1].state = "hibernating".to_string();
    let r = get(Harness::new(snap).router(), "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains(r#"service="we\"ird\\name\nx""#),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains(r#"gantry_service_state{service="migrate",state="hibernating"} 1"#),
        "{}",
        r.body
    );
    assert!(r.body.trim_end().ends_with("# EOF"));
}

/// Every family's series come sorted by their labels, and a histogram's lines stay together per service.
#[tokio::test]
async fn series_are_sorted_by_service() {
    let mut snap = degraded();
    for (i, s) in snap.services.iter_mut().enumerate() {
        s.rss_bytes = Some(1000 + i as u64);
        s.probes = gantry_api::model::ProbeHistogram::of(&[0.001, 0.2]);
    }
    let r = get(Harness::new(snap).router(), "/metrics").await;
    for family in [
        "gantry_service_ready{",
        "gantry_process_resident_memory_bytes{",
        "gantry_probe_duration_seconds_sum{",
    ] {
        let services: Vec<&str> = r
            .body
            .lines()
            .filter(|l| l.starts_with(family))
            .map(|l| l.split('"').nth(1).unwrap_or(""))
            .collect();
        assert_eq!(
            services,
            ["api", "db", "migrate", "search"],
            "{family}\n{}",
            r.body
        );
    }
    // Buckets, sum and count of one service together, services in order.
    let mut runs: Vec<&str> = r
        .body
        .lines()
        .filter(|l| l.starts_with("gantry_probe_duration_seconds"))
        .filter_map(|l| l.split("service=\"").nth(1)?.split('"').next())
        .collect();
    runs.dedup();
    assert_eq!(runs, ["api", "db", "migrate", "search"], "{}", r.body);
    let states: Vec<&str> = r
        .body
        .lines()
        .filter(|l| l.starts_with("gantry_service_state{service=\"db\""))
        .map(|l| l.split('"').nth(3).unwrap_or(""))
        .collect();
    let mut sorted = states.clone();
    sorted.sort_unstable();
    assert_eq!(states, sorted);
}

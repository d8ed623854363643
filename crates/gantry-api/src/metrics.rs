//! `/metrics`: a Prometheus/OpenMetrics exposition built with prometheus-client from the
//! current snapshot at scrape time (a fresh registry per scrape, so nothing drifts from the snapshot).

use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::ApiError;
use crate::model::{ApiState, BootPhase, Snapshot};

/// What prometheus-client's text encoder writes: OpenMetrics 1.0 (counters as `<name>_total`,
/// a closing `# EOF`). Prometheus asks for it by default.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Probe durations span sub-millisecond TCP connects to multi-second exec probes.
pub const PROBE_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every state a service can be in; the state-set gauge writes one series per state.
const SERVICE_STATES: [&str; 11] = [
    "pending",
    "starting",
    "ready",
    "completed",
    "running",
    "unready",
    "degraded",
    "failed",
    "skipped",
    "stopping",
    "stopped",
];
const BREAKER_STATES: [&str; 3] = ["closed", "open", "half-open"];
const OUTCOMES: [&str; 3] = ["go", "degraded", "no-go"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceStateLabel {
    service: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

fn svc(name: &str) -> ServiceLabel {
    ServiceLabel {
        service: name.to_string(),
    }
}

fn svc_state(name: &str, state: &str) -> ServiceStateLabel {
    ServiceStateLabel {
        service: name.to_string(),
        state: state.to_string(),
    }
}

fn probe_histogram() -> Histogram {
    Histogram::new(PROBE_BUCKETS)
}

/// Lossy on purpose: counts above 2^53 are not a real concern for restarts or probe failures.
fn as_f64(v: u64) -> f64 {
    v as f64
}

/// Renders the exposition for one snapshot. `now` is used for the boot duration while booting.
pub(crate) fn render(snap: &Snapshot, now: SystemTime) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();

    let state = Family::<ServiceStateLabel, Gauge>::default();
    let ready = Family::<ServiceLabel, Gauge>::default();
    // prometheus-client appends `_total` to counter names itself, so they are registered without it.
    let restarts = Family::<ServiceLabel, Counter>::default();
    let attempts = Family::<ServiceLabel, Counter>::default();
    let time_to_ready = Family::<ServiceLabel, FloatGauge>::default();
    let probe =
        Family::<ServiceLabel, Histogram, fn() -> Histogram>::new_with_constructor(probe_histogram);
    let probe_failures = Family::<ServiceLabel, Counter>::default();
    let readiness_lost = Family::<ServiceLabel, Counter>::default();
    let breaker = Family::<ServiceStateLabel, Gauge>::default();
    let boot_duration = FloatGauge::default();
    let outcome = Family::<OutcomeLabel, Gauge>::default();
    let cpu = Family::<ServiceLabel, FloatCounter>::default();
    let rss = Family::<ServiceLabel, Gauge>::default();
    let dropped = Family::<ServiceLabel, Counter>::default();

    for s in &snap.services {
        let label = svc(&s.name);
        for st in SERVICE_STATES {
            state
                .get_or_create(&svc_state(&s.name, st))
                .set(i64::from(s.state == st));
        }
        // A state this build does not know still shows up with its 1, instead of all zeros.
        if !SERVICE_STATES.contains(&s.state.as_str()) {
            state.get_or_create(&svc_state(&s.name, &s.state)).set(1);
        }
        ready.get_or_create(&label).set(i64::from(s.ready));
        restarts.get_or_create(&label).inc_by(u64::from(s.restarts));
        attempts.get_or_create(&label).inc_by(u64::from(s.attempts));
        if let Some(ms) = s.time_to_ready_ms {
            time_to_ready.get_or_create(&label).set(as_f64(ms) / 1000.0);
        }
        let hist = probe.get_or_create(&label);
        // Non-finite values would poison the sum forever; they can only be a driver bug.
        for d in s.probe_durations.iter().copied().filter(|d| d.is_finite()) {
            hist.observe(d);
        }
        drop(hist);
        probe_failures
            .get_or_create(&label)
            .inc_by(s.probe_failures_total);
        readiness_lost
            .get_or_create(&label)
            .inc_by(s.readiness_lost_total);
        if let Some(b) = &s.breaker {
            for st in BREAKER_STATES {
                breaker
                    .get_or_create(&svc_state(&s.name, st))
                    .set(i64::from(b == st));
            }
            if !BREAKER_STATES.contains(&b.as_str()) {
                breaker.get_or_create(&svc_state(&s.name, b)).set(1);
            }
        }
        if let Some(c) = s.cpu_seconds.filter(|c| c.is_finite() && *c >= 0.0) {
            cpu.get_or_create(&label).inc_by(c);
        }
        if let Some(r) = s.rss_bytes {
            rss.get_or_create(&label)
                .set(i64::try_from(r).unwrap_or(i64::MAX));
        }
        dropped
            .get_or_create(&label)
            .inc_by(s.output_dropped_lines_total);
    }

    match &snap.boot {
        BootPhase::Decided {
            outcome: decided,
            duration_ms,
            ..
        } => {
            boot_duration.set(as_f64(*duration_ms) / 1000.0);
            for o in OUTCOMES {
                outcome
                    .get_or_create(&OutcomeLabel {
                        outcome: o.to_string(),
                    })
                    .set(i64::from(decided == o));
            }
            if !OUTCOMES.contains(&decided.as_str()) {
                outcome
                    .get_or_create(&OutcomeLabel {
                        outcome: decided.clone(),
                    })
                    .set(1);
            }
        }
        BootPhase::Booting => {
            // Still booting: the time so far, so a stuck boot is visible as a growing number.
            let so_far = now
                .duration_since(snap.started_at)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            boot_duration.set(so_far);
            for o in OUTCOMES {
                outcome
                    .get_or_create(&OutcomeLabel {
                        outcome: o.to_string(),
                    })
                    .set(0);
            }
        }
    }

    registry.register(
        "gantry_output_dropped_lines",
        "Output lines of the service dropped because it wrote faster than gantry could log them",
        dropped,
    );
    registry.register(
        "gantry_service_state",
        "Service state as a state set: 1 for the current state, 0 for the others",
        state,
    );
    registry.register(
        "gantry_service_ready",
        "1 when the service meets its readiness gate",
        ready,
    );
    registry.register(
        "gantry_service_restarts",
        "Restarts of the service since gantry started",
        restarts,
    );
    registry.register(
        "gantry_service_start_attempts",
        "Start attempts in the current boot",
        attempts,
    );
    registry.register(
        "gantry_service_time_to_ready_seconds",
        "Time from the first attempt of the service's latest start (the boot's, or a restart's) to ready",
        time_to_ready,
    );
    registry.register(
        "gantry_probe_duration_seconds",
        "Duration of readiness and liveness probes",
        probe,
    );
    registry.register(
        "gantry_probe_failures",
        "Failed probes of the service",
        probe_failures,
    );
    registry.register(
        "gantry_service_readiness_lost",
        "Times the service turned unready while up (readiness failed failure_threshold times in a row; it is not restarted)",
        readiness_lost,
    );
    registry.register(
        "gantry_breaker_state",
        "Start circuit breaker state as a state set: 1 for the current state",
        breaker,
    );
    registry.register(
        "gantry_boot_duration_seconds",
        "Duration of the boot until it was decided (time so far while booting)",
        boot_duration,
    );
    let drift = Gauge::<i64>::default();
    drift.set(i64::try_from(snap.drift_problems).unwrap_or(i64::MAX));
    if let Some(c) = &snap.cluster {
        let leader = Gauge::<i64>::default();
        leader.set(i64::from(c.role == "leader"));
        registry.register(
            "gantry_cluster_leader",
            "1 while this instance holds the cluster lease and runs the stack ([cluster])",
            leader,
        );
        let term = Gauge::<i64>::default();
        term.set(c.term);
        registry.register(
            "gantry_cluster_term",
            "The term of the cluster lease this instance saw last (the fencing token)",
            term,
        );
    }
    registry.register(
        "gantry_revalidation_problems",
        "Problems the last continuous validation found (settings.revalidate)",
        drift,
    );
    registry.register(
        "gantry_boot_outcome",
        "1 for the decided boot outcome",
        outcome,
    );
    registry.register(
        "gantry_process_cpu_seconds",
        "CPU time used by the service's process",
        cpu,
    );
    registry.register(
        "gantry_process_resident_memory_bytes",
        "Resident memory of the service's process",
        rss,
    );

    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(sort_series(&out))
}

/// The label set of a sample line without a trailing `le` (so a histogram's buckets, sum and
/// count stay together, in the encoder's order); `""` for a line without labels.
fn series_key(line: &str) -> &str {
    let (Some(open), Some(close)) = (line.find('{'), line.rfind('}')) else {
        return "";
    };
    if close <= open {
        return "";
    }
    let labels = &line[open + 1..close];
    match labels.rfind("le=\"") {
        Some(0) => "",
        Some(i)
            if labels[..i].ends_with(',')
                && !labels[i + 4..].trim_end_matches('"').contains('"') =>
        {
            &labels[..i - 1]
        }
        _ => labels,
    }
}

/// prometheus-client writes a family's series in hash order; this sorts the sample lines of
/// every family by their label set (stable, so the lines of one series keep their order), so
/// two scrapes of the same snapshot are byte-identical and a service's series are easy to find.
fn sort_series(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut samples: Vec<&str> = Vec::new();
    let flush = |samples: &mut Vec<&str>, out: &mut String| {
        samples.sort_by(|a, b| series_key(a).cmp(series_key(b)));
        for l in samples.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut samples, &mut out);
            out.push_str(line);
            out.push('\n');
        } else {
            samples.push(line);
        }
    }
    flush(&mut samples, &mut out);
    out
}

pub(crate) async fn metrics(State(state): State<ApiState>) -> Response {
    let snap = state.snapshot.borrow().clone();
    match render(&snap, SystemTime::now()) {
        Ok(mut body) => {
            // The proxy's and the flags' series go before the OpenMetrics `# EOF` line.
            let eof = body.rfind("# EOF").unwrap_or(body.len());
            let tail = body.split_off(eof);
            if let Some(ingress) = &state.ingress {
                ingress.render_metrics(&mut body);
            }
            state.flag_stats.render(&mut body);
            body.push_str(&tail);
            (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
        }
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded",
            "this is a gantry bug; the JSON status at GET /api/v1/status still works",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_sorted_within_each_family_and_buckets_keep_their_order() {
        let text = "# HELP a x\n# TYPE a gauge\na{service=\"web\"} 1\na{service=\"api\"} 2\n\
                    # HELP h x\n# TYPE h histogram\n\
                    h_sum{service=\"z\"} 1\nh_count{service=\"z\"} 1\n\
                    h_bucket{service=\"z\",le=\"0.5\"} 0\nh_bucket{service=\"z\",le=\"+Inf\"} 1\n\
                    h_sum{service=\"b\"} 2\nh_count{service=\"b\"} 1\n\
                    h_bucket{service=\"b\",le=\"0.5\"} 0\nh_bucket{service=\"b\",le=\"+Inf\"} 1\n# EOF\n";
        let want = "# HELP a x\n# TYPE a gauge\na{service=\"api\"} 2\na{service=\"web\"} 1\n\
                    # HELP h x\n# TYPE h histogram\n\
                    h_sum{service=\"b\"} 2\nh_count{service=\"b\"} 1\n\
                    h_bucket{service=\"b\",le=\"0.5\"} 0\nh_bucket{service=\"b\",le=\"+Inf\"} 1\n\
                    h_sum{service=\"z\"} 1\nh_count{service=\"z\"} 1\n\
                    h_bucket{service=\"z\",le=\"0.5\"} 0\nh_bucket{service=\"z\",le=\"+Inf\"} 1\n# EOF\n";
        assert_eq!(sort_series(text), want);
    }
}

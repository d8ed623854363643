//! `/metrics`: a Prometheus/OpenMetrics exposition written straight from the current snapshot
//! at scrape time (nothing kept between scrapes, so nothing drifts from the snapshot).
//!
//! The text is written directly rather than through a metrics registry: at 1,000 services
//! a scrape is about 37,000 lines, and building a registry of labelled families (one
//! allocation per label set, a hash map per family, then a sort of the hash-ordered output)
//! cost over 100 ms of the event loop's neighbour; writing sorted lines into one buffer
//! takes a few. The format is what prometheus-client's encoder wrote (OpenMetrics 1.0:
//! counters as `<name>_total`, help ending in a period, families without samples left out,
//! series sorted by their labels, a closing `# EOF`), which `promtool check metrics` and the
//! tests' prometheus-parse accept.

use std::fmt::Write as _;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::model::{ApiState, BootPhase, ServiceSnapshot, Snapshot};

/// What the exposition is: OpenMetrics 1.0 (counters as `<name>_total`, a closing `# EOF`).
/// Prometheus asks for it by default.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub use crate::model::PROBE_BUCKETS;

/// Every state a service can be in, in label order; the state set writes one series each.
const SERVICE_STATES: [&str; 11] = [
    "completed",
    "degraded",
    "failed",
    "pending",
    "ready",
    "running",
    "skipped",
    "starting",
    "stopped",
    "stopping",
    "unready",
];
const BREAKER_STATES: [&str; 3] = ["closed", "half-open", "open"];
const OUTCOMES: [&str; 3] = ["degraded", "go", "no-go"];

/// A label value as OpenMetrics quotes it.
fn escaped(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

/// A float as the encoder wrote it (`0.0`, `0.249`, `1.0`).
struct Float(f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Writes the family `name` (header, then what `body` writes), or nothing when `body`
/// writes no sample.
fn family(
    out: &mut String,
    scratch: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    body: impl FnOnce(&mut String) -> std::fmt::Result,
) -> std::fmt::Result {
    scratch.clear();
    body(scratch)?;
    if !scratch.is_empty() {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} {kind}")?;
        out.push_str(scratch);
    }
    Ok(())
}

/// One sample per service: `name{service="..."} value`, for the services `value` gives one.
fn per_service<V: std::fmt::Display>(
    out: &mut String,
    services: &[&ServiceSnapshot],
    name: &str,
    value: impl Fn(&ServiceSnapshot) -> Option<V>,
) -> std::fmt::Result {
    for s in services {
        if let Some(v) = value(s) {
            writeln!(out, "{name}{{service=\"{}\"}} {v}", escaped(&s.name))?;
        }
    }
    Ok(())
}

/// A state set: 1 for `current`, 0 for the other `known` states (all 0 without a current
/// one); a state this build does not know still shows up with its 1 (in label order),
/// instead of all zeros.
fn state_set(
    out: &mut String,
    name: &str,
    labels: &str,
    key: &str,
    known: &[&str],
    current: Option<&str>,
) -> std::fmt::Result {
    let mut states: Vec<&str> = known.to_vec();
    if let Some(c) = current.filter(|c| !known.contains(c)) {
        states.push(c);
        states.sort_unstable();
    }
    for st in states {
        writeln!(
            out,
            "{name}{{{labels}{key}=\"{}\"}} {}",
            escaped(st),
            u8::from(Some(st) == current)
        )?;
    }
    Ok(())
}

/// Renders the exposition for one snapshot. `now` is used for the boot duration while booting.
pub(crate) fn render(snap: &Snapshot, now: SystemTime) -> Result<String, std::fmt::Error> {
    // Series are sorted by their label set, i.e. by service name.
    let mut services: Vec<&ServiceSnapshot> = snap.services.iter().collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let services = &services[..];
    let mut out = String::with_capacity(256 + services.len() * 2400);
    let mut scratch = String::with_capacity(services.len() * 1100);
    let (o, sc) = (&mut out, &mut scratch);

    family(
        o,
        sc,
        "gantry_output_dropped_lines",
        "Output lines of the service dropped because it wrote faster than gantry could log them.",
        "counter",
        |b| {
            per_service(b, services, "gantry_output_dropped_lines_total", |s| {
                Some(s.output_dropped_lines_total)
            })
        },
    )?;
    family(
        o,
        sc,
        "gantry_service_state",
        "Service state as a state set: 1 for the current state, 0 for the others.",
        "gauge",
        |b| {
            for s in services {
                let labels = format!("service=\"{}\",", escaped(&s.name));
                state_set(
                    b,
                    "gantry_service_state",
                    &labels,
                    "state",
                    &SERVICE_STATES,
                    Some(&s.state),
                )?;
            }
            Ok(())
        },
    )?;
    family(
        o,
        sc,
        "gantry_service_ready",
        "1 when the service meets its readiness gate.",
        "gauge",
        |b| {
            per_service(b, services, "gantry_service_ready", |s| {
                Some(u8::from(s.ready))
            })
        },
    )?;
    family(
        o,
        sc,
        "gantry_service_restarts",
        "Restarts of the service since gantry started.",
        "counter",
        |b| {
            per_service(b, services, "gantry_service_restarts_total", |s| {
                Some(s.restarts)
            })
        },
    )?;
    family(
        o,
        sc,
        "gantry_service_start_attempts",
        "Start attempts in the current boot.",
        "counter",
        |b| {
            per_service(b, services, "gantry_service_start_attempts_total", |s| {
                Some(s.attempts)
            })
        },
    )?;
    family(
        o,
        sc,
        "gantry_service_time_to_ready_seconds",
        "Time from the first attempt of the service's latest start (the boot's, or a restart's) to ready.",
        "gauge",
        |b| {
            per_service(b, services, "gantry_service_time_to_ready_seconds", |s| {
                s.time_to_ready_ms.map(|ms| Float(ms as f64 / 1000.0))
            })
        },
    )?;
    family(
        o,
        sc,
        "gantry_probe_duration_seconds",
        "Duration of readiness and liveness probes.",
        "histogram",
        |b| {
            for s in services {
                let name = escaped(&s.name);
                let h = &s.probes;
                let (sum, count) = (h.sum, h.count);
                let mut cumulative = 0;
                for (le, n) in PROBE_BUCKETS.iter().zip(h.buckets) {
                    cumulative += n;
                    writeln!(
                        b,
                        "gantry_probe_duration_seconds_bucket{{le=\"{}\",service=\"{name}\"}} {cumulative}",
                        Float(*le)
                    )?;
                }
                writeln!(
                    b,
                    "gantry_probe_duration_seconds_bucket{{le=\"+Inf\",service=\"{name}\"}} {count}"
                )?;
                writeln!(
                    b,
                    "gantry_probe_duration_seconds_sum{{service=\"{name}\"}} {}",
                    Float(sum)
                )?;
                writeln!(
                    b,
                    "gantry_probe_duration_seconds_count{{service=\"{name}\"}} {count}"
                )?;
            }
            Ok(())
        },
    )?;
    family(
        o,
        sc,
        "gantry_probe_failures",
        "Failed probes of the service.",
        "counter",
        |b| {
            per_service(b, services, "gantry_probe_failures_total", |s| {
                Some(s.probe_failures_total)
            })
        },
    )?;
    family(
        o,
        sc,
        "gantry_service_readiness_lost",
        "Times the service turned unready while up (readiness failed failure_threshold times in a row; it is not restarted).",
        "counter",
        |b| {
            per_service(b, services, "gantry_service_readiness_lost_total", |s| {
                Some(s.readiness_lost_total)
            })
        },
    )?;
    family(
        o,
        sc,
        "gantry_breaker_state",
        "Start circuit breaker state as a state set: 1 for the current state.",
        "gauge",
        |b| {
            for s in services {
                if let Some(br) = &s.breaker {
                    let labels = format!("service=\"{}\",", escaped(&s.name));
                    state_set(
                        b,
                        "gantry_breaker_state",
                        &labels,
                        "state",
                        &BREAKER_STATES,
                        Some(br),
                    )?;
                }
            }
            Ok(())
        },
    )?;
    let (boot_seconds, decided) = match &snap.boot {
        BootPhase::Decided {
            outcome,
            duration_ms,
            ..
        } => (*duration_ms as f64 / 1000.0, Some(outcome.as_str())),
        // Still booting: the time so far, so a stuck boot is visible as a growing number.
        BootPhase::Booting => (
            now.duration_since(snap.started_at)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            None,
        ),
    };
    family(
        o,
        sc,
        "gantry_boot_duration_seconds",
        "Duration of the boot until it was decided (time so far while booting).",
        "gauge",
        |b| writeln!(b, "gantry_boot_duration_seconds {}", Float(boot_seconds)),
    )?;
    if let Some(c) = &snap.cluster {
        family(
            o,
            sc,
            "gantry_cluster_leader",
            "1 while this instance holds the cluster lease and runs the stack ([cluster]).",
            "gauge",
            |b| writeln!(b, "gantry_cluster_leader {}", u8::from(c.role == "leader")),
        )?;
        family(
            o,
            sc,
            "gantry_cluster_term",
            "The term of the cluster lease this instance saw last (the fencing token).",
            "gauge",
            |b| writeln!(b, "gantry_cluster_term {}", c.term),
        )?;
    }
    family(
        o,
        sc,
        "gantry_revalidation_problems",
        "Problems the last continuous validation found (settings.revalidate).",
        "gauge",
        |b| writeln!(b, "gantry_revalidation_problems {}", snap.drift_problems),
    )?;
    family(
        o,
        sc,
        "gantry_boot_outcome",
        "1 for the decided boot outcome.",
        "gauge",
        |b| state_set(b, "gantry_boot_outcome", "", "outcome", &OUTCOMES, decided),
    )?;
    family(
        o,
        sc,
        "gantry_process_cpu_seconds",
        "CPU time used by the service's process.",
        "counter",
        |b| {
            per_service(b, services, "gantry_process_cpu_seconds_total", |s| {
                s.cpu_seconds
                    .filter(|c| c.is_finite() && *c >= 0.0)
                    .map(Float)
            })
        },
    )?;
    family(
        o,
        sc,
        "gantry_process_resident_memory_bytes",
        "Resident memory of the service's process.",
        "gauge",
        |b| {
            per_service(b, services, "gantry_process_resident_memory_bytes", |s| {
                s.rss_bytes.map(|r| i64::try_from(r).unwrap_or(i64::MAX))
            })
        },
    )?;
    out.push_str("# EOF\n");
    Ok(out)
}

pub(crate) async fn metrics(State(state): State<ApiState>) -> Response {
    // Figures no older than the feed allows (figures.rs).
    let snap = state.figures.fresh(&state.snapshot).await;
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

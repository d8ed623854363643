//! Golden signals: per-route and per-instance counters and a fixed-bucket latency
//! histogram, all atomics (no lock, no allocation per request), rendered as a serde
//! snapshot and as Prometheus text.

use serde::Serialize;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf).
pub(crate) const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// A fixed-bucket histogram of durations.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    fn counts(&self) -> [u64; BUCKETS_US.len() + 1] {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }

    /// The q-quantile in milliseconds, interpolated inside its bucket; `None` when empty.
    pub(crate) fn quantile_ms(counts: &[u64], q: f64) -> Option<f64> {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0);
        let mut seen = 0u64;
        for (i, &c) in counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if (seen + c) as f64 >= rank {
                let lo = if i == 0 { 0 } else { BUCKETS_US[i - 1] } as f64;
                let hi = BUCKETS_US
                    .get(i)
                    .copied()
                    .unwrap_or(BUCKETS_US[BUCKETS_US.len() - 1] * 2)
                    as f64;
                let frac = (rank - seen as f64) / c as f64;
                return Some((lo + (hi - lo) * frac) / 1000.0);
            }
            seen += c;
        }
        None
    }
}

/// Cumulative figures of one side of a canary split (the sum over its instances), for a
/// rollout's analysis: two tallies taken a step apart give the step's window with
/// [`Tally::since`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Upstream answers and failures.
    pub requests: u64,
    /// 5xx answers plus connect errors and timeouts.
    pub failures: u64,
    /// Latency bucket counts (the bounds of `gantry_ingress_instance_request_duration_seconds`).
    pub buckets: Vec<u64>,
}

/// What happened between two tallies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// Requests in the window.
    pub requests: u64,
    /// Failed ones (5xx, connect errors, timeouts).
    pub failures: u64,
    /// failures / requests (0 without requests).
    pub failure_ratio: f64,
    /// `None` without requests.
    pub p99_ms: Option<f64>,
}

impl Tally {
    pub(crate) fn add(&mut self, s: &Signals) {
        let classes: u64 = s.classes.iter().map(|c| c.load(Relaxed)).sum();
        let errors = s.errors.load(Relaxed);
        self.requests += classes + errors;
        self.failures += s.classes[4].load(Relaxed) + errors;
        let counts = s.latency.counts();
        if self.buckets.len() < counts.len() {
            self.buckets.resize(counts.len(), 0);
        }
        for (b, c) in self.buckets.iter_mut().zip(counts) {
            *b += c;
        }
    }

    /// The window from `earlier` to this tally. Counters of instances replaced in between
    /// restart from zero, so every difference saturates at zero rather than wrapping.
    pub fn since(&self, earlier: &Tally) -> Window {
        let requests = self.requests.saturating_sub(earlier.requests);
        let failures = self.failures.saturating_sub(earlier.failures).min(requests);
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| b.saturating_sub(earlier.buckets.get(i).copied().unwrap_or(0)))
            .collect();
        Window {
            requests,
            failures,
            failure_ratio: if requests == 0 {
                0.0
            } else {
                failures as f64 / requests as f64
            },
            p99_ms: Histogram::quantile_ms(&buckets, 0.99),
        }
    }
}

/// Both sides of a service's split.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SplitTally {
    /// The instances not in the canary.
    pub stable: Tally,
    /// The canary's instances.
    pub canary: Tally,
}

/// Why the ingress answered a request itself.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shed {
    WriteDrain = 0,
    Brownout = 1,
    Emergency = 2,
    NotOpen = 3,
    NoInstance = 4,
}

const SHED_NAMES: [&str; 5] = [
    "write_drain",
    "brownout",
    "emergency",
    "not_open",
    "no_instance",
];

/// Counters shared by routes and instances.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    pub(crate) classes: [AtomicU64; 5],
    pub(crate) latency: Histogram,
    pub(crate) in_flight: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) errors: AtomicU64,
}

impl Signals {
    pub(crate) fn record(&self, status: u16, d: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.classes[class].fetch_add(1, Relaxed);
        self.latency.record(d);
    }

    fn snapshot(&self) -> SignalsSnapshot {
        let counts = self.latency.counts();
        SignalsSnapshot {
            requests: RequestsByClass {
                c1xx: self.classes[0].load(Relaxed),
                c2xx: self.classes[1].load(Relaxed),
                c3xx: self.classes[2].load(Relaxed),
                c4xx: self.classes[3].load(Relaxed),
                c5xx: self.classes[4].load(Relaxed),
            },
            in_flight: self.in_flight.load(Relaxed),
            retries: self.retries.load(Relaxed),
            upstream_errors: self.errors.load(Relaxed),
            p50_ms: Histogram::quantile_ms(&counts, 0.50),
            p95_ms: Histogram::quantile_ms(&counts, 0.95),
            p99_ms: Histogram::quantile_ms(&counts, 0.99),
        }
    }
}

/// Per-route counters.
#[derive(Debug, Default)]
pub(crate) struct RouteMetrics {
    pub(crate) signals: Signals,
    pub(crate) sheds: [AtomicU64; 5],
}

impl RouteMetrics {
    pub(crate) fn shed(&self, why: Shed) {
        self.sheds[why as usize].fetch_add(1, Relaxed);
    }
}

/// Requests by status class.
#[derive(Debug, Clone, Serialize)]
pub struct RequestsByClass {
    /// 1xx (upgrades).
    #[serde(rename = "1xx")]
    pub c1xx: u64,
    /// 2xx.
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    /// 3xx.
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    /// 4xx.
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    /// 5xx, the ingress's own 503s included.
    #[serde(rename = "5xx")]
    pub c5xx: u64,
}

/// Golden signals of a route or an instance.
#[derive(Debug, Clone, Serialize)]
pub struct SignalsSnapshot {
    /// Requests answered, by status class.
    pub requests: RequestsByClass,
    /// Requests being served now.
    pub in_flight: u64,
    /// Retries made.
    pub retries: u64,
    /// Connect errors and timeouts toward upstreams.
    pub upstream_errors: u64,
    /// Median latency (to the response head), ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
}

/// One route in the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct RouteSnapshot {
    /// Route name.
    pub name: String,
    /// Its service.
    pub service: String,
    /// Its signals.
    #[serde(flatten)]
    pub signals: SignalsSnapshot,
    /// Requests the ingress answered itself, by reason.
    pub shed: std::collections::BTreeMap<&'static str, u64>,
}

/// One instance in the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceSnapshot {
    /// Service.
    pub service: String,
    /// `api#2`.
    pub id: String,
    /// Address.
    pub addr: String,
    /// Ready as the supervisor last said.
    pub ready: bool,
    /// Being drained.
    pub draining: bool,
    /// Breaker state (`closed`, `open`, `half_open`, ...).
    pub breaker: &'static str,
    /// Upstream connections open now (idle + active).
    pub connections: u64,
    /// Out of balancing by outlier detection now.
    pub ejected: bool,
    /// Belongs to the canary side of the service's split.
    pub canary: bool,
    /// Times outlier detection ejected it (this incarnation).
    pub ejections: u64,
    /// Its signals.
    #[serde(flatten)]
    pub signals: SignalsSnapshot,
}

/// Everything the ingress measures, for the JSON API.
#[derive(Debug, Clone, Serialize)]
pub struct IngressSnapshot {
    /// Open for traffic (boot is GO).
    pub open: bool,
    /// Current mode.
    pub mode: crate::Mode,
    /// Per route.
    pub routes: Vec<RouteSnapshot>,
    /// Per instance.
    pub instances: Vec<InstanceSnapshot>,
    /// Access log lines dropped because the writer fell behind.
    pub access_log_dropped: u64,
}

pub(crate) fn route_snapshot(name: &str, service: &str, m: &RouteMetrics) -> RouteSnapshot {
    RouteSnapshot {
        name: name.to_owned(),
        service: service.to_owned(),
        signals: m.signals.snapshot(),
        shed: SHED_NAMES
            .iter()
            .zip(&m.sheds)
            .map(|(n, c)| (*n, c.load(Relaxed)))
            .collect(),
    }
}

pub(crate) fn signals_snapshot(s: &Signals) -> SignalsSnapshot {
    s.snapshot()
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Prometheus text for one family of signals; `labels` is `route="x"` or `service="a",instance="a#1"`.
pub(crate) fn render_signals(out: &mut String, prefix: &str, labels: &str, s: &Signals) {
    for (class, c) in CLASSES.iter().zip(&s.classes) {
        let _ = writeln!(
            out,
            "{prefix}_requests_total{{{labels},class=\"{class}\"}} {}",
            c.load(Relaxed)
        );
    }
    let counts = s.latency.counts();
    let mut cum = 0;
    for (i, c) in counts.iter().enumerate() {
        cum += c;
        let le = match BUCKETS_US.get(i) {
            Some(us) => format!("{}", *us as f64 / 1e6),
            None => "+Inf".to_owned(),
        };
        let _ = writeln!(
            out,
            "{prefix}_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cum}"
        );
    }
    let _ = writeln!(
        out,
        "{prefix}_request_duration_seconds_sum{{{labels}}} {}",
        s.latency.sum_us.load(Relaxed) as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "{prefix}_request_duration_seconds_count{{{labels}}} {cum}"
    );
    let _ = writeln!(
        out,
        "{prefix}_in_flight{{{labels}}} {}",
        s.in_flight.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "{prefix}_retries_total{{{labels}}} {}",
        s.retries.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "{prefix}_upstream_errors_total{{{labels}}} {}",
        s.errors.load(Relaxed)
    );
}

pub(crate) fn render_sheds(out: &mut String, labels: &str, m: &RouteMetrics) {
    for (n, c) in SHED_NAMES.iter().zip(&m.sheds) {
        let _ = writeln!(
            out,
            "gantry_ingress_shed_total{{{labels},reason=\"{n}\"}} {}",
            c.load(Relaxed)
        );
    }
}

/// `# HELP` / `# TYPE` lines for one family prefix.
pub(crate) fn render_headers(out: &mut String, prefix: &str, what: &str) {
    let fams: [(&str, &str, &str); 6] = [
        (
            "requests_total",
            "counter",
            "requests answered, by status class",
        ),
        (
            "request_duration_seconds",
            "histogram",
            "time to the response head",
        ),
        ("in_flight", "gauge", "requests being served"),
        ("retries_total", "counter", "retries made"),
        (
            "upstream_errors_total",
            "counter",
            "connect errors and timeouts toward upstreams",
        ),
        (
            "shed_total",
            "counter",
            "requests the ingress answered itself, by reason",
        ),
    ];
    for (name, ty, help) in fams {
        if name == "shed_total" && prefix != "gantry_ingress" {
            continue;
        }
        let _ = writeln!(out, "# HELP {prefix}_{name} Ingress {what}: {help}.");
        let _ = writeln!(out, "# TYPE {prefix}_{name} {ty}");
    }
}

/// Escapes a Prometheus label value.
pub(crate) fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_buckets() {
        let h = Histogram::default();
        for _ in 0..99 {
            h.record(Duration::from_micros(300));
        }
        h.record(Duration::from_millis(40));
        let c = h.counts();
        let p50 = Histogram::quantile_ms(&c, 0.5).unwrap();
        assert!(p50 <= 0.5, "{p50}");
        let p99 = Histogram::quantile_ms(&c, 0.99).unwrap();
        assert!(p99 <= 0.5, "{p99}");
        let p100 = Histogram::quantile_ms(&c, 1.0).unwrap();
        assert!(p100 > 25.0 && p100 <= 50.0, "{p100}");
        assert_eq!(Histogram::quantile_ms(&[0; 15], 0.5), None);
    }
}

//! What the alert evaluator is fed beyond the snapshot: the restarts no command asked for, the
//! disk under the state dir, the days
//! left on the ingress's certificates (re-read when a file changes), every ingress route's
//! requests, failures and latency percentiles, and the open missions (counted every 10 s).

use super::Driver;
use gantry_alerts::Sample;
use std::path::PathBuf;
use std::time::SystemTime;

/// A certificate file the ingress serves, and what was read from it last.
struct CertFile {
    target: String,
    path: PathBuf,
    /// (the file's mtime, its notAfter as Unix seconds) when last read.
    read: Option<(SystemTime, Option<i64>)>,
}

/// Minutes of per-route request totals kept: a day and the 15 minutes compared.
const TRAFFIC_MINUTES: usize = 24 * 60 + 16;
/// The window `ingress_traffic_ratio` compares, in minutes.
const TRAFFIC_WINDOW: usize = 15;
/// A day-old window with fewer requests is no baseline.
const TRAFFIC_MIN_BASELINE: u64 = 100;

/// A route's request total at the start of each minute, newest last.
#[derive(Default)]
struct Traffic {
    minute: u64,
    totals: std::collections::VecDeque<u64>,
}

impl Traffic {
    /// Records `total` for the minute of `now_ms`; the ratio of the last window's requests to
    /// the same window a day earlier, once that baseline exists.
    fn observe(&mut self, now_ms: u64, total: u64) -> Option<f64> {
        let minute = now_ms / 60_000;
        if minute != self.minute {
            // Minutes gantry did not see (a pause) repeat the last total: no requests then.
            let last = self.totals.back().copied().unwrap_or(total);
            let gap = if self.totals.is_empty() {
                1
            } else {
                (minute - self.minute).min(TRAFFIC_MINUTES as u64)
            };
            for _ in 1..gap {
                self.totals.push_back(last);
            }
            self.totals.push_back(total);
            while self.totals.len() > TRAFFIC_MINUTES {
                self.totals.pop_front();
            }
            self.minute = minute;
        }
        let n = self.totals.len();
        let day = 24 * 60;
        if n < day + TRAFFIC_WINDOW + 1 {
            return None;
        }
        let now_total = total;
        let then_end = self.totals[n - 1 - day];
        let then_start = self.totals[n - 1 - day - TRAFFIC_WINDOW];
        let recent_start = self.totals[n - 1 - TRAFFIC_WINDOW];
        let baseline = then_end.saturating_sub(then_start);
        (baseline >= TRAFFIC_MIN_BASELINE)
            .then(|| now_total.saturating_sub(recent_start) as f64 / baseline as f64)
    }
}

/// How often the certificates of TLS probes are looked at (a handshake each).
const PROBE_CERTS_EVERY_MS: u64 = 3_600_000;

/// Cached inputs of the feeders.
#[derive(Default)]
pub(super) struct Feed {
    certs: Vec<CertFile>,
    missions: Option<(u64, f64)>,
    traffic: std::collections::HashMap<String, Traffic>,
    /// The TLS probes' endpoints and when their chain's first certificate ends (Unix s), as
    /// last inspected; when that was.
    probe_certs: Vec<(String, i64)>,
    probe_certs_at: Option<u64>,
}

impl Feed {
    /// The certificate files of `[ingress]` listeners with TLS.
    pub(super) fn new(spec: &gantry_spec::Spec, base_dir: &std::path::Path) -> Feed {
        let certs = spec
            .ingress
            .iter()
            .flat_map(|i| &i.listeners)
            .filter_map(|l| {
                let tls = l.tls.as_ref()?;
                Some(CertFile {
                    target: format!("ingress {}", l.listen.value),
                    path: base_dir.join(&tls.cert.value),
                    read: None,
                })
            })
            .collect();
        Feed {
            certs,
            missions: None,
            traffic: Default::default(),
            probe_certs: Vec::new(),
            probe_certs_at: None,
        }
    }
}

/// A route's requests and failures (5xx and upstream errors) since gantry started.
pub(super) fn route_counts(r: &gantry_ingress::RouteSnapshot) -> (u64, u64) {
    counts(&r.signals)
}

/// Requests and failures (5xx and upstream errors) of a route's or an instance's signals.
fn counts(s: &gantry_ingress::SignalsSnapshot) -> (u64, u64) {
    let c = &s.requests;
    (
        c.c1xx + c.c2xx + c.c3xx + c.c4xx + c.c5xx + s.upstream_errors,
        c.c5xx + s.upstream_errors,
    )
}

/// The notAfter (Unix seconds) of the first certificate in a PEM file.
pub(super) fn not_after(pem: &[u8]) -> Option<i64> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The free share of the file system holding `path` (for unprivileged users), 0 to 1.
fn disk_free_ratio(path: &std::path::Path) -> Option<f64> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    let total = st.blocks() as f64;
    (total > 0.0).then(|| st.blocks_available() as f64 / total)
}

impl Driver {
    /// Samples of the disk, the certificates, the ingress routes and the open missions.
    pub(super) fn feed_samples(&mut self, now_ms: u64, out: &mut Vec<Sample>) {
        // Restarts a command asked for (an operator, a rolling restart, a rollout, a reload) are
        // planned work: a crash loop counts the others only.
        for v in self.host.engine().units() {
            let unplanned = v.restarts.saturating_sub(v.commanded_restarts);
            out.push(Sample::new(
                "service_restarts_total",
                &[("service", v.name)],
                f64::from(unplanned),
            ));
        }
        let state = self.state_dir.display().to_string();
        if let Some(r) = disk_free_ratio(&self.state_dir) {
            out.push(Sample::new("disk_free_ratio", &[("path", &state)], r));
        }
        let now_s = (now_ms / 1000) as i64;
        // Services that stay `starting` (probing) after the boot: how long this incarnation has.
        let engine_now = self.host.now();
        for v in self.host.engine().units() {
            if v.state == gantry_engine::State::Starting
                && let Some(at) = v.started_at
            {
                let secs = engine_now.0.saturating_sub(at.0).as_secs_f64();
                out.push(Sample::new(
                    "service_starting_seconds",
                    &[("service", v.name)],
                    secs,
                ));
            }
        }
        if self
            .alert_feed
            .probe_certs_at
            .is_none_or(|at| now_ms.saturating_sub(at) >= PROBE_CERTS_EVERY_MS)
        {
            self.alert_feed.probe_certs_at = Some(now_ms);
            self.inspect_probe_certs();
        }
        for (target, at) in &self.alert_feed.probe_certs {
            let days = (at - now_s) as f64 / 86_400.0;
            out.push(Sample::new(
                "certificate_days_left",
                &[("target", target)],
                days,
            ));
        }
        for c in &mut self.alert_feed.certs {
            let mtime = std::fs::metadata(&c.path).and_then(|m| m.modified()).ok();
            if mtime.is_some() && c.read.map(|(t, _)| Some(t)) != Some(mtime) {
                let at = std::fs::read(&c.path).ok().and_then(|b| not_after(&b));
                c.read = mtime.map(|t| (t, at));
            }
            if let Some((_, Some(at))) = c.read {
                let days = (at - now_s) as f64 / 86_400.0;
                out.push(Sample::new(
                    "certificate_days_left",
                    &[("target", &c.target)],
                    days,
                ));
            }
        }
        if let Some(ingress) = &self.ingress {
            // One snapshot of the proxy per evaluation, for its instances and its routes.
            let snap = ingress.handle.snapshot();
            // Per instance: one bad replica shows before the route's average does.
            for i in &snap.instances {
                let labels = [("service", i.service.as_str()), ("instance", i.id.as_str())];
                let s = &i.signals;
                let (total, failed) = counts(s);
                out.push(Sample::new(
                    "ingress_instance_requests_total",
                    &labels,
                    total as f64,
                ));
                out.push(Sample::new(
                    "ingress_instance_failures_total",
                    &labels,
                    failed as f64,
                ));
                if let Some(p) = s.p99_ms {
                    out.push(Sample::new("ingress_instance_p99_ms", &labels, p));
                }
            }
            let slo_routes: Vec<&str> = self
                .spec
                .slos
                .iter()
                .map(|s| s.route.value.as_str())
                .collect();
            for r in &snap.routes {
                let labels = [("route", r.name.as_str()), ("service", r.service.as_str())];
                let s = &r.signals;
                let (total, failed) = route_counts(r);
                let traffic = self.alert_feed.traffic.entry(r.name.clone()).or_default();
                if let Some(ratio) = traffic.observe(now_ms, total) {
                    out.push(Sample::new("ingress_traffic_ratio", &labels, ratio));
                }
                // An SLO's route is fed by the SLO's own samples (evaluate_alerts).
                if !slo_routes.contains(&r.name.as_str()) {
                    out.push(Sample::new("ingress_requests_total", &labels, total as f64));
                    out.push(Sample::new(
                        "ingress_failures_total",
                        &labels,
                        failed as f64,
                    ));
                }
                if let Some(p) = s.p95_ms {
                    out.push(Sample::new("ingress_p95_ms", &labels, p));
                }
                if let Some(p) = s.p99_ms {
                    out.push(Sample::new("ingress_p99_ms", &labels, p));
                }
            }
        }
        let stale = self
            .alert_feed
            .missions
            .is_none_or(|(at, _)| now_ms.saturating_sub(at) >= 10_000);
        if stale && let Some(store) = &self.store {
            let open = store.missions(false).map_or(0, |m| m.len());
            self.alert_feed.missions = Some((now_ms, open as f64));
        }
        if let Some((_, n)) = self.alert_feed.missions {
            out.push(Sample::new("missions_open", &[], n));
        }
    }
}

impl Driver {
    /// Looks at the certificate chain of every TLS probe endpoint (https, and stores with TLS)
    /// off the loop; the results come back as [`super::Msg::ProbeCerts`].
    fn inspect_probe_certs(&self) {
        let mut seen = std::collections::HashSet::new();
        let mut endpoints = Vec::new();
        for u in &self.plan.units {
            let s = &u.service;
            for p in [&s.readiness, &s.liveness, &s.startup]
                .into_iter()
                .flatten()
            {
                if let Some(ep) = crate::tls::endpoint(&p.kind)
                    && seen.insert(ep.clone())
                {
                    endpoints.push(ep);
                }
            }
        }
        if endpoints.is_empty() {
            return;
        }
        let (tx, base) = (self.tx.clone(), self.base_dir.clone());
        tokio::spawn(async move {
            let mut found = Vec::new();
            for ep in endpoints {
                let report =
                    crate::tls::inspect::inspect(&ep, &base, std::time::Duration::from_secs(5))
                        .await;
                if let Some((at, _)) = report.expires {
                    found.push((format!("probe {}", ep.target()), at));
                }
            }
            let _ = tx.send(super::Msg::ProbeCerts(found));
        });
    }

    /// The TLS probes' certificates, inspected.
    pub(super) fn probe_certs(&mut self, found: Vec<(String, i64)>) {
        self.alert_feed.probe_certs = found;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_from_a_pem() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 1, 2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let at = not_after(cert.pem().as_bytes()).expect("parsed");
        assert_eq!(at, 1_925_078_400, "2031-01-02T00:00:00Z");
        assert_eq!(not_after(b"not a certificate"), None);
    }

    #[test]
    fn traffic_is_compared_with_the_same_window_a_day_earlier() {
        let mut t = Traffic::default();
        let minute = 60_000u64;
        let mut total = 0u64;
        let mut last = None;
        // A day and a bit at 100 requests a minute, then 20 a minute for 15 minutes.
        for m in 0..(24 * 60 + 40) as u64 {
            total += if m >= 24 * 60 + 25 { 20 } else { 100 };
            last = t.observe(m * minute, total);
            if m < 24 * 60 {
                assert_eq!(
                    last, None,
                    "no baseline before a day of history (minute {m})"
                );
            }
        }
        let ratio = last.expect("a baseline");
        assert!((ratio - 0.2).abs() < 0.01, "{ratio}");
        // A quiet day-old window is no baseline.
        let mut q = Traffic::default();
        for m in 0..(24 * 60 + 20) as u64 {
            assert_eq!(q.observe(m * minute, m), None);
        }
    }

    #[test]
    fn the_disk_has_a_free_share() {
        let r = disk_free_ratio(std::path::Path::new("/")).expect("statvfs");
        assert!((0.0..=1.0).contains(&r), "{r}");
    }
}

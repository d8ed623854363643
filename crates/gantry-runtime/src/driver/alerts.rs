//! The driver's side of alerts: every second the published snapshot becomes samples for the
//! evaluator (gantry-alerts), transitions go on the event stream and to the notifier, and due
//! deliveries run off the loop (log line, webhook POST, exec with the JSON on stdin); results come
//! back as messages. The notifier's state is saved in the store after every change. Gantry's own
//! planned work (a commanded restart — an operator's, a rolling restart's, a rollout's, a reload's —
//! until the new incarnation is up, the rolling restart's current instance, a rollout's canary or
//! green instances) suppresses the alerts of the units it works on meanwhile.

use super::{Driver, Msg};
use gantry_alerts::{Delivery, Evaluator, Notifier, NotifyConfig, Sample, Transition};
use std::collections::HashMap;
use std::time::Duration;

/// How long after gantry starts alerts notified before a restart may be resolved by
/// reconciliation (longer than any built-in rule's `for`).
const RECONCILE_AFTER_MS: u64 = 90_000;

/// How long a commanded restart counts as planned work at most: one whose new incarnation is not
/// up by then is judged like any other (and one that failed at once).
const PLANNED_MAX_MS: u64 = 300_000;

/// Planned work is suppressed this far past each evaluation, so the evaluation after the one that
/// saw it end (a second later, or somewhat more on a busy loop) still judges its samples as planned:
/// the snapshot they come from may have lagged the engine's view by a burst.
const PLANNED_GRACE_MS: u64 = 2_500;

pub(super) struct AlertSide {
    eval: Evaluator,
    notifier: Notifier,
    webhook: Option<String>,
    exec: Option<Vec<String>>,
    started_ms: u64,
    loaded: bool,
    /// Webhook and exec deliveries sent and not answered yet.
    in_flight: usize,
    /// Per unit, at the last evaluation: its commanded restarts and its incarnation.
    seen: HashMap<String, (u32, u64)>,
    /// Units under a commanded restart: the incarnation before it, and until when at most.
    planned: HashMap<String, (u64, u64)>,
    /// A rule watches the services' CPU or memory: they are sampled on a timer then.
    watches_usage: bool,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl AlertSide {
    /// From `[alerts]`; None without one.
    pub(super) fn new(spec: &gantry_spec::Spec) -> Option<AlertSide> {
        let a = spec.alerts.as_ref()?;
        let rules = crate::alert_rules::rules_of(spec);
        let watches_usage = rules.iter().any(|r| {
            r.conditions.iter().any(|c| {
                matches!(
                    c.signal.as_str(),
                    "service_rss_bytes" | "service_cpu_seconds_total"
                )
            })
        });
        let mut sinks = Vec::new();
        if a.log {
            sinks.push("log".to_string());
        }
        if a.webhook.is_some() {
            sinks.push("webhook".to_string());
        }
        if a.exec.is_some() {
            sinks.push("exec".to_string());
        }
        Some(AlertSide {
            eval: Evaluator::new(rules),
            notifier: Notifier::new(NotifyConfig {
                sinks,
                repeat_ms: a.repeat_interval.0.as_millis() as u64,
                ..NotifyConfig::default()
            }),
            webhook: a.webhook.as_ref().map(|w| w.value.clone()),
            exec: a.exec.as_ref().map(|e| e.value.clone()),
            started_ms: now_ms(),
            loaded: false,
            in_flight: 0,
            seen: HashMap::new(),
            planned: HashMap::new(),
            watches_usage,
        })
    }

    pub(super) fn watches_usage(&self) -> bool {
        self.watches_usage
    }
}

/// The snapshot as samples: only once the boot is decided (a boot's own starts are not alerts).
fn samples(snap: &gantry_api::model::Snapshot) -> Vec<Sample> {
    use gantry_api::model::BootPhase;
    let mut out = Vec::new();
    let BootPhase::Decided { outcome, .. } = &snap.boot else {
        return out;
    };
    out.push(Sample::new(
        "boot_no_go",
        &[],
        f64::from(u8::from(outcome == "no-go")),
    ));
    if snap.shutting_down {
        return out;
    }
    for s in &snap.services {
        let svc = [("service", s.name.as_str())];
        let down = matches!(s.state.as_str(), "failed");
        out.push(Sample::new(
            "service_down",
            &[
                ("service", s.name.as_str()),
                ("priority", s.priority.as_str()),
            ],
            f64::from(u8::from(down)),
        ));
        out.push(Sample::new(
            "service_readiness_lost_total",
            &svc,
            s.readiness_lost_total as f64,
        ));
        out.push(Sample::new(
            "service_probe_failures_total",
            &svc,
            s.probe_failures_total as f64,
        ));
        if let Some(rss) = s.rss_bytes {
            out.push(Sample::new("service_rss_bytes", &svc, rss as f64));
        }
        if let Some(cpu) = s.cpu_seconds {
            out.push(Sample::new("service_cpu_seconds_total", &svc, cpu));
        }
        out.push(Sample::new(
            "service_unready",
            &svc,
            f64::from(u8::from(s.state == "unready")),
        ));
        if let Some(b) = &s.breaker {
            // Half-open (one trial admitted) has not closed yet: still open for the alert, so a
            // trial that takes a while and fails again neither resolves it nor fires it anew.
            out.push(Sample::new(
                "breaker_open",
                &svc,
                f64::from(u8::from(b != "closed")),
            ));
        }
    }
    out
}

impl Driver {
    /// One evaluation (every second).
    pub(super) fn evaluate_alerts(&mut self) {
        if self.alerts.is_none() {
            return;
        }
        self.open_pending_store();
        let now = now_ms();
        let snap = self.api.snapshot.borrow().clone();
        let mut samples = samples(&snap);
        if matches!(snap.boot, gantry_api::model::BootPhase::Decided { .. }) && !snap.shutting_down
        {
            self.feed_samples(now, &mut samples);
        }
        if let Some(ingress) = &self.ingress
            && !self.spec.slos.is_empty()
        {
            let routes = ingress.handle.snapshot().routes;
            for slo in &self.spec.slos {
                let path = slo.route.value.as_str();
                let (mut total, mut failed) = (0u64, 0u64);
                for r in routes.iter().filter(|r| {
                    r.name == path || (!r.name.starts_with('/') && r.name.ends_with(path))
                }) {
                    let (t, f) = super::alert_feed::route_counts(r);
                    total += t;
                    failed += f;
                }
                let labels = [("route", path)];
                samples.push(Sample::new("ingress_requests_total", &labels, total as f64));
                samples.push(Sample::new(
                    "ingress_failures_total",
                    &labels,
                    failed as f64,
                ));
            }
        }
        let planned = self.planned_units(now);
        let saved = match (&self.store, self.alerts.as_ref().is_some_and(|a| !a.loaded)) {
            (Some(store), true) => Some(store.alert_state()),
            _ => None,
        };
        let Some(side) = self.alerts.as_mut() else {
            return;
        };
        if let Some(saved) = saved {
            side.loaded = true;
            if let Some(n) = saved.and_then(|j| serde_json::from_str::<Notifier>(&j).ok()) {
                side.notifier = n.restored();
            }
        }
        for unit in planned {
            side.eval.suppress(&unit, now + PLANNED_GRACE_MS);
        }
        side.eval.observe(now, &samples);
        let transitions = side.eval.evaluate(now);
        let before = side.notifier.backlog();
        side.notifier.handle(now, &transitions, side.eval.firing());
        if now.saturating_sub(side.started_ms) >= RECONCILE_AFTER_MS {
            side.notifier.reconcile(now, side.eval.firing());
        }
        let due = side.notifier.due(now);
        let changed =
            !transitions.is_empty() || !due.is_empty() || before != side.notifier.backlog();
        for t in &transitions {
            let (status, alert) = match t {
                Transition::Firing(a) => ("firing", a),
                Transition::Resolved { alert, .. } => ("resolved", alert),
            };
            self.event(serde_json::json!({
                "event": "alert",
                "status": status,
                "alert": alert.rule,
                "severity": alert.severity.as_str(),
                "labels": alert.labels,
                "summary": alert.summary,
            }));
        }
        self.track_incident(&transitions);
        // Rules that run their runbook by themselves: once per incident (or firing alert).
        let autos: Vec<(String, String, String)> = self
            .alerts
            .as_ref()
            .map(|side| {
                transitions
                    .iter()
                    .filter_map(|t| match t {
                        Transition::Firing(a) => Some(a),
                        Transition::Resolved { .. } => None,
                    })
                    .filter_map(|a| {
                        let rule = side.eval.rules().iter().find(|r| r.name == a.rule)?;
                        let book = rule.runbook.clone().filter(|_| rule.auto_runbook)?;
                        let key = match self.incidents.open {
                            Some(id) => format!("incident {id}"),
                            None => format!("alert {}", a.fingerprint),
                        };
                        Some((a.rule.clone(), book, key))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (rule, book, key) in autos {
            self.auto_runbook(&rule, &book, key);
        }
        for d in due {
            self.deliver(d);
        }
        if changed {
            self.save_alerts();
        }
    }

    /// The units gantry's own planned work is on now: a commanded restart (seen as a unit's count of
    /// commanded restarts going up) until an incarnation after the one before it is up (not once it
    /// failed or a second incarnation followed — a crash loop after a restart is not planned — and
    /// at most `PLANNED_MAX_MS`), the instance a rolling restart drains or restarts, the
    /// instances a rollout runs its new release on (the canary, or the green set).
    fn planned_units(&mut self, now: u64) -> Vec<String> {
        use gantry_engine::State;
        let mut out = Vec::new();
        let Some(side) = self.alerts.as_mut() else {
            return out;
        };
        for v in self.host.engine().units() {
            let now_seen = (v.commanded_restarts, v.r#gen);
            // A unit's name is allocated once, when first seen.
            let before = match side.seen.get_mut(v.name) {
                Some(seen) => Some(std::mem::replace(seen, now_seen)),
                None => {
                    side.seen.insert(v.name.to_string(), now_seen);
                    None
                }
            };
            if let Some((commanded, r#gen)) = before
                && v.commanded_restarts > commanded
            {
                side.planned
                    .insert(v.name.to_string(), (r#gen, now + PLANNED_MAX_MS));
            }
            let Some(&(r#gen, until)) = side.planned.get(v.name) else {
                continue;
            };
            let up = matches!(v.state, State::Ready | State::Running | State::Completed);
            // The restart went wrong: it failed, or its incarnation was followed by another (a
            // start retried, a crash). From then on it is judged like any other.
            let broke = v.state == State::Failed || v.r#gen > r#gen + 1;
            if broke || (v.r#gen > r#gen && up) || now >= until {
                side.planned.remove(v.name);
            }
            // The evaluation that sees it up again still counts it as planned (and the grace after).
            if !broke && now < until {
                out.push(v.name.to_string());
            }
        }
        if let Some(unit) = self.rolling.as_ref().and_then(|r| r.current_unit()) {
            out.push(self.plan.units[unit.0].name().to_string());
        }
        if let Some(a) = &self.rollout {
            // The instances the new release runs on: the green set, else the canary.
            match &a.green {
                Some(g) => out.extend(g.names.iter().cloned()),
                None => out.push(a.canary_name.clone()),
            }
        }
        out
    }

    /// A P0/P1 alert opens an incident (one at a time); its alerts go on the timeline; it is
    /// resolved when no P0/P1 alert fires any more (unless a person opened it: then by hand).
    fn track_incident(&mut self, transitions: &[Transition]) {
        self.load_incident();
        for t in transitions {
            let (status, alert) = match t {
                Transition::Firing(a) => ("firing", a),
                Transition::Resolved { alert, .. } => ("resolved", alert),
            };
            let paging = alert.severity != gantry_alerts::Severity::P2;
            if self.incidents.open.is_none() && status == "firing" && paging {
                let detected = alert.fired_ms.saturating_sub(alert.since_ms);
                let (severity, summary) = (alert.severity.as_str(), alert.summary.clone());
                if let Err(e) = self.open_incident(severity, &summary, detected, None) {
                    self.out.gantry_line(&format!("alerts: {e}"));
                }
            }
            self.incident_note(
                "alert",
                &format!("{status}: [{}] {}", alert.severity.as_str(), alert.summary),
            );
        }
        let paging_firing = self.alerts.as_ref().is_some_and(|side| {
            side.eval
                .firing()
                .any(|a| a.severity != gantry_alerts::Severity::P2)
        });
        if let Some(id) = self.incidents.open
            && !paging_firing
            && !self.incidents.by_hand
        {
            self.incident_note("resolved", "no P0/P1 alert fires any more");
            let _ = self.close_incident(id, "gantry");
        }
    }

    fn save_alerts(&mut self) {
        let (Some(store), Some(side)) = (&self.store, &self.alerts) else {
            return;
        };
        if let Ok(json) = serde_json::to_string(&side.notifier)
            && let Err(e) = store.save_alert_state(&json)
        {
            self.out.gantry_line(&format!("alerts: {e}"));
        }
    }

    /// Runs one delivery: the log line here, the webhook and exec off the loop.
    fn deliver(&mut self, d: Delivery) {
        let Some(side) = &self.alerts else { return };
        let n = &d.notification;
        let body = n
            .alertmanager_json("gantry", |ms| {
                gantry_time::rfc3339_utc(std::time::UNIX_EPOCH + Duration::from_millis(ms))
            })
            .to_string();
        match d.sink.as_str() {
            "log" => {
                let line = format!(
                    "alert {}: [{}] {}{}",
                    n.status,
                    n.alert.severity.as_str(),
                    n.alert.summary,
                    if n.repeat > 0 { " (still firing)" } else { "" }
                );
                self.out.gantry_line(&line);
                if let Some(side) = &mut self.alerts {
                    side.notifier.delivered(d.id);
                }
            }
            "webhook" => {
                let Some(url) = side.webhook.clone() else {
                    return;
                };
                let tx = self.tx.clone();
                if let Some(side) = &mut self.alerts {
                    side.in_flight += 1;
                }
                let tls = gantry_spec::TlsOptions {
                    ca_file: self.spec.alerts.as_ref().and_then(|a| a.webhook_ca.clone()),
                    ..Default::default()
                };
                let base = self.base_dir.clone();
                tokio::spawn(async move {
                    let result = post_json(&url, body, &tls, &base)
                        .await
                        .map_err(|e| format!("webhook {}: {e}", redact_url(&url)));
                    let _ = tx.send(Msg::AlertDelivered { id: d.id, result });
                });
            }
            _ => {
                let Some(cmd) = side.exec.clone() else { return };
                // The notification on stdin: through /bin/sh, so the one waitpid caller (the
                // reaper) still reaps it.
                let mut argv = vec![
                    "/bin/sh".to_string(),
                    "-c".to_string(),
                    "printf '%s' \"$GANTRY_ALERT_JSON\" | \"$@\"".to_string(),
                    "gantry-alert".to_string(),
                ];
                argv.extend(cmd);
                let env = crate::envset::Env::from(vec![("GANTRY_ALERT_JSON".to_string(), body)]);
                let (tx, reaper) = (self.tx.clone(), self.reaper.clone());
                // In the stack file's directory, as services' commands run by default (a
                // relative `./notify.sh` is next to gantry.toml, wherever gantry started).
                let cwd = Some(self.base_dir.clone());
                if let Some(side) = &mut self.alerts {
                    side.in_flight += 1;
                }
                tokio::spawn(async move {
                    let outcome =
                        crate::probe::exec(argv, env, cwd, Duration::from_secs(30), &reaper).await;
                    let result = if outcome.ok {
                        Ok(())
                    } else {
                        Err(format!("exec sink: {}", outcome.message))
                    };
                    let _ = tx.send(Msg::AlertDelivered { id: d.id, result });
                });
            }
        }
    }

    /// A webhook or exec delivery's result.
    pub(super) fn alert_delivered(&mut self, id: u64, result: Result<(), String>) {
        let Some(side) = &mut self.alerts else { return };
        side.in_flight = side.in_flight.saturating_sub(1);
        match result {
            Ok(()) => side.notifier.delivered(id),
            Err(e) => {
                let retried = side.notifier.failed(id, now_ms());
                let what = if retried { "retrying" } else { "giving up" };
                self.out
                    .gantry_line(&format!("alerts: a notification failed ({e}); {what}"));
                self.event(serde_json::json!({
                    "event": "alert_delivery_failed", "error": e, "retrying": retried,
                }));
            }
        }
        self.save_alerts();
    }

    /// When the notifier wants the next evaluation sooner than the tick (a retry).
    pub(super) fn alerts_enabled(&self) -> bool {
        self.alerts.is_some()
    }

    /// Before gantry exits: one last evaluation (a NO-GO, a critical service down at the end
    /// reaches someone), and up to 5 s for the deliveries under way; what is still not
    /// delivered stays in the store for the next start.
    pub(super) async fn last_alerts(&mut self) {
        if self.alerts.is_none() {
            return;
        }
        self.publish();
        self.evaluate_alerts();
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.alerts.as_ref().is_some_and(|a| a.in_flight > 0) {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(Msg::AlertDelivered { id, result })) => self.alert_delivered(id, result),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// POST `body` as JSON to an http:// URL; Ok on a 2xx answer within 10 s.
/// A webhook URL as it may be shown: without its query (Slack-style tokens live there) or
/// user info.
fn redact_url(url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or(url);
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            // The path of a Slack or Teams hook is its secret: only the host is shown.
            let host = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{host}/…")
        }
        None => "the webhook".to_string(),
    }
}

async fn post_json(
    url: &str,
    body: String,
    tls: &gantry_spec::TlsOptions,
    base: &std::path::Path,
) -> Result<(), String> {
    use http_body_util::Full;
    let (uri, host, port, https) = crate::probe::http_target(url)?;
    let authority = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let addr = format!("{host}:{port}");
    let req = hyper::Request::post(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .header("user-agent", "gantry-alerts")
        .body(Full::new(hyper::body::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let work = async {
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        if https {
            let verify = crate::tls::Verify::Full.with(tls);
            let config = crate::tls::client_config(tls, base, verify).await?;
            let stream = crate::tls::handshake(stream, &host, std::sync::Arc::new(config)).await?;
            send(hyper_util::rt::TokioIo::new(stream), req).await
        } else {
            send(hyper_util::rt::TokioIo::new(stream), req).await
        }
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| "the webhook did not answer within 10 s".to_string())?
}

/// One POST on a connected (plain or TLS) stream; Ok for a 2xx answer.
async fn send<IO>(
    io: IO,
    req: hyper::Request<http_body_util::Full<hyper::body::Bytes>>,
) -> Result<(), String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    use http_body_util::BodyExt as _;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {status}"))
    }
}

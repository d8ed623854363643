//! The notifier: alerts in, deliveries out. One notification per fingerprint when it fires, a
//! repeat every `repeat_ms` while it keeps firing, one when it resolves; a firing P0 on a service
//! mutes that service's P1/P2; a failed delivery is retried with backoff. Its pending deliveries
//! serialise, so a restarted gantry sends what it had not delivered.

use crate::eval::{Alert, Transition};
use crate::rules::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyConfig {
    /// The sinks every notification goes to (names the driver maps to webhook / exec / log).
    pub sinks: Vec<String>,
    /// Send a firing alert again this often while it fires.
    pub repeat_ms: u64,
    /// The first retry of a failed delivery waits this long, doubling up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// A delivery is given up after this many attempts (and said so).
    pub max_attempts: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            sinks: vec!["log".into()],
            repeat_ms: 4 * 3_600_000,
            retry_base_ms: 1_000,
            retry_max_ms: 300_000,
            max_attempts: 30,
        }
    }
}

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `firing` or `resolved`.
    pub status: String,
    pub alert: Alert,
    /// When it resolved (ms), for a resolve.
    pub ended_ms: Option<u64>,
    /// 0 for the first notification of a firing, then 1, 2, … for repeats.
    pub repeat: u32,
}

impl Notification {
    /// The Alertmanager webhook payload (version 4), so receivers written for Alertmanager work.
    /// `rfc3339` formats a time in ms (the driver's wall clock).
    pub fn alertmanager_json(
        &self,
        receiver: &str,
        rfc3339: impl Fn(u64) -> String,
    ) -> serde_json::Value {
        let labels = &self.alert.labels;
        let mut annotations = serde_json::Map::new();
        annotations.insert("summary".into(), self.alert.summary.clone().into());
        if let Some(r) = &self.alert.runbook {
            annotations.insert("runbook".into(), r.clone().into());
        }
        annotations.insert(
            "respond_within".into(),
            format!("{} minutes", self.alert.severity.respond_within_minutes()).into(),
        );
        serde_json::json!({
            "version": "4",
            "groupKey": self.alert.fingerprint,
            "status": self.status,
            "receiver": receiver,
            "groupLabels": { "alertname": self.alert.rule },
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": "",
            "truncatedAlerts": 0,
            "alerts": [{
                "status": self.status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(self.alert.since_ms),
                "endsAt": self.ended_ms.map(&rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                "generatorURL": "",
                "fingerprint": self.alert.fingerprint,
            }],
        })
    }
}

/// One notification to one sink, due at `due_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: u64,
    pub sink: String,
    pub notification: Notification,
    pub attempt: u32,
    pub due_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sent {
    alert: Alert,
    last_ms: u64,
    repeats: u32,
}

/// The notifier's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notifier {
    cfg: NotifyConfig,
    /// Firing alerts that were notified, by fingerprint.
    sent: BTreeMap<String, Sent>,
    /// Deliveries not yet done, by id (handed out by `due`, back by `delivered` / `failed`).
    pending: BTreeMap<u64, Delivery>,
    /// Deliveries handed to the driver and not yet reported.
    in_flight: BTreeMap<u64, Delivery>,
    next_id: u64,
    /// Deliveries given up, for status.
    pub given_up: u64,
}

impl Notifier {
    pub fn new(cfg: NotifyConfig) -> Notifier {
        Notifier {
            cfg,
            sent: BTreeMap::new(),
            pending: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_id: 1,
            given_up: 0,
        }
    }

    /// After a restart: deliveries that were handed out but not reported go back to pending
    /// (a receiver may see one twice; none is lost).
    pub fn restored(mut self) -> Notifier {
        let in_flight = std::mem::take(&mut self.in_flight);
        self.pending.extend(in_flight);
        self
    }

    /// Takes the evaluator's transitions; `firing` is what fires now (for inhibition).
    pub fn handle<'a>(
        &mut self,
        now_ms: u64,
        transitions: &[Transition],
        firing: impl Iterator<Item = &'a Alert>,
    ) {
        let muted_services: Vec<String> = firing
            .filter(|a| a.severity == Severity::P0)
            .filter_map(|a| a.labels.get("service").cloned())
            .collect();
        let inhibited = |a: &Alert| {
            a.severity != Severity::P0
                && a.labels
                    .get("service")
                    .is_some_and(|s| muted_services.contains(s))
        };
        for t in transitions {
            match t {
                Transition::Firing(alert) => {
                    if inhibited(alert) || self.sent.contains_key(&alert.fingerprint) {
                        continue;
                    }
                    self.sent.insert(
                        alert.fingerprint.clone(),
                        Sent {
                            alert: alert.clone(),
                            last_ms: now_ms,
                            repeats: 0,
                        },
                    );
                    self.enqueue(
                        now_ms,
                        Notification {
                            status: "firing".into(),
                            alert: alert.clone(),
                            ended_ms: None,
                            repeat: 0,
                        },
                    );
                }
                Transition::Resolved { alert, at_ms } => {
                    // Only what was notified is resolved (an inhibited alert never was).
                    if self.sent.remove(&alert.fingerprint).is_some() {
                        self.enqueue(
                            now_ms,
                            Notification {
                                status: "resolved".into(),
                                alert: alert.clone(),
                                ended_ms: Some(*at_ms),
                                repeat: 0,
                            },
                        );
                    }
                }
            }
        }
        // Repeats of what keeps firing.
        let repeat_ms = self.cfg.repeat_ms;
        let due: Vec<String> = self
            .sent
            .iter()
            .filter(|(_, s)| now_ms.saturating_sub(s.last_ms) >= repeat_ms)
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in due {
            if let Some(s) = self.sent.get_mut(&fp) {
                s.last_ms = now_ms;
                s.repeats += 1;
                let n = Notification {
                    status: "firing".into(),
                    alert: s.alert.clone(),
                    ended_ms: None,
                    repeat: s.repeats,
                };
                self.enqueue(now_ms, n);
            }
        }
    }

    fn enqueue(&mut self, now_ms: u64, notification: Notification) {
        for sink in &self.cfg.sinks {
            let id = self.next_id;
            self.next_id += 1;
            self.pending.insert(
                id,
                Delivery {
                    id,
                    sink: sink.clone(),
                    notification: notification.clone(),
                    attempt: 1,
                    due_ms: now_ms,
                },
            );
        }
    }

    /// The deliveries due now, handed to the driver (each comes back through `delivered` or
    /// `failed`).
    pub fn due(&mut self, now_ms: u64) -> Vec<Delivery> {
        let ids: Vec<u64> = self
            .pending
            .values()
            .filter(|d| d.due_ms <= now_ms)
            .map(|d| d.id)
            .collect();
        ids.into_iter()
            .filter_map(|id| {
                let d = self.pending.remove(&id)?;
                self.in_flight.insert(id, d.clone());
                Some(d)
            })
            .collect()
    }

    pub fn delivered(&mut self, id: u64) {
        self.in_flight.remove(&id);
    }

    /// A failed delivery is retried with backoff; after `max_attempts` it is given up (false).
    pub fn failed(&mut self, id: u64, now_ms: u64) -> bool {
        let Some(mut d) = self.in_flight.remove(&id) else {
            return false;
        };
        if d.attempt >= self.cfg.max_attempts {
            self.given_up += 1;
            return false;
        }
        let backoff = self
            .cfg
            .retry_base_ms
            .saturating_mul(1u64 << (d.attempt - 1).min(30))
            .min(self.cfg.retry_max_ms);
        d.attempt += 1;
        d.due_ms = now_ms + backoff;
        self.pending.insert(id, d);
        true
    }

    /// After a restart the evaluator starts empty: an alert notified as firing that is not
    /// firing again by now (the caller waits out the rules' `for` first) is resolved, so no
    /// receiver is left with an alert that never ends.
    pub fn reconcile<'a>(&mut self, now_ms: u64, firing: impl Iterator<Item = &'a Alert>) {
        let live: std::collections::BTreeSet<&str> =
            firing.map(|a| a.fingerprint.as_str()).collect();
        let stale: Vec<String> = self
            .sent
            .keys()
            .filter(|fp| !live.contains(fp.as_str()))
            .cloned()
            .collect();
        for fp in stale {
            if let Some(s) = self.sent.remove(&fp) {
                self.enqueue(
                    now_ms,
                    Notification {
                        status: "resolved".into(),
                        alert: s.alert,
                        ended_ms: Some(now_ms),
                        repeat: 0,
                    },
                );
            }
        }
    }

    /// When the next delivery or repeat is due.
    pub fn deadline(&self) -> Option<u64> {
        let delivery = self.pending.values().map(|d| d.due_ms).min();
        let repeat = self
            .sent
            .values()
            .map(|s| s.last_ms + self.cfg.repeat_ms)
            .min();
        match (delivery, repeat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Deliveries not done yet (pending and in flight).
    pub fn backlog(&self) -> usize {
        self.pending.len() + self.in_flight.len()
    }
}

//! The evaluator: samples in, rules judged per label set, alerts pending → firing → resolved out.
//! Planned work (gantry's own restarts and rollouts) suppresses a service's alerts meanwhile: none
//! starts pending or fires, one already firing stays as it is, and what its counters (`*_total`)
//! grew by meanwhile is left out of their history, so a window that spans the work does not fire
//! once it is over.

use crate::rules::{Labels, Reduce, Rule, Severity};
use crate::series::{Sample, Series};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A firing (or just resolved) alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: String,
    pub severity: Severity,
    /// The rule's labels and the series' labels, plus `alertname` and `severity`.
    pub labels: Labels,
    pub summary: String,
    pub runbook: Option<String>,
    /// The first condition's value when it fired.
    pub value: f64,
    /// When its conditions started to hold (ms).
    pub since_ms: u64,
    /// When it fired (ms).
    pub fired_ms: u64,
    /// Stable identity: the rule and the label set.
    pub fingerprint: String,
}

/// What one evaluation changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Firing(Alert),
    Resolved { alert: Alert, at_ms: u64 },
}

/// Where one (rule, label set) stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertState {
    Pending { since_ms: u64 },
    Firing(Alert),
}

/// Rules over a series history.
#[derive(Debug, Clone)]
pub struct Evaluator {
    rules: Vec<Rule>,
    series: Series,
    states: BTreeMap<String, AlertState>,
    suppressed: HashMap<String, u64>,
    /// Per counter of a service (signal, then labels): its latest raw value and how much of it
    /// planned work accounts for (subtracted from every later sample).
    planned: HashMap<String, HashMap<Labels, (f64, f64)>>,
}

impl Evaluator {
    /// History is kept as long as the longest window needs (and at most 4,096 points a series).
    pub fn new(rules: Vec<Rule>) -> Evaluator {
        let longest = rules
            .iter()
            .flat_map(|r| &r.conditions)
            .map(|c| match c.reduce {
                Reduce::Value => 0,
                Reduce::Increase { window_ms } | Reduce::Ratio { window_ms, .. } => window_ms,
            })
            .max()
            .unwrap_or(0);
        Evaluator {
            rules,
            series: Series::new(longest + 60_000, 4_096),
            states: BTreeMap::new(),
            suppressed: HashMap::new(),
            planned: HashMap::new(),
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn observe(&mut self, now_ms: u64, samples: &[Sample]) {
        let adjusted: Vec<Option<f64>> = samples
            .iter()
            .map(|s| self.without_planned(now_ms, s))
            .collect();
        if adjusted.iter().all(Option::is_none) {
            self.series.observe(now_ms, samples);
            return;
        }
        let samples: Vec<Sample> = samples
            .iter()
            .zip(adjusted)
            .map(|(s, v)| {
                let mut s = s.clone();
                if let Some(v) = v {
                    s.value = v;
                }
                s
            })
            .collect();
        self.series.observe(now_ms, &samples);
    }

    /// A service's counter less what planned work added to it (None: nothing to take off): it
    /// keeps, while the work runs, the value it had at the sample before.
    fn without_planned(&mut self, now_ms: u64, s: &Sample) -> Option<f64> {
        let service = s.labels.get("service")?;
        if !s.signal.ends_with("_total") {
            return None;
        }
        let planned_now = self.suppressed.get(service).is_some_and(|u| *u > now_ms);
        if !self.planned.contains_key(&s.signal) {
            self.planned.insert(s.signal.clone(), HashMap::new());
        }
        let per_signal = self.planned.get_mut(&s.signal)?;
        let (last, offset) = match per_signal.get_mut(&s.labels) {
            Some(e) => e,
            None => {
                per_signal.insert(s.labels.clone(), (s.value, 0.0));
                return None;
            }
        };
        if s.value < *last {
            // A counter that started over: nothing of the new one is planned work yet.
            *offset = 0.0;
        } else if planned_now {
            *offset += s.value - *last;
        }
        *last = s.value;
        (*offset > 0.0).then(|| (s.value - *offset).max(0.0))
    }

    /// Gantry's own planned work on `service` (a restart, a rollout step) until `until_ms`: its
    /// alerts neither start pending nor fire meanwhile (one firing already stays firing, neither
    /// resolved nor notified again), and its counters' growth meanwhile is not counted.
    pub fn suppress(&mut self, service: &str, until_ms: u64) {
        let at = self.suppressed.entry(service.to_string()).or_insert(0);
        *at = (*at).max(until_ms);
    }

    /// The alerts firing now.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.states.values().filter_map(|s| match s {
            AlertState::Firing(a) => Some(a),
            AlertState::Pending { .. } => None,
        })
    }

    /// Judges every rule at `now_ms`.
    pub fn evaluate(&mut self, now_ms: u64) -> Vec<Transition> {
        self.suppressed.retain(|_, until| *until > now_ms);
        let mut holding: BTreeMap<String, (usize, Labels, f64)> = BTreeMap::new();
        for (ri, rule) in self.rules.iter().enumerate() {
            let Some(first) = rule.conditions.first() else {
                continue;
            };
            for labels in self.series.label_sets(&first.signal, &first.matching) {
                if first.excludes(labels) {
                    continue;
                }
                let mut value = None;
                let all = rule.conditions.iter().enumerate().all(|(i, c)| {
                    let v = self.reduce(c, labels, now_ms);
                    if i == 0 {
                        value = v;
                    }
                    v.is_some_and(|v| c.holds(v))
                });
                let suppressed = labels
                    .get("service")
                    .is_some_and(|s| self.suppressed.contains_key(s));
                if all && !suppressed {
                    let fp = fingerprint(&rule.name, labels);
                    holding.insert(fp, (ri, labels.clone(), value.unwrap_or(0.0)));
                }
            }
        }
        let mut out = Vec::new();
        // Resolved: what held before and does not now.
        // A firing alert of a service under planned work is left as it is until the work is over.
        let gone: Vec<String> = self
            .states
            .iter()
            .filter(|(fp, state)| {
                !holding.contains_key(*fp)
                    && !matches!(state, AlertState::Firing(a) if a
                        .labels
                        .get("service")
                        .is_some_and(|s| self.suppressed.contains_key(s)))
            })
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in gone {
            if let Some(AlertState::Firing(alert)) = self.states.remove(&fp) {
                out.push(Transition::Resolved {
                    alert,
                    at_ms: now_ms,
                });
            }
        }
        for (fp, (ri, labels, value)) in holding {
            let rule = &self.rules[ri];
            let state = self
                .states
                .entry(fp.clone())
                .or_insert(AlertState::Pending { since_ms: now_ms });
            if let AlertState::Pending { since_ms } = *state
                && now_ms.saturating_sub(since_ms) >= rule.for_ms
            {
                let mut all = rule.labels.clone();
                all.extend(labels.clone());
                all.insert("alertname".into(), rule.name.clone());
                all.insert("severity".into(), rule.severity.as_str().into());
                let alert = Alert {
                    rule: rule.name.clone(),
                    severity: rule.severity,
                    summary: rule.summarize(&all),
                    labels: all,
                    runbook: rule.runbook.clone(),
                    value,
                    since_ms,
                    fired_ms: now_ms,
                    fingerprint: fp,
                };
                *state = AlertState::Firing(alert.clone());
                out.push(Transition::Firing(alert));
            }
        }
        out
    }

    fn reduce(&self, c: &crate::rules::Condition, labels: &Labels, now_ms: u64) -> Option<f64> {
        match &c.reduce {
            Reduce::Value => self.series.last(&c.signal, labels),
            Reduce::Increase { window_ms } => {
                self.series.increase(&c.signal, labels, now_ms, *window_ms)
            }
            Reduce::Ratio {
                denominator,
                window_ms,
                min_volume,
            } => {
                // A window is judged only once the history covers it (a fresh start is not a
                // burn over the whole window) and it saw enough volume.
                if self.series.covered_ms(denominator, labels, now_ms) < *window_ms {
                    return None;
                }
                let total = self
                    .series
                    .increase(denominator, labels, now_ms, *window_ms)?;
                if total < *min_volume || total <= 0.0 {
                    return None;
                }
                let part = self
                    .series
                    .increase(&c.signal, labels, now_ms, *window_ms)
                    .unwrap_or(0.0);
                Some(part / total)
            }
        }
    }
}

/// `rule{k=v,...}`: the same text for the same rule and labels, whatever their order.
fn fingerprint(rule: &str, labels: &Labels) -> String {
    let body: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{rule}{{{}}}", body.join(","))
}

//! The samples the evaluator has seen: per signal and label set, a bounded history of (time, value)
//! so increases and ratios over a window can be computed; gauges need only the latest value.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// One observation of a signal: a gauge (a value now) or a counter (a running total).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub signal: String,
    /// e.g. `service=api`, `route=/api`, `priority=critical`.
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn new(signal: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            signal: signal.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }
}

type Key = (String, BTreeMap<String, String>);

/// The history of every (signal, labels): at most `max_points` per series and nothing older
/// than `retain_ms`, so memory is bounded whatever the driver feeds.
#[derive(Debug, Clone)]
pub struct Series {
    points: HashMap<Key, VecDeque<(u64, f64)>>,
    retain_ms: u64,
    max_points: usize,
}

impl Series {
    pub fn new(retain_ms: u64, max_points: usize) -> Series {
        Series {
            points: HashMap::new(),
            retain_ms,
            max_points: max_points.max(2),
        }
    }

    pub fn observe(&mut self, now_ms: u64, samples: &[Sample]) {
        for s in samples {
            let ring = self
                .points
                .entry((s.signal.clone(), s.labels.clone()))
                .or_default();
            ring.push_back((now_ms, s.value));
            while ring.len() > self.max_points
                || ring
                    .front()
                    .is_some_and(|(t, _)| now_ms.saturating_sub(*t) > self.retain_ms)
            {
                ring.pop_front();
            }
        }
    }

    /// Every label set of `signal` whose labels include `matching`.
    pub fn label_sets<'a>(
        &'a self,
        signal: &'a str,
        matching: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a BTreeMap<String, String>> + 'a {
        self.points.keys().filter_map(move |(s, l)| {
            (s == signal && matching.iter().all(|(k, v)| l.get(k) == Some(v))).then_some(l)
        })
    }

    /// The latest value.
    pub fn last(&self, signal: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
        self.ring(signal, labels)?.back().map(|(_, v)| *v)
    }

    /// How much a counter grew over the last `window_ms` (a reset — a smaller value — counts
    /// from zero, as Prometheus' `increase` does). None without two points in the window.
    pub fn increase(
        &self,
        signal: &str,
        labels: &BTreeMap<String, String>,
        now_ms: u64,
        window_ms: u64,
    ) -> Option<f64> {
        let ring = self.ring(signal, labels)?;
        let from = now_ms.saturating_sub(window_ms);
        // The last point at or before the window's start is its baseline, if there is one.
        let start = ring.iter().rposition(|(t, _)| *t <= from).unwrap_or(0);
        let mut total = 0.0;
        let mut prev: Option<f64> = None;
        let mut points = 0;
        for (_, v) in ring.iter().skip(start) {
            if let Some(p) = prev {
                total += if *v >= p { v - p } else { *v };
            }
            prev = Some(*v);
            points += 1;
        }
        (points >= 2).then_some(total)
    }

    /// How long the history of a series goes back from `now_ms` (a window is only judged once
    /// it is covered).
    pub fn covered_ms(&self, signal: &str, labels: &BTreeMap<String, String>, now_ms: u64) -> u64 {
        self.ring(signal, labels)
            .and_then(|r| r.front())
            .map_or(0, |(t, _)| now_ms.saturating_sub(*t))
    }

    fn ring(
        &self,
        signal: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<&VecDeque<(u64, f64)>> {
        self.points.get(&(signal.to_string(), labels.clone()))
    }
}

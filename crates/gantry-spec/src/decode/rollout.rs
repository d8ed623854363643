//! Decodes `[services.NAME.rollout]`: the strategy (canary or blue_green) and the analysis
//! defaults of the service's rollouts.

use super::{Decoder, Value, join};
use crate::keys;
use crate::model::*;
use toml::de::DeValue;

impl Decoder<'_> {
    /// `[services.NAME.rollout]`; a bad key is an error and the rest still decodes.
    pub(super) fn rollout(&mut self, v: &Value<'_>, path: &str) -> Option<RolloutConf> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::ROLLOUT, path);
        let mut r = RolloutConf::default();
        if let Some(x) = t.get("strategy") {
            let key = join(path, "strategy");
            if self.enumeration(x, &key, &["canary", "blue_green"]) == Some("blue_green") {
                r.strategy = RolloutStrategy::BlueGreen;
            }
        }
        if let Some(x) = t.get("steps") {
            let key = join(path, "steps");
            match x.get_ref() {
                DeValue::Array(items) => {
                    let steps: Vec<u8> = items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| self.int(item, &format!("{key}[{i}]"), 1, 100))
                        .map(|n| n as u8)
                        .collect();
                    if steps.is_empty() || steps.windows(2).any(|w| w[0] >= w[1]) {
                        self.error(
                            "invalid-value",
                            &key,
                            x.span(),
                            "steps must be percentages that increase",
                            "e.g. steps = [1, 10, 50, 100]",
                        );
                    } else {
                        r.steps = Some(steps);
                    }
                }
                _ => self.wrong_type(&key, x, "an array of percentages"),
            }
        }
        if let Some(x) = t.get("interval") {
            r.interval = self
                .duration(x, &join(path, "interval"))
                .filter(|d| !d.0.is_zero());
        }
        if let Some(x) = t.get("max_p99") {
            r.max_p99 = self.duration(x, &join(path, "max_p99"));
        }
        if let Some(x) = t.get("min_requests") {
            r.min_requests = self
                .int(x, &join(path, "min_requests"), 1, 1_000_000_000)
                .map(|n| n as u64);
        }
        if let Some(x) = t.get("max_error_rate") {
            let key = join(path, "max_error_rate");
            if let Some(s) = self.string(x, &key) {
                let n = s
                    .value
                    .trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .filter(|n| n.is_finite() && (0.0..=100.0).contains(n));
                match n {
                    Some(n) => r.max_error_ratio = Some(n / 100.0),
                    None => self.error(
                        "invalid-value",
                        &key,
                        x.span(),
                        format!("`{}` is not a percentage from 0% to 100%", s.value),
                        "write a percentage such as \"1%\"",
                    ),
                }
            }
        }
        if let Some(x) = t.get("check") {
            let key = join(path, "check");
            if let Some(s) = self.string(x, &key) {
                if s.value.starts_with("http://") || s.value.starts_with("https://") {
                    r.check = Some(s.value);
                } else {
                    self.error(
                        "invalid-value",
                        &key,
                        x.span(),
                        format!("`{}` is not an http(s) URL", s.value),
                        "e.g. check = \"http://127.0.0.1:${PORT}/smoke\"",
                    );
                }
            }
        }
        Some(r)
    }
}

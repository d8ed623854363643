//! Decodes `[alerts]`: the notification sinks (webhook, exec, log), the repeat interval and the
//! built-in rules turned off.

use super::{Decoder, Value};
use crate::diag::did_you_mean;
use crate::keys;
use crate::model::*;
use std::time::Duration;

impl Decoder<'_> {
    /// `[alerts]`; None when it is not a table.
    pub(super) fn alerts(&mut self, v: &Value<'_>) -> Option<Alerts> {
        let t = self.table(v, "alerts")?;
        self.unknown_keys(t, keys::ALERTS, "alerts");
        let webhook = t
            .get("webhook")
            .and_then(|x| self.string(x, "alerts.webhook"))
            .filter(|w| {
                let ok = w.value.starts_with("http://");
                if !ok {
                    self.error(
                        "invalid-value",
                        "alerts.webhook",
                        w.span.clone(),
                        "the webhook must be an http:// URL (https is not supported yet)",
                        "write webhook = \"http://127.0.0.1:9093/hook\"; for an https receiver, relay through a local Alertmanager or use exec = \"curl ...\"",
                    );
                }
                ok
            });
        let exec = t.get("exec").and_then(|x| self.command(x, "alerts.exec"));
        let log = t
            .get("log")
            .and_then(|x| self.boolean(x, "alerts.log"))
            .unwrap_or(true);
        let repeat_interval = t
            .get("repeat_interval")
            .and_then(|x| self.duration(x, "alerts.repeat_interval"))
            .unwrap_or(Dur(Duration::from_secs(4 * 3600)));
        let disabled = match t.get("disabled") {
            Some(x) => self.str_list(x, "alerts.disabled"),
            None => Vec::new(),
        };
        for name in &disabled {
            if !ALERT_RULES.contains(&name.value.as_str()) {
                let hint = match did_you_mean(&name.value, ALERT_RULES.iter().copied()) {
                    Some(s) => format!(
                        "did you mean `{s}`? the built-in rules: {}",
                        ALERT_RULES.join(", ")
                    ),
                    None => format!("the built-in rules: {}", ALERT_RULES.join(", ")),
                };
                self.error(
                    "unknown-name",
                    "alerts.disabled",
                    name.span.clone(),
                    format!("there is no built-in alert rule `{}`", name.value),
                    hint,
                );
            }
        }
        Some(Alerts {
            span: v.span(),
            webhook,
            exec,
            log,
            repeat_interval,
            disabled,
        })
    }
}

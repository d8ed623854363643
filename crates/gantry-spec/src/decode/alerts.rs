//! Decodes `[alerts]` (the notification sinks — webhook, exec, log —, the repeat interval, the
//! built-in rules turned off) and `[slo.NAME]` (availability objectives over ingress routes).

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

    /// `[slo.NAME]` tables; each must name a route of `[ingress]`.
    pub(super) fn slos(&mut self, v: &Value<'_>, spec: &Spec) -> Vec<Slo> {
        let Some(t) = self.table(v, "slo") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, item) in t {
            let name = key.get_ref().to_string();
            let path = format!("slo.{name}");
            let Some(st) = self.table(item, &path) else {
                continue;
            };
            self.unknown_keys(st, keys::SLO, &path);
            let availability = st
                .get("availability")
                .and_then(|x| self.percent(x, &format!("{path}.availability")))
                .filter(|a| *a > 0.0 && *a < 100.0);
            let Some(availability) = availability else {
                self.error(
                    "missing-key",
                    &path,
                    item.span(),
                    "an SLO needs `availability` between 0% and 100% (exclusive)",
                    "write availability = \"99.9%\"",
                );
                continue;
            };
            let min_requests = st
                .get("min_requests")
                .and_then(|x| self.int(x, &format!("{path}.min_requests"), 1, i64::MAX))
                .unwrap_or(100) as u64;
            let Some(route) = st
                .get("route")
                .and_then(|x| self.string(x, &format!("{path}.route")))
            else {
                self.error(
                    "missing-key",
                    &path,
                    item.span(),
                    "an SLO needs `route`: the path of one of the [[ingress.routes]]",
                    "write route = \"/api\"",
                );
                continue;
            };
            let paths: Vec<&str> = spec
                .ingress
                .iter()
                .flat_map(|i| &i.routes)
                .filter_map(|r| r.path.as_ref().map(|p| p.value.as_str()))
                .collect();
            if !paths.contains(&route.value.as_str()) {
                let hint = match did_you_mean(&route.value, paths.iter().copied()) {
                    Some(p) => format!("did you mean `{p}`?"),
                    None if paths.is_empty() => {
                        "an SLO is measured by the ingress: add an [ingress] with this route"
                            .to_string()
                    }
                    None => format!("the routes: {}", paths.join(", ")),
                };
                self.error(
                    "unknown-name",
                    &format!("{path}.route"),
                    route.span.clone(),
                    format!("no ingress route with path `{}`", route.value),
                    hint,
                );
                continue;
            }
            out.push(Slo {
                name: Sp::new(name, item.span()),
                route,
                availability,
                min_requests,
            });
        }
        out
    }
}

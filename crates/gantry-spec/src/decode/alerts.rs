//! Decodes `[alerts]` (the notification sinks — webhook, exec, log —, the repeat interval, the
//! built-in rules turned off) and `[slo.NAME]` (availability objectives over ingress routes).

use super::{DeValue, Decoder, Value};
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
                let ok = w.value.starts_with("http://") || w.value.starts_with("https://");
                if !ok {
                    self.error(
                        "invalid-value",
                        "alerts.webhook",
                        w.span.clone(),
                        "the webhook must be an http:// or https:// URL",
                        "write webhook = \"https://hooks.example.com/gantry\" (or http:// for a local Alertmanager)",
                    );
                }
                ok
            });
        let exec = t.get("exec").and_then(|x| self.command(x, "alerts.exec"));
        let webhook_ca = t
            .get("webhook_ca")
            .and_then(|x| self.string(x, "alerts.webhook_ca"))
            .map(|s| s.value);
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
        let rules = t
            .get("rules")
            .map(|x| self.alert_rules(x))
            .unwrap_or_default();
        Some(Alerts {
            span: v.span(),
            webhook,
            exec,
            log,
            repeat_interval,
            disabled,
            rules,
            webhook_ca,
        })
    }

    /// `[alerts.rules.NAME]`: a new rule needs severity, signal and a threshold; one named like
    /// a built-in overrides it key by key.
    fn alert_rules(&mut self, v: &Value<'_>) -> Vec<AlertRuleDef> {
        let Some(t) = self.table(v, "alerts.rules") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, item) in t {
            let name = key.get_ref().to_string();
            let path = format!("alerts.rules.{name}");
            let Some(rt) = self.table(item, &path) else {
                continue;
            };
            self.unknown_keys(rt, keys::ALERT_RULE, &path);
            let p = |k: &str| format!("{path}.{k}");
            let severity = rt
                .get("severity")
                .and_then(|x| self.enumeration(x, &p("severity"), &["P0", "P1", "P2"]))
                .map(str::to_string);
            let signal = rt
                .get("signal")
                .and_then(|x| self.enumeration(x, &p("signal"), ALERT_SIGNALS))
                .map(str::to_string);
            let ratio_of = rt
                .get("ratio_of")
                .and_then(|x| self.enumeration(x, &p("ratio_of"), ALERT_SIGNALS))
                .map(str::to_string);
            let above = rt.get("above").and_then(|x| self.number(x, &p("above")));
            let below = rt.get("below").and_then(|x| self.number(x, &p("below")));
            let window = rt
                .get("window")
                .and_then(|x| self.duration(x, &p("window")));
            let min_volume = rt
                .get("min_volume")
                .and_then(|x| self.int(x, &p("min_volume"), 0, i64::MAX))
                .map(|n| n as u64);
            let for_ = rt.get("for").and_then(|x| self.duration(x, &p("for")));
            let service = rt
                .get("service")
                .and_then(|x| self.string(x, &p("service")))
                .map(|s| s.value);
            let route = rt
                .get("route")
                .and_then(|x| self.string(x, &p("route")))
                .map(|s| s.value);
            let except = rt
                .get("except")
                .map(|x| self.str_list(x, &p("except")))
                .unwrap_or_default();
            let summary = rt
                .get("summary")
                .and_then(|x| self.string(x, &p("summary")))
                .map(|s| s.value);
            let runbook = rt
                .get("runbook")
                .and_then(|x| self.string(x, &p("runbook")));
            let auto_runbook = rt
                .get("auto_runbook")
                .and_then(|x| self.boolean(x, &p("auto_runbook")));
            let mut labels = Vec::new();
            if let Some(x) = rt.get("labels")
                && let Some(lt) = self.table(x, &p("labels"))
            {
                for (lk, lv) in lt {
                    let key = lk.get_ref().to_string();
                    if let Some(v) = self.string(lv, &format!("{}.{key}", p("labels"))) {
                        labels.push((key, v.value));
                    }
                }
            }
            let builtin = ALERT_RULES.contains(&name.as_str());
            if above.is_some() && below.is_some() {
                self.error(
                    "invalid-value",
                    &path,
                    item.span(),
                    "a rule has one threshold: `above` or `below`, not both",
                    "write a second rule for the other bound",
                );
            }
            if !builtin {
                let missing: Vec<&str> = [
                    ("severity", severity.is_none()),
                    ("signal", signal.is_none()),
                    ("above or below", above.is_none() && below.is_none()),
                ]
                .iter()
                .filter(|(_, m)| *m)
                .map(|(k, _)| *k)
                .collect();
                if !missing.is_empty() {
                    self.error(
                        "missing-key",
                        &path,
                        item.span(),
                        format!("the rule `{name}` needs {}", missing.join(", ")),
                        format!(
                            "write e.g. severity = \"P1\", signal = \"service_restarts_total\", window = \"10m\", above = 5 (a rule named like a built-in one — {} — overrides it and needs none of them)",
                            ALERT_RULES.join(", ")
                        ),
                    );
                    continue;
                }
            }
            let counter = |s: &Option<String>| s.as_deref().is_some_and(|s| s.ends_with("_total"));
            if (counter(&signal) || ratio_of.is_some()) && window.is_none() && !builtin {
                self.error(
                    "missing-key",
                    &p("window"),
                    item.span(),
                    "a counter is judged by its increase over a window",
                    "write window = \"5m\"",
                );
                continue;
            }
            if ratio_of.as_ref().is_some_and(|r| !r.ends_with("_total")) {
                self.error(
                    "invalid-value",
                    &p("ratio_of"),
                    item.span(),
                    "`ratio_of` must be a counter (a signal ending in _total)",
                    "e.g. signal = \"ingress_failures_total\", ratio_of = \"ingress_requests_total\"",
                );
                continue;
            }
            out.push(AlertRuleDef {
                name: Sp::new(name, item.span()),
                severity,
                signal,
                above,
                below,
                window,
                ratio_of,
                min_volume,
                for_,
                service,
                route,
                except,
                summary,
                runbook,
                auto_runbook,
                labels,
            });
        }
        out
    }

    /// An integer or a float.
    fn number(&mut self, v: &Value<'_>, path: &str) -> Option<f64> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(x) => x.as_str().parse::<f64>().ok(),
            _ => {
                self.wrong_type(path, v, "a number");
                return None;
            }
        };
        n.filter(|n| n.is_finite())
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
            let window = match st.get("window") {
                Some(x) => self
                    .duration(x, &format!("{path}.window"))
                    .filter(|d| {
                        let ok = (SLO_WINDOW_MIN..=SLO_WINDOW_MAX).contains(&d.0);
                        if !ok {
                            self.error(
                                "out-of-range",
                                &format!("{path}.window"),
                                x.span(),
                                "an SLO's window must be between 1h and 90d",
                                "write window = \"30d\" (the default): the error budget is what the objective allows to fail over it",
                            );
                        }
                        ok
                    }),
                None => None,
            }
            .unwrap_or(Dur(SLO_WINDOW));
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
                window,
            });
        }
        out
    }
}

//! The alert rules of a stack: the built-in set (minus `[alerts] disabled`, each overridable key
//! by key by `[alerts.rules.NAME]` of the same name), the user's own `[alerts.rules.NAME]`, and the
//! burn-rate rules of every `[slo.NAME]`. One builder for the evaluator and the Prometheus export.

use gantry_alerts::{Condition, Labels, Op, Reduce, Rule, Severity};
use gantry_spec::{AlertRuleDef, Spec};

/// Every rule `spec` asks for.
pub fn rules_of(spec: &Spec) -> Vec<Rule> {
    let (disabled, defs): (Vec<String>, &[AlertRuleDef]) = match &spec.alerts {
        Some(a) => (
            a.disabled.iter().map(|d| d.value.clone()).collect(),
            &a.rules,
        ),
        None => (Vec::new(), &[]),
    };
    let mut rules: Vec<Rule> = gantry_alerts::default_rules()
        .into_iter()
        .filter(|r| !disabled.contains(&r.name))
        .map(|r| match defs.iter().find(|d| d.name.value == r.name) {
            Some(d) => apply(r, d),
            None => r,
        })
        .collect();
    for d in defs {
        if gantry_spec::ALERT_RULES.contains(&d.name.value.as_str()) {
            continue;
        }
        let (Some(severity), Some(signal)) = (
            d.severity.as_deref().and_then(Severity::parse),
            d.signal.as_deref(),
        ) else {
            continue;
        };
        let base = Rule::new(
            &d.name.value,
            severity,
            Condition::gauge(signal, Op::Above, 0.0),
            &format!("{} ({signal})", d.name.value),
        );
        rules.push(apply(base, d));
    }
    for slo in &spec.slos {
        rules.extend(gantry_alerts::burn_rate_rules(&gantry_alerts::Slo {
            name: slo.name.value.clone(),
            availability: slo.availability,
            errors: "ingress_failures_total".into(),
            requests: "ingress_requests_total".into(),
            matching: [("route".to_string(), slo.route.value.clone())].into(),
            min_requests: slo.min_requests as f64,
            window_ms: slo.window.0.as_millis() as u64,
        }));
    }
    rules
}

/// `rule` with what `d` gives replacing its own (the first condition's signal, threshold,
/// window, matching; severity, `for`, summary, runbook).
fn apply(mut rule: Rule, d: &AlertRuleDef) -> Rule {
    if let Some(s) = d.severity.as_deref().and_then(Severity::parse) {
        rule.severity = s;
    }
    if let Some(f) = d.for_ {
        rule.for_ms = f.0.as_millis() as u64;
    }
    if let Some(s) = &d.summary {
        rule.summary.clone_from(s);
    }
    if let Some(r) = &d.runbook {
        rule.runbook = Some(r.value.clone());
    }
    if let Some(a) = d.auto_runbook {
        rule.auto_runbook = a;
    }
    rule.labels.extend(d.labels.iter().cloned());
    if let Some(c) = rule.conditions.first_mut() {
        if let Some(s) = &d.signal {
            c.signal.clone_from(s);
        }
        if let Some(t) = d.above {
            c.op = Op::Above;
            c.threshold = t;
        }
        if let Some(t) = d.below {
            c.op = Op::Below;
            c.threshold = t;
        }
        let window_ms = d.window.map(|w| w.0.as_millis() as u64);
        match (&d.ratio_of, window_ms) {
            (Some(den), Some(w)) => {
                c.reduce = Reduce::Ratio {
                    denominator: den.clone(),
                    window_ms: w,
                    min_volume: d.min_volume.unwrap_or(0) as f64,
                };
            }
            (None, Some(w)) if c.signal.ends_with("_total") => {
                c.reduce = Reduce::Increase { window_ms: w };
            }
            (None, Some(w)) => {
                if let Reduce::Increase { window_ms } = &mut c.reduce {
                    *window_ms = w;
                }
            }
            _ => {}
        }
        let mut matching = Labels::new();
        if let Some(s) = &d.service {
            matching.insert("service".into(), s.clone());
        }
        if let Some(r) = &d.route {
            matching.insert("route".into(), r.clone());
        }
        c.matching.extend(matching);
        c.except.extend(
            d.except
                .iter()
                .map(|e| ("service".to_string(), e.value.clone())),
        );
    }
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml: &str) -> Spec {
        let source = gantry_spec::Source::new("gantry.toml", toml);
        let decoded = gantry_spec::decode(&source, &|_| None);
        assert!(
            !decoded.diagnostics.iter().any(|d| d.is_error()),
            "{:?}",
            decoded.diagnostics
        );
        decoded.spec
    }

    #[test]
    fn overrides_disables_and_adds() {
        let s = spec(
            r#"
[alerts]
disabled = ["disk_low"]

[alerts.rules.readiness_lost]
for = "5m"
except = ["worker"]

[alerts.rules.api_restarts]
severity = "P2"
signal = "service_restarts_total"
service = "api"
window = "10m"
above = 5
summary = "{service} restarts a lot"

[services.api]
command = "true"
"#,
        );
        let rules = rules_of(&s);
        assert!(!rules.iter().any(|r| r.name == "disk_low"));
        let ready = rules.iter().find(|r| r.name == "readiness_lost").unwrap();
        assert_eq!(ready.for_ms, 300_000);
        assert_eq!(ready.severity, Severity::P1, "kept the built-in's");
        assert_eq!(
            ready.conditions[0].except,
            [("service".to_string(), "worker".to_string())]
        );
        let mine = rules.iter().find(|r| r.name == "api_restarts").unwrap();
        assert_eq!(mine.severity, Severity::P2);
        assert_eq!(mine.conditions[0].threshold, 5.0);
        assert_eq!(
            mine.conditions[0].reduce,
            Reduce::Increase { window_ms: 600_000 }
        );
        assert_eq!(mine.conditions[0].matching["service"], "api");
    }

    /// `[slo.NAME] window` reaches the burn-rate rules: a 7-day SLO pages at 3.36× its budget
    /// rate over the hour; without a window, 30 days and 14.4×.
    #[test]
    fn an_slos_window_sets_its_burn_rates() {
        let stack = |window: &str| {
            spec(&format!(
                r#"
[ingress]
listen = "127.0.0.1:8080"

[[ingress.routes]]
path = "/api"
service = "api"

[slo.api]
route = "/api"
availability = "99.9%"
{window}

[services.api]
command = "api"
upstream = "127.0.0.1:9000"
"#
            ))
        };
        let fast = |s: &Spec| {
            let rules = rules_of(s);
            let r = rules
                .iter()
                .find(|r| r.name == "slo_api_fast_burn")
                .unwrap()
                .clone();
            (r.conditions[0].threshold, r.summary)
        };
        let (threshold, summary) = fast(&stack("window = \"7d\""));
        assert!((threshold - 0.00336).abs() < 1e-12, "{threshold}");
        assert!(summary.contains("over 7 d"), "{summary}");
        let (threshold, summary) = fast(&stack(""));
        assert!((threshold - 0.0144).abs() < 1e-12, "{threshold}");
        assert!(summary.contains("over 30 d"), "{summary}");
    }
}

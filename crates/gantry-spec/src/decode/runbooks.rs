//! Decodes `[runbooks.NAME]` (a description and `[[runbooks.NAME.steps]]`, each exactly one
//! action over a service, secret or flag the file has) and checks the runbooks alert rules name.

use super::{Decoder, Value};
use crate::diag::did_you_mean;
use crate::keys;
use crate::model::*;
use std::time::Duration;
use toml::de::DeValue;

/// The kill switches a step may flip, by the key that flips them.
const SWITCHES: &[(&str, &str)] = &[
    ("drain", "write_drain"),
    ("brownout", "brownout"),
    ("emergency", "emergency"),
    ("safe_mode", "safe_mode"),
];
/// The service commands a step may give.
const VERBS: &[&str] = &[
    "start",
    "stop",
    "restart",
    "disable",
    "enable",
    "quarantine",
    "release",
    "rollback",
];

impl Decoder<'_> {
    pub(super) fn runbooks(&mut self, v: &Value<'_>, spec: &Spec) -> Vec<Runbook> {
        let Some(t) = self.table(v, "runbooks") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, item) in t {
            let name = key.get_ref().to_string();
            let path = format!("runbooks.{name}");
            let Some(rt) = self.table(item, &path) else {
                continue;
            };
            self.unknown_keys(rt, keys::RUNBOOK, &path);
            let description = rt
                .get("description")
                .and_then(|x| self.string(x, &format!("{path}.description")))
                .map(|s| s.value);
            let mut steps = Vec::new();
            let mut written = 0;
            match rt.get("steps").map(|x| (x, x.get_ref())) {
                Some((_, DeValue::Array(items))) => {
                    written = items.len();
                    for (i, step) in items.iter().enumerate() {
                        if let Some(s) =
                            self.runbook_step(step, &format!("{path}.steps[{i}]"), spec)
                        {
                            steps.push(s);
                        }
                    }
                }
                Some((x, _)) => self.wrong_type(
                    &format!("{path}.steps"),
                    x,
                    "an array of tables ([[runbooks.NAME.steps]])",
                ),
                None => {}
            }
            if written == 0 {
                self.error(
                    "missing-key",
                    &path,
                    item.span(),
                    format!("the runbook `{name}` has no steps"),
                    "add [[runbooks.NAME.steps]] tables, e.g. drain = \"on\", then restart = \"db\"",
                );
                continue;
            }
            if steps.len() < written {
                // Its bad steps are reported; a runbook missing one must not run.
                continue;
            }
            out.push(Runbook {
                name: Sp::new(name, item.span()),
                description,
                steps,
            });
        }
        out
    }

    fn runbook_step(&mut self, v: &Value<'_>, path: &str, spec: &Spec) -> Option<RunbookStep> {
        let t = self.table(v, path)?;
        self.unknown_keys(t, keys::RUNBOOK_STEP, path);
        let actions: Vec<&str> = t
            .iter()
            .map(|(k, _)| k.get_ref().as_ref())
            .filter(|k| !matches!(*k, "timeout"))
            .collect();
        if actions.len() != 1 {
            self.error(
                "invalid-value",
                path,
                v.span(),
                format!(
                    "a step takes exactly one action, this one has {}",
                    if actions.is_empty() {
                        "none".to_string()
                    } else {
                        actions.join(", ")
                    }
                ),
                "split it into one [[runbooks.NAME.steps]] table per action",
            );
            return None;
        }
        let key = actions[0].to_string();
        let x = t.get(key.as_str())?;
        let p = format!("{path}.{key}");
        let timeout = |d: &mut Self, default: u64| {
            t.get("timeout")
                .and_then(|x| d.duration(x, &format!("{path}.timeout")))
                .unwrap_or(Dur(Duration::from_secs(default)))
        };
        let action = if let Some((_, flag)) = SWITCHES.iter().find(|(k, _)| *k == key) {
            let on = match x.get_ref() {
                DeValue::Boolean(b) => *b,
                DeValue::String(s) if s.as_ref() == "on" => true,
                DeValue::String(s) if s.as_ref() == "off" => false,
                _ => {
                    self.wrong_type(&p, x, "\"on\" or \"off\"");
                    return None;
                }
            };
            RunbookAction::Switch { flag, on }
        } else if let Some(verb) = VERBS.iter().find(|k| **k == key) {
            let service = self.string(x, &p)?;
            let known = spec.services.iter().any(|s| s.name.value == service.value);
            if !known {
                let names = spec.services.iter().map(|s| s.name.value.as_str());
                self.error(
                    "unknown-name",
                    &p,
                    service.span.clone(),
                    format!("no service `{}`", service.value),
                    did_you_mean(&service.value, names)
                        .map_or("name a service of this file".to_string(), |s| {
                            format!("did you mean `{s}`?")
                        }),
                );
                return None;
            }
            RunbookAction::Service {
                verb,
                service: service.value,
            }
        } else {
            match key.as_str() {
                "rotate" => {
                    let secret = self.string(x, &p)?;
                    if !spec.secrets.iter().any(|s| s.name.value == secret.value) {
                        self.error(
                            "unknown-name",
                            &p,
                            secret.span.clone(),
                            format!("no secret `{}`", secret.value),
                            "name one of the [secrets.NAME] of this file",
                        );
                        return None;
                    }
                    RunbookAction::Rotate {
                        secret: secret.value,
                    }
                }
                "run" => {
                    let command = self.command(x, &p)?;
                    RunbookAction::Run {
                        command: command.value,
                        timeout: timeout(self, 60),
                    }
                }
                "wait" => {
                    let wt = self.table(x, &p)?;
                    let service = wt
                        .get("service")
                        .and_then(|s| self.string(s, &format!("{p}.service")))
                        .map(|s| s.value);
                    let state = wt
                        .get("state")
                        .and_then(|s| {
                            self.enumeration(
                                s,
                                &format!("{p}.state"),
                                &["ready", "running", "completed", "stopped", "failed"],
                            )
                        })
                        .unwrap_or("ready")
                        .to_string();
                    let timeout = wt
                        .get("timeout")
                        .and_then(|d| self.duration(d, &format!("{p}.timeout")))
                        .unwrap_or(Dur(Duration::from_secs(60)));
                    RunbookAction::Wait {
                        service,
                        state,
                        timeout,
                    }
                }
                "flag" => {
                    let ft = self.table(x, &p)?;
                    let Some(k) = ft
                        .get("key")
                        .and_then(|s| self.string(s, &format!("{p}.key")))
                    else {
                        self.error(
                            "missing-key",
                            &p,
                            x.span(),
                            "a flag step names the flag: key = \"...\"",
                            "write flag = { key = \"new-checkout\", value = false }",
                        );
                        return None;
                    };
                    let Some(value) = ft
                        .get("value")
                        .and_then(|v| super::flags::to_json(v.get_ref(), 0))
                    else {
                        self.error(
                            "missing-key",
                            &p,
                            x.span(),
                            "a flag step gives the value: value = ...",
                            "write flag = { key = \"new-checkout\", value = false }",
                        );
                        return None;
                    };
                    let expires = ft
                        .get("expires")
                        .and_then(|d| self.duration(d, &format!("{p}.expires")));
                    RunbookAction::Flag {
                        key: k.value,
                        value,
                        expires,
                    }
                }
                _ => return None,
            }
        };
        Some(RunbookStep {
            action,
            span: v.span(),
        })
    }

    /// A `flags_restart` name that no `[flags.NAME]` defines (and no flags file may) is a
    /// typo: the service would never restart for it.
    pub(super) fn check_flags_restart(&mut self, spec: &Spec) {
        if spec.flags.file.is_some() {
            return;
        }
        let builtin = [
            "write_drain",
            "brownout",
            "emergency",
            "safe_mode",
            "brownout_shed_percent",
            "*",
        ];
        for s in &spec.services {
            for name in &s.flags_restart {
                let known = builtin.contains(&name.value.as_str())
                    || spec.flags.defs.iter().any(|f| f.name.value == name.value);
                if !known {
                    let names = spec.flags.defs.iter().map(|f| f.name.value.as_str());
                    let hint = did_you_mean(&name.value, names).map_or(
                        "define it as [flags.NAME], or list a flag that exists".to_string(),
                        |s| format!("did you mean `{s}`?"),
                    );
                    self.diags.push(
                        crate::diag::Diagnostic::warning(
                            "unknown-name",
                            format!(
                                "no flag `{}`: this service never restarts for it",
                                name.value
                            ),
                        )
                        .key(format!("services.{}.flags_restart", s.name.value))
                        .at(name.span.clone())
                        .hint(hint),
                    );
                }
            }
        }
    }

    /// Every `runbook` an alert rule names is a `[runbooks.NAME]`.
    pub(super) fn check_rule_runbooks(&mut self, spec: &Spec) {
        let Some(alerts) = &spec.alerts else { return };
        for rule in &alerts.rules {
            let Some(r) = &rule.runbook else { continue };
            if !spec.runbooks.iter().any(|b| b.name.value == r.value) {
                let names = spec.runbooks.iter().map(|b| b.name.value.as_str());
                let hint = did_you_mean(&r.value, names)
                    .map_or("define it as [runbooks.NAME]".to_string(), |s| {
                        format!("did you mean `{s}`?")
                    });
                self.error(
                    "unknown-name",
                    &format!("alerts.rules.{}.runbook", rule.name.value),
                    r.span.clone(),
                    format!("no runbook `{}`", r.value),
                    hint,
                );
            }
        }
    }
}

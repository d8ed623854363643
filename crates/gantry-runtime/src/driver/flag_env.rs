//! Flags delivered through the environment: every service gets `GANTRY_FLAG_<NAME>` (the flag's
//! value without evaluation context), kept up to date for its next start, and a service that
//! names flags in `flags_restart` is restarted when one of their values changes.

use super::Driver;
use gantry_engine::State;
use std::collections::BTreeMap;

/// The environment variable of flag `key`: `GANTRY_FLAG_` and the key in capitals, every
/// character that is not a letter or a digit written `_` (`new-checkout` → `GANTRY_FLAG_NEW_CHECKOUT`).
pub(super) fn var_name(key: &str) -> String {
    let mut name = String::with_capacity(12 + key.len());
    name.push_str("GANTRY_FLAG_");
    for c in key.chars() {
        name.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    name
}

/// How a value reads in the environment: a string as it is, `true` / `false`, a number as JSON
/// writes it, an object as compact JSON. `None` for no value (a disabled flag): no variable.
pub(super) fn var_value(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Flag key → (variable, value), for every flag with a value. Two keys that spell the same
/// variable: the first in key order wins.
pub(super) type FlagEnv = BTreeMap<String, (String, String)>;

/// The variables of `values` (flag key → value without context).
pub(super) fn flag_env(values: &serde_json::Map<String, serde_json::Value>) -> FlagEnv {
    let mut env = FlagEnv::new();
    let mut taken = std::collections::HashSet::new();
    for (key, value) in values {
        let Some(v) = var_value(value) else { continue };
        let name = var_name(key);
        if taken.insert(name.clone()) {
            env.insert(key.clone(), (name, v));
        }
    }
    env
}

/// The flag keys whose variable changed (set, changed or gone) from `old` to `new`.
pub(super) fn changed_keys(old: &FlagEnv, new: &FlagEnv) -> Vec<String> {
    let mut keys: Vec<String> = old
        .iter()
        .filter(|(k, v)| new.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(new.keys().filter(|k| !old.contains_key(*k)).cloned());
    keys.sort();
    keys
}

/// Brings `env` from the variables of `old` to those of `new`: a variable the service sets
/// itself (a value other than the one gantry gave) is left alone.
pub(super) fn update_env(env: &mut crate::envset::Env, old: &FlagEnv, new: &FlagEnv) {
    for (name, value) in old.values() {
        if !new.values().any(|(n, _)| n == name) && env.get(name) == Some(value.as_str()) {
            env.remove(name);
        }
    }
    for (name, value) in new.values() {
        let given = old
            .values()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        match env.get(name) {
            Some(now) if Some(now) == given => env.set(name, value.clone()),
            Some(_) => {}
            None => env.set(name, value.clone()),
        }
    }
}

/// Whether a service that names `wanted` in `flags_restart` cares about a change of `changed`.
pub(super) fn wants_restart(wanted: &[gantry_spec::Sp<String>], changed: &[String]) -> bool {
    wanted
        .iter()
        .any(|w| w.value == "*" || changed.contains(&w.value))
}

impl Driver {
    /// After the effective flags changed: every service's environment follows for its next
    /// start, and the running services whose `flags_restart` names a changed flag restart
    /// (dependencies first; a replicated one rolls).
    pub(super) fn deliver_flag_env(&mut self) {
        let new = self.flags.env();
        let old = std::mem::replace(&mut self.flag_env, new);
        let changed = changed_keys(&old, &self.flag_env);
        if changed.is_empty() {
            return;
        }
        for svc in &mut self.svcs {
            if let Ok(spawn) = &mut svc.spawn {
                update_env(&mut spawn.env, &old, &self.flag_env);
            }
        }
        // One restart per service (every instance of a replicated one), in start order.
        let mut restart: Vec<String> = Vec::new();
        for wave in &self.plan.waves {
            for &i in wave {
                let u = &self.plan.units[i];
                if !wants_restart(&u.service.flags_restart, &changed) {
                    continue;
                }
                let running = matches!(
                    self.host.unit(gantry_engine::UnitId(i)).state,
                    State::Starting
                        | State::Ready
                        | State::Running
                        | State::Unready
                        | State::Degraded
                );
                let name = u.service.base_name().to_string();
                if running && !restart.contains(&name) {
                    restart.push(name);
                }
            }
        }
        if restart.is_empty() {
            return;
        }
        let (restarted, refused) = self.restart_services(&restart);
        self.out.gantry_line(&format!(
            "flags: {} changed: restarting {}{}",
            changed.join(", "),
            if restarted.is_empty() {
                "none".to_string()
            } else {
                restarted.join(", ")
            },
            if refused.is_empty() {
                String::new()
            } else {
                format!("; not restarted: {}", refused.join("; "))
            }
        ));
        self.event(serde_json::json!({
            "event": "flags_restart", "changed": changed,
            "restarted": restarted, "refused": refused,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env_of(v: serde_json::Value) -> FlagEnv {
        flag_env(v.as_object().unwrap())
    }

    #[test]
    fn names_and_values() {
        assert_eq!(var_name("new-checkout.v2"), "GANTRY_FLAG_NEW_CHECKOUT_V2");
        let env = env_of(json!({"a": true, "b": "blue", "c": 2.5, "d": {"x": 1}, "e": null}));
        let vars: Vec<(&str, &str)> = env
            .values()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("GANTRY_FLAG_A", "true"),
                ("GANTRY_FLAG_B", "blue"),
                ("GANTRY_FLAG_C", "2.5"),
                ("GANTRY_FLAG_D", "{\"x\":1}"),
            ]
        );
    }

    #[test]
    fn same_variable_first_key_wins() {
        let env = env_of(json!({"a-b": 1, "a_b": 2}));
        assert_eq!(env.len(), 1);
        assert_eq!(env["a-b"].1, "1");
    }

    #[test]
    fn changes_and_updates() {
        let old = env_of(json!({"a": true, "b": "x", "gone": 1}));
        let new = env_of(json!({"a": false, "b": "x", "new": 2}));
        assert_eq!(changed_keys(&old, &new), ["a", "gone", "new"]);
        let mut env = crate::envset::Env::from(vec![
            ("PATH".to_string(), "/bin".to_string()),
            ("GANTRY_FLAG_A".to_string(), "true".to_string()),
            // The service sets this one itself: kept.
            ("GANTRY_FLAG_B".to_string(), "mine".to_string()),
            ("GANTRY_FLAG_GONE".to_string(), "1".to_string()),
        ]);
        update_env(&mut env, &old, &new);
        // Order is not part of an environment (the child's is sorted by name).
        let mut got = env.to_vec();
        got.sort();
        assert_eq!(
            got,
            [
                ("GANTRY_FLAG_A".to_string(), "false".to_string()),
                ("GANTRY_FLAG_B".to_string(), "mine".to_string()),
                ("GANTRY_FLAG_NEW".to_string(), "2".to_string()),
                ("PATH".to_string(), "/bin".to_string()),
            ]
        );
    }

    #[test]
    fn restart_wanted() {
        let sp = |s: &str| gantry_spec::Sp::new(s.to_string(), 0..0);
        assert!(wants_restart(&[sp("a")], &["a".into()]));
        assert!(!wants_restart(&[sp("a")], &["b".into()]));
        assert!(wants_restart(&[sp("*")], &["b".into()]));
        assert!(!wants_restart(&[], &["b".into()]));
    }
}

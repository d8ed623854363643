//! A child's environment as a shared base plus what one service sets over it, so a thousand services hold one copy of gantry's inherited environment, not a thousand.
//!
//! The base is gantry's own environment, `[env]` and the global env files: the same for
//! every service, built once and shared behind an `Arc`. A service's env files, `env`,
//! secrets and the variables gantry adds (OFREP, flags) are its own entries; an own entry
//! replaces the base's variable of that name, and an own entry without a value removes it.
//! Measured at 1,000 services with a 40-variable environment: 5.3 MB held as per-service
//! copies before, one copy after.

use std::sync::Arc;

/// One service's (or one command's) environment. Cloning it copies only its own entries.
#[derive(Clone, Default)]
pub struct Env {
    base: Arc<[(String, String)]>,
    /// Set over the base, in first-set order; `None` removes the base's variable.
    own: Vec<(String, Option<String>)>,
}

/// Equal when they set the same variables to the same values, however they were built.
impl PartialEq for Env {
    fn eq(&self, other: &Env) -> bool {
        if Arc::ptr_eq(&self.base, &other.base) && self.own == other.own {
            return true;
        }
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Env {}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: names only.
        f.debug_list().entries(self.iter().map(|(k, _)| k)).finish()
    }
}

impl Env {
    /// An environment of exactly `vars` (the first of duplicate names is replaced by the
    /// later), shared by every clone and every [`Env::set`] over it.
    pub fn base(vars: Vec<(String, String)>) -> Env {
        let mut seen = std::collections::HashMap::with_capacity(vars.len());
        let mut out: Vec<(String, String)> = Vec::with_capacity(vars.len());
        for (k, v) in vars {
            match seen.get(&k) {
                Some(&i) => out[i] = (k, v),
                None => {
                    seen.insert(k.clone(), out.len());
                    out.push((k, v));
                }
            }
        }
        Env {
            base: out.into(),
            own: Vec::new(),
        }
    }

    /// gantry's own environment, as a child that is given nothing else would get it.
    pub fn inherited() -> Env {
        Env::base(std::env::vars().collect())
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.own.iter().find(|(k, _)| k == name) {
            Some((_, v)) => v.as_deref(),
            None => self
                .base
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str()),
        }
    }

    /// Whether `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value` (replacing what the base or an earlier set gave).
    pub fn set(&mut self, name: &str, value: String) {
        match self.own.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = Some(value),
            None => self.own.push((name.to_string(), Some(value))),
        }
    }

    /// Adds each of `extra` to every one of `envs` that does not set that variable (in its
    /// base or its own entries) — what [`Env::set`] per env and variable would give, but into
    /// one new base per distinct base, shared again: at 1,000 services the variables gantry
    /// adds to every service (OFREP, flags) were 600 bytes a service as own entries.
    pub fn add_shared<'a>(envs: impl IntoIterator<Item = &'a mut Env>, extra: &[(String, String)]) {
        if extra.is_empty() {
            return;
        }
        type Base = Arc<[(String, String)]>;
        let mut made: Vec<(Base, Base)> = Vec::new();
        for env in envs {
            let base = match made.iter().find(|(old, _)| Arc::ptr_eq(old, &env.base)) {
                Some((_, new)) => new.clone(),
                None => {
                    let mut vars = env.base.to_vec();
                    for (k, v) in extra {
                        if !vars.iter().any(|(b, _)| b == k) {
                            vars.push((k.clone(), v.clone()));
                        }
                    }
                    let new: Base = vars.into();
                    made.push((env.base.clone(), new.clone()));
                    new
                }
            };
            // A variable this env removes on purpose is not set: `set` would make it its own.
            for (k, v) in extra {
                if env.own.iter().any(|(o, val)| o == k && val.is_none()) {
                    env.set(k, v.clone());
                }
            }
            env.base = base;
        }
    }

    /// Sets every one of `vars` in order (a later duplicate wins), in time linear in
    /// their number however many there are.
    pub fn set_all(&mut self, vars: Vec<(String, String)>) {
        let mut index: std::collections::HashMap<String, usize> = self
            .own
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        for (k, v) in vars {
            match index.get(&k) {
                Some(&i) => self.own[i].1 = Some(v),
                None => {
                    index.insert(k.clone(), self.own.len());
                    self.own.push((k, Some(v)));
                }
            }
        }
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        if self.base.iter().any(|(k, _)| k == name) {
            match self.own.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = None,
                None => self.own.push((name.to_string(), None)),
            }
        } else {
            self.own.retain(|(k, _)| k != name);
        }
    }

    /// Keeps only the variables for which `keep(name, value)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let gone: Vec<String> = self
            .iter()
            .filter(|(k, v)| !keep(k, v))
            .map(|(k, _)| k.to_string())
            .collect();
        for k in gone {
            self.remove(&k);
        }
    }

    /// Every variable, each name once: the base's (unless replaced or removed), then the
    /// service's own.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        // A set of the own names only when a linear scan per base variable would cost more.
        let index: Option<std::collections::HashSet<&str>> =
            (self.own.len() > 16).then(|| self.own.iter().map(|(k, _)| k.as_str()).collect());
        let own = &self.own;
        let shadowed = move |k: &str| match &index {
            Some(set) => set.contains(k),
            None => own.iter().any(|(o, _)| o == k),
        };
        self.base
            .iter()
            .filter(move |(k, _)| !shadowed(k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(
                self.own
                    .iter()
                    .filter_map(|(k, v)| v.as_deref().map(|v| (k.as_str(), v))),
            )
    }

    /// `arg` with every `${NAME}` replaced by NAME's value (left as written when unset).
    pub fn expand(&self, arg: &str) -> String {
        let mut out = String::with_capacity(arg.len());
        let mut rest = arg;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let body = &rest[at + 2..];
            match body.find('}').map(|end| (&body[..end], end)) {
                Some((name, end)) => {
                    match self.get(name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&rest[at..at + 3 + end]),
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str(&rest[at..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// How many variables there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The variables as owned pairs (base order, then own).
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl From<Vec<(String, String)>> for Env {
    fn from(vars: Vec<(String, String)>) -> Env {
        Env::base(vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn own_entries_replace_and_remove_the_base_and_clones_share_it() {
        let mut a = Env::base(vars(&[("PATH", "/bin"), ("HOME", "/root"), ("X", "1")]));
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.base, &b.base));
        a.set("X", "2".into());
        a.set("NEW", "n".into());
        a.remove("HOME");
        assert_eq!(a.get("X"), Some("2"));
        assert_eq!(a.get("HOME"), None);
        assert_eq!(
            a.to_vec(),
            vars(&[("PATH", "/bin"), ("X", "2"), ("NEW", "n")])
        );
        assert_eq!(
            b.to_vec(),
            vars(&[("PATH", "/bin"), ("HOME", "/root"), ("X", "1")])
        );
        a.set("HOME", "/home".into());
        assert_eq!(a.get("HOME"), Some("/home"));
        a.retain(|k, _| k != "NEW" && k != "PATH");
        assert_eq!(a.to_vec(), vars(&[("X", "2"), ("HOME", "/home")]));
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn shared_additions_give_what_a_set_per_env_gives_and_share_one_base() {
        let base = Env::base(vars(&[("PATH", "/bin"), ("URL", "mine")]));
        let (mut a, mut b, mut c) = (base.clone(), base.clone(), base.clone());
        b.set("TOKEN", "own".into());
        c.remove("TOKEN");
        let mut d = Env::base(vars(&[("HOME", "/root")]));
        let extra = vars(&[("URL", "http://x"), ("TOKEN", "t")]);
        let expected: Vec<Vec<(String, String)>> = [&a, &b, &c, &d]
            .iter()
            .map(|e| {
                let mut e = (*e).clone();
                for (k, v) in &extra {
                    if !e.contains(k) {
                        e.set(k, v.clone());
                    }
                }
                e.to_vec()
            })
            .collect();
        Env::add_shared([&mut a, &mut b, &mut c, &mut d], &extra);
        let got: Vec<_> = [&a, &b, &c, &d].iter().map(|e| e.to_vec()).collect();
        assert_eq!(got, expected);
        assert_eq!(a.get("URL"), Some("mine"));
        assert_eq!(b.get("TOKEN"), Some("own"));
        assert_eq!(c.get("TOKEN"), Some("t"));
        assert_eq!(d.get("TOKEN"), Some("t"));
        // One new base for the three that shared one, held once.
        assert!(Arc::ptr_eq(&a.base, &b.base) && Arc::ptr_eq(&b.base, &c.base));
        assert!(a.own.is_empty());
    }

    #[test]
    fn a_later_duplicate_in_the_base_wins_and_many_own_names_are_indexed() {
        let e = Env::base(vars(&[("A", "1"), ("B", "2"), ("A", "3")]));
        assert_eq!(e.to_vec(), vars(&[("A", "3"), ("B", "2")]));
        let mut e = Env::base(vars(&[("K0", "base"), ("Z", "z")]));
        for i in 0..40 {
            e.set(&format!("K{i}"), i.to_string());
        }
        assert_eq!(e.get("K0"), Some("0"));
        assert_eq!(e.len(), 41);
        assert_eq!(e.iter().next(), Some(("Z", "z")));
    }

    #[test]
    fn expand_replaces_set_names_and_keeps_the_rest_as_written() {
        let e = Env::base(vars(&[("PORT", "8080"), ("HOST", "h")]));
        assert_eq!(e.expand("--bind=${HOST}:${PORT}"), "--bind=h:8080");
        assert_eq!(e.expand("${UNSET}-${PORT}-${"), "${UNSET}-8080-${");
        assert_eq!(e.expand("plain"), "plain");
    }

    #[test]
    fn debug_shows_names_never_values() {
        let mut e = Env::base(vars(&[("A", "1")]));
        e.set("TOKEN", "s3cret".into());
        let shown = format!("{e:?}");
        assert!(
            shown.contains("TOKEN") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}

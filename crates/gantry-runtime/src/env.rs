//! Each service's environment: gantry's own, `[env]`, env files, the service's env, and only the secrets meant for it.

use crate::envset::Env;
use gantry_spec::{SecretSource, Service, Spec};
use std::path::Path;

/// A resolved secret and who may see it.
#[derive(Clone)]
pub struct SecretValue {
    pub name: String,
    /// The variable name services see.
    pub env: String,
    pub value: String,
    pub services: Vec<String>,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value is never printed, not even in debug output.
        f.debug_struct("SecretValue")
            .field("name", &self.name)
            .field("env", &self.env)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

/// gantry's own environment, then `[env]`, then the global env files. Variables that
/// carry secrets (a secret's `from_env` source and its delivered name) are removed:
/// a service receives a secret only when the secret lists it. Built once: every
/// service's [`Env`] shares it.
pub fn global_env(spec: &Spec, base: &Path) -> Result<Env, String> {
    let secret_vars: Vec<&str> = spec
        .secrets
        .iter()
        .flat_map(|s| {
            let mut v = vec![s.env.as_deref().unwrap_or(&s.name.value)];
            if let Some(src) = &s.source
                && let SecretSource::FromEnv(var) = &src.value
            {
                v.push(var);
            }
            v
        })
        .collect();
    let mut env = Merge::from(
        std::env::vars()
            .filter(|(k, _)| {
                k != "NOTIFY_SOCKET"
                    && k != MIGRATE_DATABASE_VAR
                    && !secret_vars.contains(&k.as_str())
            })
            .collect::<Vec<_>>(),
    );
    for var in &spec.env {
        env.set(&var.name.value, &var.value.value);
    }
    for f in &spec.env_file {
        for (k, v) in read_env_file(&base.join(&f.value))? {
            env.set(&k, &v);
        }
    }
    Ok(Env::base(env.into_vec()))
}

/// The full environment of one service: `global` (shared, not copied) and what the
/// service sets over it.
pub fn service_env(
    global: &Env,
    s: &Service,
    base: &Path,
    secrets: &[SecretValue],
) -> Result<Env, String> {
    let mut own: Vec<(String, String)> = Vec::new();
    for f in &s.env_file {
        own.extend(read_env_file(&base.join(&f.value))?);
    }
    for var in &s.env {
        own.push((var.name.value.clone(), var.value.value.clone()));
    }
    // An instance of a replicated service (`api.2`) receives what the file gives `api`.
    for secret in secrets
        .iter()
        .filter(|x| x.services.iter().any(|n| n == s.base_name()))
    {
        own.push((secret.env.clone(), secret.value.clone()));
    }
    if let Some(url) = migrate_database(s, secrets, &|name| std::env::var(name).ok()) {
        own.push((MIGRATE_DATABASE_VAR.to_string(), url));
    }
    let mut env = global.clone();
    env.set_all(own);
    Ok(env)
}

/// An environment being built: the variables in first-set order, a later value for the
/// same name replacing the earlier one in place. Indexed, so merging n variables is
/// linear (40,000 `[env]` keys took 2.4 s with a scan per key).
struct Merge {
    vars: Vec<(String, String)>,
    index: std::collections::HashMap<String, usize>,
}

impl Merge {
    fn from(vars: Vec<(String, String)>) -> Merge {
        let mut m = Merge {
            index: std::collections::HashMap::with_capacity(vars.len()),
            vars: Vec::with_capacity(vars.len()),
        };
        for (k, v) in vars {
            m.set_owned(k, v);
        }
        m
    }

    fn set(&mut self, k: &str, v: &str) {
        match self.index.get(k) {
            Some(&i) => v.clone_into(&mut self.vars[i].1),
            None => self.set_owned(k.to_string(), v.to_string()),
        }
    }

    fn set_owned(&mut self, k: String, v: String) {
        match self.index.get(&k) {
            Some(&i) => self.vars[i].1 = v,
            None => {
                self.index.insert(k.clone(), self.vars.len());
                self.vars.push((k, v));
            }
        }
    }

    fn into_vec(self) -> Vec<(String, String)> {
        self.vars
    }
}

/// The variable through which `gantry up` hands a migrate service's child
/// (`gantry migrate up --service NAME`) its resolved `database` URL; the child prefers it
/// to re-reading the file. gantry's own: never printed, and set only for migrate services.
pub const MIGRATE_DATABASE_VAR: &str = "GANTRY_MIGRATE_DATABASE";

/// A migrate service's `database`, interpolated once more with the secrets delivered to
/// it: `${NAME}` is the value of a secret whose variable is NAME and which lists the
/// service, else `env(NAME)` (what the file was read with). `None` for other services.
pub fn migrate_database(
    s: &Service,
    secrets: &[SecretValue],
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let m = s.migrate.as_ref()?;
    let lookup = |name: &str| {
        secrets
            .iter()
            .find(|x| x.env == name && x.services.contains(&s.name.value))
            .map(|x| x.value.clone())
            .or_else(|| env(name))
    };
    Some(
        gantry_spec::interp::interpolate(&m.database_template, &lookup)
            .map_or_else(|_| m.database.value.clone(), |r| r.value),
    )
}

/// What is wrong with an empty `database` and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseProblem {
    pub message: String,
    pub hint: String,
}

/// A migrate service whose `database` (as resolved in `env`, its environment) is empty:
/// the message names the key and the variables it was built from.
pub fn empty_database(s: &Service, env: &Env) -> Option<DatabaseProblem> {
    let m = s.migrate.as_ref()?;
    let url = env
        .get(MIGRATE_DATABASE_VAR)
        .unwrap_or(m.database.value.as_str());
    url.trim().is_empty().then(|| database_problem(s))
}

/// The explanation of an empty `database` of migrate service `s`.
pub fn database_problem(s: &Service) -> DatabaseProblem {
    let name = &s.name.value;
    let template = s
        .migrate
        .as_ref()
        .map_or("", |m| m.database_template.as_str());
    let vars = referenced_vars(template);
    let message = if vars.is_empty() {
        format!("services.{name}.database is empty")
    } else {
        format!(
            "services.{name}.database is empty: `{template}` uses {} and nothing set {}",
            vars.join(", "),
            if vars.len() == 1 { "it" } else { "them" }
        )
    };
    let first = vars.first().map_or("DATABASE_URL", String::as_str);
    DatabaseProblem {
        message,
        hint: format!(
            "give the URL through a secret delivered to {name} \
             ([secrets.{first}] from_env = \"APP_DATABASE_URL\", services = [\"{name}\"]), \
             or export {first}=postgres://… before running gantry"
        ),
    }
}

/// The variable names a `${VAR}` template refers to, in order, without duplicates.
fn referenced_vars(template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(pos) = rest.find("${") {
        let body = &rest[pos + 2..];
        let Some(end) = body.find('}') else { break };
        let name = body[..end].split(":-").next().unwrap_or("").to_string();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        rest = &body[end + 1..];
    }
    out
}

/// The most of an env file gantry reads: 4 MiB, far above any real one.
pub const ENV_FILE_CAP: u64 = 4 * 1024 * 1024;

/// Reads KEY=VALUE lines; `#` comments, blank lines, `export ` prefixes and
/// surrounding quotes are handled the way docker compose and dotenv do.
/// At most [`ENV_FILE_CAP`] bytes of a regular file are read (`/dev/zero` or a FIFO
/// named by mistake is refused at once).
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = gantry_state::bounded::read_capped_text(path, ENV_FILE_CAP)
        .map_err(|e| format!("env_file: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("{}:{}: expected KEY=VALUE", path.display(), i + 1));
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        out.push((k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}

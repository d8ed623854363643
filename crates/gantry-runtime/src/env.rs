//! Each service's environment: gantry's own, `[env]`, env files, the service's env, and only the secrets meant for it.

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
/// a service receives a secret only when the secret lists it.
pub fn global_env(spec: &Spec, base: &Path) -> Result<Vec<(String, String)>, String> {
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
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != "NOTIFY_SOCKET" && !secret_vars.contains(&k.as_str()))
        .collect();
    for var in &spec.env {
        set(&mut env, &var.name.value, &var.value.value);
    }
    for f in &spec.env_file {
        for (k, v) in read_env_file(&base.join(&f.value))? {
            set(&mut env, &k, &v);
        }
    }
    Ok(env)
}

/// The full environment of one service.
pub fn service_env(
    global: &[(String, String)],
    s: &Service,
    base: &Path,
    secrets: &[SecretValue],
) -> Result<Vec<(String, String)>, String> {
    let mut env = global.to_vec();
    for f in &s.env_file {
        for (k, v) in read_env_file(&base.join(&f.value))? {
            set(&mut env, &k, &v);
        }
    }
    for var in &s.env {
        set(&mut env, &var.name.value, &var.value.value);
    }
    for secret in secrets
        .iter()
        .filter(|x| x.services.contains(&s.name.value))
    {
        set(&mut env, &secret.env, &secret.value);
    }
    Ok(env)
}

pub fn set(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    match env.iter_mut().find(|(name, _)| name == k) {
        Some(e) => e.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    }
}

/// Reads KEY=VALUE lines; `#` comments, blank lines, `export ` prefixes and
/// surrounding quotes are handled the way docker compose and dotenv do.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read env_file {}: {e}", path.display()))?;
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
